"""Face parsing targets of the mask head's region queries (modeling/region_maps.py, heads.region_parse_weight)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fifa.core.rle import decode
from fifa.modeling.imaging import Letterbox
from fifa.modeling.region_maps import pick_regions, region_targets, segment_images

REGIONS = ["left_eyeball", "right_eyeball", "nose", "upper_lip", "left_ear_lobe_that_is_not_a_node"]


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def maps(astronaut_rgb):
    face = astronaut_rgb[0:256, 96:352]  # her face, 256 px
    images = [
        {"path": "face.png"},
        {"path": "face.png"},  # the same image twice: segmented once
        {"path": "sky.png"},  # no face in it
        {"path": "broken.png"},  # unreadable
        {"bytes": _png(face[::2, ::2])},
    ]
    seen: list[str] = []

    def load(img: dict) -> np.ndarray:
        seen.append(str(img.get("path")))
        if img.get("bytes"):
            return np.asarray(Image.open(io.BytesIO(img["bytes"])).convert("RGB"))
        if img["path"] == "broken.png":
            raise OSError("cannot identify image file")
        return face if img["path"] == "face.png" else np.full((128, 128, 3), 200, np.uint8)

    return segment_images(images, REGIONS, load), seen, face


def test_every_distinct_image_is_segmented_once(maps):
    found, seen, _ = maps
    assert seen.count("face.png") == 1 and len(seen) == 4
    by_bytes = [k for k in found if k.startswith("sha1:")]
    assert set(found) == {"face.png", "sky.png", *by_bytes} and len(by_bytes) == 1
    assert {"left_eyeball", "nose"} <= set(found[by_bytes[0]])  # the half-size copy is a face too
    assert found["sky.png"] == {}  # no face: every region absent
    assert "broken.png" not in found  # unreadable: no targets at all


def test_the_regions_lie_where_the_face_has_them(maps):
    found, _, face = maps
    regions = found["face.png"]
    assert {"left_eyeball", "right_eyeball", "nose", "upper_lip"} <= set(regions)
    assert "left_ear_lobe_that_is_not_a_node" not in regions
    masks = {r: decode(regions[r]) for r in ("left_eyeball", "right_eyeball", "nose", "upper_lip")}
    assert all(m.shape == face.shape[:2] for m in masks.values())
    cy = {r: np.nonzero(m)[0].mean() for r, m in masks.items()}
    cx = {r: np.nonzero(m)[1].mean() for r, m in masks.items()}
    assert cy["left_eyeball"] < cy["nose"] < cy["upper_lip"] and cy["right_eyeball"] < cy["nose"]
    assert cx["right_eyeball"] < cx["left_eyeball"]  # the subject's left eye is on the image's right
    assert 20 < masks["left_eyeball"].sum() < masks["nose"].sum()


def test_pick_regions_takes_found_ones_first_and_some_absent():
    regions = [f"r{i}" for i in range(10)]
    found = {"r1": {}, "r4": {}, "r7": {}}
    rng = np.random.default_rng(0)
    chosen = pick_regions(found, regions, 8, rng)
    assert len(chosen) == len(set(chosen)) == 8 and {1, 4, 7} <= set(chosen)
    many = {f"r{i}": {} for i in range(9)}
    chosen = pick_regions(many, regions, 8, rng)
    assert 9 in chosen and len(chosen) == 8  # 6 found at most, the absent one too
    assert pick_regions({}, regions, 4, rng) and len(pick_regions({}, regions, 4, rng)) == 4


def test_targets_are_letterboxed_like_the_image(maps):
    found, _, face = maps
    wide = np.zeros((256, 512), bool)  # the face on the left half of a wide image: letterboxed with bars
    eye = decode(found["face.png"]["left_eyeball"]).astype(bool)
    wide[:, :256] = eye
    from fifa.core.rle import encode

    t = region_targets({"left_eyeball": encode(wide)}, REGIONS, [0, 2], Letterbox(256, 512, 128), 128)
    assert t.shape == (2, 128, 128) and t[1].sum() == 0  # a region not found: an empty target
    ys, xs = np.nonzero(t[0])
    ey, ex = np.nonzero(eye)
    assert abs(xs.mean() - ex.mean() / 4) < 1.5 and abs(ys.mean() - (32 + ey.mean() / 4)) < 1.5  # 32 px bar above


def test_parse_loss_trains_the_region_queries(small_build):
    """With region_gate and region_parse_weight, rows carry region targets and the loss reaches the queries."""
    from micro_config import MICRO

    from fifa.modeling.collate import Collator, Encoder, InstructDataset
    from fifa.modeling.config import load_config
    from fifa.modeling.data import InstructData
    from fifa.modeling.loading import create
    from fifa.modeling.train import training_texts
    from fifa.modeling.vocab import classes_of, mark_vocabulary

    over = [*MICRO, "model.base=tiny", "heads.mark_head=true", "heads.mark_queries=true", "heads.region_gate=true"]
    cfg = load_config(None, [*over, "heads.region_parse_weight=1.0"])
    data = InstructData(small_build)
    regions = mark_vocabulary(data, 16)
    torch.manual_seed(0)
    loaded = create(cfg, list(training_texts(data)), classes_of(data, cfg), None, regions)
    model = loaded.model
    ids = [r["id"] for r in model.heads.regions]
    assert ids and model.heads.mask.gate is not None
    parsed = segment_images(
        [data.rows.row(i)["image"] for i in range(len(data))],
        ids,
        lambda img: np.asarray(Image.open(data.resolve_image(img)).convert("RGB")),
    )
    enc = Encoder(loaded.tokenizer, loaded.fam, model.heads.classes, "category", 32, 160, None, ids, parsed, 4)
    ds, coll = InstructDataset(data, enc), Collator(loaded.fam, loaded.tokenizer.pad_token_id)
    batch = coll([ds[i] for i in range(6)])
    assert len(batch["parse_ids"]) == len(batch["parse_rows"]) == len(batch["parse_targets"]) == 24
    assert batch["parse_targets"].sum() > 0
    loss, logs = model(batch)
    assert "parse_dice" in logs
    loss.backward()
    grads = [q.grad for q in model.heads.mask.gate.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_anchor_masks_give_the_named_regions_anchor(maps, astronaut_rgb):
    """predict.region_masks: segmenter keeps a mark's mask inside its region's anchor: an eyeball's mark
    inside the eye, segmented once per image."""
    from fifa.modeling.region_maps import AnchorMasks

    found, _, face = maps
    calls = []

    class Counting:
        def __init__(self):
            from fifa.concept_tree.segmentation.segment import Segmenter

            self.seg = Segmenter()

        def segment(self, rgb):
            calls.append(rgb.shape)
            return self.seg.segment(rgb)

        def close(self):
            self.seg.close()

    masks = AnchorMasks(Counting())
    try:
        eye = masks("face.png", face, "left_eyeball")
        assert masks("face.png", face, "left_eye") is not None and len(calls) == 1
        assert masks("sky.png", np.full((96, 96, 3), 200, np.uint8), "left_eyeball") is None  # no face
    finally:
        masks.close()
    eyeball = decode(found["face.png"]["left_eyeball"]).astype(bool)
    assert eye.shape == face.shape[:2] and eye.sum() > 2 * eyeball.sum()
    assert (eye & eyeball).sum() == eyeball.sum()  # the eyeball lies in its anchor, the left eye


def test_predictor_keeps_a_named_marks_mask_in_its_anchor(small_build, maps):
    from micro_config import MICRO

    from fifa.modeling.config import load_config
    from fifa.modeling.data import InstructData
    from fifa.modeling.loading import create
    from fifa.modeling.predict import Predictor
    from fifa.modeling.train import training_texts
    from fifa.modeling.vocab import classes_of

    found, _, face = maps
    cfg = load_config(None, [*MICRO, "model.base=tiny", "predict.region_masks=segmenter"])
    data = InstructData(small_build)
    loaded = create(cfg, list(training_texts(data)), classes_of(data, cfg), None, [])
    pred = Predictor(loaded.model, loaded.tokenizer, loaded.fam, "cpu", region_masks=cfg.predict.region_masks)
    pred._rgbs = [("face.png", face)]
    everywhere = np.ones(face.shape[:2], bool)
    kept = pred._in_region(everywhere, 0, "left_eyeball")
    eyeball = decode(found["face.png"]["left_eyeball"]).astype(bool)
    assert 2 * eyeball.sum() < kept.sum() < 0.1 * kept.size and (kept & eyeball).sum() == eyeball.sum()
    plain = Predictor(loaded.model, loaded.tokenizer, loaded.fam, "cpu")
    assert plain.anchor_masks is None
