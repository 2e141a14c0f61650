"""The SAM grounding decoder (heads.mask_decoder: sam) on a tiny random SamModel saved as a folder: frozen image
encoder run once per image, [SEG] queries as SAM prompts, a trained mask decoder, checkpoints that keep only it,
and the errors a user gets without weights."""

from __future__ import annotations

import json

import pytest
import torch
from micro_config import MICRO

from fifa.core.errors import UserError
from fifa.modeling.config import load_config


def tiny_sam(dest):
    from transformers import SamConfig, SamModel

    cfg = SamConfig(
        vision_config=dict(
            hidden_size=32,
            output_channels=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=64,
            patch_size=8,
            window_size=4,
            global_attn_indexes=[1],
            mlp_dim=64,
            num_pos_feats=8,
        ),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(
            hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=16
        ),
    )
    torch.manual_seed(0)
    SamModel(cfg).save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    return tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


def _cfg(sam_dir, *extra):
    return load_config(None, [*MICRO, "heads.mask_decoder=sam", f"heads.sam_model={sam_dir}", *extra])


def test_sam_decoder_trains_only_its_mask_decoder_and_predicts(sam_dir, small_build, tmp_path):
    from safetensors.torch import load_file
    from transformers import SamModel

    from fifa.modeling.submit import predict_bench
    from fifa.modeling.train import train

    cfg = _cfg(
        sam_dir,
        "train.max_steps=3",
        "train.save_every=3",
        "data.tasks.loc=1",
        "data.tasks.age=1",
        "data.tasks.det=0",
        "data.tasks.cls=0",
        "data.tasks.rq_box=0",
        "data.tasks.rq_mask=0",
        "predict.max_new_tokens=8",
    )
    train(cfg, small_build, tmp_path / "ck", progress=False)
    saved = load_file(str(tmp_path / "ck" / "heads.safetensors"))
    sam_keys = [k for k in saved if k.startswith("mask.decoder.sam.")]
    assert sam_keys and all(k.startswith("mask.decoder.sam.mask_decoder.") for k in sam_keys)
    original = SamModel.from_pretrained(sam_dir).state_dict()
    changed = [k for k in sam_keys if not torch.equal(saved[k], original[k[len("mask.decoder.sam.") :]])]
    assert changed, "the SAM mask decoder did not train"
    # prediction rebuilds SAM from its folder and the trained decoder from the checkpoint
    s = predict_bench(tmp_path / "ck", small_build / "bench.parquet", tmp_path / "p.jsonl", limit=12, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert s.predicted == 12 and all(r["answer"] is not None for r in rows)


def test_image_encoder_runs_once_per_image_and_masks_match_decoding_alone(sam_dir):
    from fifa.modeling.config import HeadsConfig
    from fifa.modeling.heads import FifaHeads
    from fifa.modeling.sam import SamDecoder, load_sam

    sam = load_sam(str(sam_dir), torch.float32)
    calls = []
    sam.vision_encoder.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    cfg = HeadsConfig(
        mask_decoder="sam",
        pixel_adapter=False,
        pixel_channels=8,
        pixel_stem="forensic",
        mask_dim=99,
        region_encoder=False,
        cls_head=False,
        det_head=True,
        query_head=False,
    )
    torch.manual_seed(0)
    heads = FifaHeads(llm_dim=24, feat_dim=12, classes=[], cfg=cfg, decoder=SamDecoder(sam, (0.5,) * 3, (0.25,) * 3))
    assert heads.mask.query[-1].out_features == 16  # queries at SAM's prompt width, whatever mask_dim says
    feats, images = torch.randn(3, 4, 4, 12), torch.randn(3, 3, 32, 32)
    seg_h, rows = torch.randn(5, 24), torch.tensor([2, 0, 2, 2, 1])
    together = heads.mask(seg_h, rows, feats, None, 32, images)
    assert calls == [3]  # one encoder pass over the three images, not one per [SEG]
    alone = torch.stack(
        [
            heads.mask(seg_h[i : i + 1], torch.tensor([0]), feats[r : r + 1], None, 32, images[r : r + 1])[0]
            for i, r in enumerate(rows.tolist())
        ]
    )
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(together[0], together[2])
    trainable = {n for n, p in heads.named_parameters() if p.requires_grad and n.startswith("mask.decoder.sam.")}
    assert trainable and all(n.startswith("mask.decoder.sam.mask_decoder.") for n in trainable)


def test_clear_errors_without_sam_weights(sam_dir, small_build, tmp_path):
    from fifa.modeling.data import InstructData
    from fifa.modeling.loading import create
    from fifa.modeling.train import training_texts
    from fifa.modeling.vocab import classes_of

    texts = list(training_texts(InstructData(small_build)))
    no_weights = tmp_path / "config-only"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((sam_dir / "config.json").read_text())
    not_sam = tmp_path / "not-sam"
    not_sam.mkdir()
    (not_sam / "config.json").write_text(json.dumps({"model_type": "bert"}))
    for folder, msg in (
        (no_weights, "cannot load SAM's weights"),
        (not_sam, "not SAM"),
        (tmp_path / "missing", "no SAM config there"),
    ):
        with pytest.raises(UserError, match=msg):
            create(_cfg(folder), texts, classes_of(InstructData(small_build), _cfg(folder)), None)
