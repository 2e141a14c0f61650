"""The tiny model of both families: tokens, forward/backward, [SEG] masks, <region> embeddings, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from micro_config import MICRO

from fifa.core.errors import UserError
from fifa.modeling.collate import Collator, Encoder, InstructDataset
from fifa.modeling.config import load_config
from fifa.modeling.data import InstructData
from fifa.modeling.loading import create
from fifa.modeling.tokenizer import SEG
from fifa.modeling.train import training_texts
from fifa.modeling.vocab import classes_of


def _model(build, family, extra=()):
    cfg = load_config(
        None,
        [
            *MICRO,
            "model.base=tiny",
            f"model.tiny.family={family}",
            "model.freeze_vision=false",
            "model.train_embeddings=all",
            *extra,
        ],
    )
    data = InstructData(build)
    torch.manual_seed(0)
    loaded = create(cfg, list(training_texts(data)), classes_of(data, cfg), None)
    enc = Encoder(loaded.tokenizer, loaded.fam, loaded.model.heads.classes, "category", cfg.heads.mask_size, 160)
    return loaded, data, InstructDataset(data, enc), Collator(loaded.fam, loaded.tokenizer.pad_token_id)


def _batch(ds, coll, data, tasks, n=4, fake=None):
    idx = [
        i
        for i in range(len(data))
        if data.tasks[i] in tasks and (fake is None or (data.rows.row(i)["label"] == "fake") == fake)
    ][:n]
    return coll([ds[i] for i in idx])


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_forward_backward_masks_and_regions(small_build, family):
    loaded, data, ds, coll = _model(small_build, family)
    tok, model = loaded.tokenizer, loaded.model
    ids = tok(f"a {SEG} b", add_special_tokens=False)["input_ids"]
    assert ids.count(model.seg_id) == 1 and "SEG" not in tok.decode([i for i in ids if i != model.seg_id])
    batch = _batch(ds, coll, data, ("loc", "age", "rq_mask", "rq_box"), n=8, fake=True)
    assert batch["n"] == 8 and len(batch["mask_targets"]) == int((batch["input_ids"] == model.seg_id).sum())
    assert batch["region_weights"] is not None
    loss, logs = model(batch)
    assert torch.isfinite(loss) and {"lm", "mask_bce", "mask_dice", "det", "cls"} <= set(logs)
    loss.backward()
    for name, mod in (("mask", model.heads.mask), ("region", model.heads.region), ("verdict", model.heads.verdict)):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mod.parameters() if p.dim() > 1), name
    lora = [p for n, p in model.lm.named_parameters() if "lora_B" in n]
    assert lora and all(p.grad is not None for p in lora)


def test_region_token_carries_the_region(small_build):
    """The <region> embedding depends on the region given (changing the box changes the answer state)."""
    loaded, data, ds, coll = _model(small_build, "llava")
    model = loaded.model.eval()
    batch = _batch(ds, coll, data, ("rq_box",), n=2)
    with torch.no_grad():
        h1, _, _ = model.hidden(batch)
        batch["region_boxes"] = 1 - batch["region_boxes"]
        batch["region_weights"] = torch.flip(batch["region_weights"], dims=(1, 2))
        h2, _, _ = model.hidden(batch)
    pos = (batch["input_ids"] == model.region_id).nonzero()
    assert len(pos) == 2
    before = h1[:, : pos[0, 1]]
    assert torch.equal(before, h2[:, : pos[0, 1]])  # causal: tokens before <region> are unchanged
    assert not torch.allclose(h1[:, pos[0, 1] :], h2[:, pos[0, 1] :])


def test_batch_without_seg_still_touches_every_trainable_parameter(small_build):
    """DDP needs a gradient for every trainable parameter on every rank (SIDA's hang)."""
    loaded, data, ds, coll = _model(small_build, "llava")
    batch = _batch(ds, coll, data, ("det", "cls"), n=4)
    assert int((batch["input_ids"] == loaded.model.seg_id).sum()) == 0 and batch["region_weights"] is None
    loss, _ = loaded.model(batch)
    loss.backward()
    missing = [n for n, p in loaded.model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_new_token_rows_train_on_a_frozen_base(small_build):
    """train_embeddings=new: only the added tokens' rows (peft trainable tokens) train, beside LoRA."""
    loaded, data, ds, coll = _model(small_build, "llava", ["model.train_embeddings=new", "model.freeze_vision=true"])
    names = [n for n, p in loaded.model.lm.named_parameters() if p.requires_grad]
    assert any("trainable_tokens" in n for n in names) and any("lora_" in n for n in names)
    assert not any("vision_tower" in n for n in names)
    assert not any(n.endswith("embed_tokens.weight") for n in names)


def test_unknown_architecture_and_missing_path(tmp_path):
    from transformers import BertConfig

    d = tmp_path / "bert"
    d.mkdir()
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(d)
    with pytest.raises(UserError, match="unsupported base model architecture 'bert'.*LLaVA.*Qwen2-VL.*Qwen2.5-VL"):
        create(load_config(None, [f"model.base={d}"]), None, [], None)
    with pytest.raises(UserError, match="model path not found: .*nowhere.*supported families"):
        create(load_config(None, [f"model.base={tmp_path / 'nowhere'}"]), None, [], None)
    (d / "config.json").write_text(json.dumps({"model_type": "llava", "broken": True}))


def test_real_base_folder_with_the_recipe_config(small_build, tmp_path):
    """A checkpoint folder laid out like a hub download (Qwen2-VL family, random weights) trains with the
    shipped recipe config (LoRA + new token rows only) and predicts; --limit runs resume."""
    import pyarrow.parquet as pq

    from fifa.modeling.base import load_base
    from fifa.modeling.submit import predict_bench
    from fifa.modeling.train import train

    cfg = load_config(None, [*MICRO, "model.tiny.family=qwen2_vl"])
    model, tok, _, _ = load_base(cfg, list(training_texts(InstructData(small_build))))
    base = tmp_path / "qwen-like"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    (base / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.25] * 3}))
    recipe = Path(__file__).resolve().parents[2] / "modeling" / "configs" / "qwen2-vl-2b.yaml"
    over = [
        f"model.base={base}",
        "model.image_size=32",
        "model.dtype=float32",
        "heads.mask_dim=16",
        "heads.pixel_channels=8",
        "heads.mask_size=32",
        "train.max_steps=2",
        "train.batch_size=2",
        "train.grad_accum=1",
        "data.num_workers=0",
        "data.max_length=160",
        "eval.every=0",
        "eval.at_end=false",
        "train.save_every=2",
        "predict.max_new_tokens=6",
        "model.gradient_checkpointing=true",
        "heads.det_score=tokens",
    ]
    cfg = load_config(recipe, over)
    train(cfg, small_build, tmp_path / "ck", progress=False)
    names = json.loads((tmp_path / "ck" / "adapter" / "adapter_config.json").read_text())
    assert names["trainable_token_indices"] and names["r"] == 16
    bench = small_build / "bench.parquet"
    s1 = predict_bench(tmp_path / "ck", bench, tmp_path / "p.jsonl", limit=3, progress=False)
    s2 = predict_bench(tmp_path / "ck", bench, tmp_path / "p.jsonl", progress=False)
    assert (s1.predicted, s2.done_before, s2.predicted) == (3, 3, s2.total - 3)
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == pq.read_metadata(bench).num_rows == len({r["question_id"] for r in rows})
    det = [r for r in rows if r["question_id"].endswith(":det")]
    assert det and all(0 <= r["score"] <= 1 for r in det)  # P(yes) / (P(yes) + P(no)) of the first token
    assert all("masks" in r for r in rows if r["question_id"].endswith((":loc", ":age")))


@pytest.mark.parametrize("decoder", ["conv", "linear"])
def test_mask_head_shares_image_maps_between_seg_tokens(decoder):
    """Several [SEG] of one image (an `age` answer) reuse its decoder maps: each mask equals the mask of
    the same query decoded alone against its own image, whatever the order of the rows."""
    from fifa.modeling.config import HeadsConfig
    from fifa.modeling.heads import FifaHeads

    cfg = HeadsConfig(
        mask_decoder=decoder,
        pixel_adapter=False,
        pixel_channels=8,
        pixel_stem="forensic",
        mask_dim=16,
        region_encoder=False,
        cls_head=False,
        det_head=True,
        query_head=False,
    )
    torch.manual_seed(0)
    heads = FifaHeads(llm_dim=24, feat_dim=12, classes=[], cfg=cfg)
    feats, images = torch.randn(3, 4, 4, 12), torch.randn(3, 3, 32, 32)
    pix = heads.pixels(images) if heads.pixels is not None else None
    seg_h, rows = torch.randn(5, 24), torch.tensor([2, 0, 2, 2, 1])
    together = heads.mask(seg_h, rows, feats, pix, 32)
    alone = torch.stack(
        [
            heads.mask(
                seg_h[i : i + 1], torch.tensor([0]), feats[r : r + 1], pix[r : r + 1] if pix is not None else None, 32
            )[0]
            for i, r in enumerate(rows.tolist())
        ]
    )
    assert together.shape == (5, 32, 32)
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[2])  # two queries on one image give two masks


def test_region_gate_keeps_the_named_regions_part_of_the_traces():
    """`heads.region_gate`: a mark naming a vocabulary region gets p(trace) * p(region), so its mask lies
    inside both its [SEG] mask and the parser's mask of its region; a [SEG] naming no region keeps its
    mask; the parser is not trained through the product (face parsing alone teaches it)."""
    from fifa.modeling.config import HeadsConfig
    from fifa.modeling.heads import FifaHeads, and_logits

    a, b = torch.linspace(-60, 60, 41)[:, None], torch.linspace(-60, 60, 41)[None, :]
    want = torch.sigmoid(a.double()) * torch.sigmoid(b.double())
    got = torch.sigmoid(and_logits(a, b).double())
    assert torch.isfinite(and_logits(a, b)).all() and torch.allclose(got, want, atol=2e-6)

    cfg = HeadsConfig(mask_decoder="conv", pixel_channels=8, mask_dim=16, region_gate=True, query_head=False)
    torch.manual_seed(0)
    regions = [{"id": f"r{k}", "phrase": f"region {k}"} for k in range(3)]
    heads = FifaHeads(llm_dim=24, feat_dim=12, classes=[], cfg=cfg, regions=regions, grid=4)
    feats, images = torch.randn(2, 4, 4, 12), torch.randn(2, 3, 32, 32)
    pix = heads.pixels(images)
    seg_h, rows, named = torch.randn(4, 24), torch.tensor([0, 0, 1, 1]), torch.tensor([0, 2, -1, 1])
    gated = heads.mask(seg_h, rows, feats, pix, 32, images, regions=named)
    plain = heads.mask(seg_h, rows, feats, pix, 32, images, regions=torch.full((4,), -1))
    where = heads.mask.region_logits(named[[0, 1, 3]], rows[[0, 1, 3]], feats, images, 32)
    assert torch.equal(gated[2], plain[2])  # names no region: unchanged
    for j, i in enumerate((0, 1, 3)):
        assert not torch.allclose(gated[i], plain[i])
        assert torch.allclose(gated[i].sigmoid(), plain[i].sigmoid() * where[j].sigmoid(), atol=1e-5)
    gated[[0, 1, 3]].sum().backward()
    assert all(p.grad is None for p in heads.mask.gate.parameters())


def test_mark_masks_artifact_teaches_every_mark_the_whole_artifact(small_build):
    """heads.mark_masks: artifact — each [SEG] of an age answer learns the union of the answer's masks (the
    anchor masks of prediction keep each mark's region of it); the default learns each mark's own mask."""
    import numpy as np

    from fifa.core.rle import encode

    loaded, data, ds, _ = _model(small_build, "llava")
    i = next(i for i in range(len(data)) if data.tasks[i] == "age" and data.rows.row(i)["masks"])
    row = dict(data.rows.row(i))
    h, w = row["masks"][0]["size"]
    left, right = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    left[h // 4 : h // 2, : w // 2], right[h // 2 :, w // 2 :] = 1, 1
    row["masks"] = [encode(left), encode(right)]
    row["messages"] = [
        row["messages"][0],
        {"role": "assistant", "content": "In [the left eye](left_eye) and [the nose](nose) the colour differs."},
    ]
    own = ds.encoder(row, data.resolve_image)
    ds.encoder.mark_masks = "artifact"
    whole = ds.encoder(row, data.resolve_image)
    assert len(own.masks) == len(whole.masks) == 2 and not np.array_equal(own.masks[0], own.masks[1])
    assert all(np.array_equal(m, np.maximum(own.masks[0], own.masks[1])) for m in whole.masks)
