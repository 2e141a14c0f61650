"""Face-parsing backend: a real (tiny, randomly initialised) Segformer saved and loaded from disk,
label-map validation, and refine() on real segmentations of a sample face."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from fifa.concept_tree.segmentation.face_parsing import (  # noqa: E402
    CELEBAMASK_HQ_CLASSES,
    LABEL_ORDERS,
    FaceParser,
    refine,
    validate_labels,
)
from fifa.concept_tree.segmentation.segment import Segmenter  # noqa: E402
from fifa.concept_tree.tree import load_tree  # noqa: E402
from fifa.core import rle as rle_utils  # noqa: E402

CELEBA = LABEL_ORDERS["celebamask_hq"]


def _leaves(under: str) -> set[str]:
    return {n.id for n in load_tree().leaves(under=under)}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    cfg = SegformerConfig(
        num_labels=19,
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        id2label=dict(enumerate(CELEBA)),
        label2id={n: i for i, n in enumerate(CELEBA)},
    )
    d = tmp_path_factory.mktemp("tiny_segformer")
    SegformerForSemanticSegmentation(cfg).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def parser(tiny_model_dir):
    return FaceParser(tiny_model_dir, CELEBA, device="cpu", input_size=256)


@pytest.fixture(scope="module")
def astronaut_regions(astronaut_rgb):
    with Segmenter() as seg:
        r = seg.segment(astronaut_rgb)
    assert r.ok
    return r


def test_parse_gives_one_class_per_pixel(parser, astronaut_rgb):
    parsed = parser.parse(astronaut_rgb)
    h, w = astronaut_rgb.shape[:2]
    assert set(parsed) == set(CELEBA)
    stack = np.stack([parsed[k] for k in CELEBA])
    assert stack.dtype == bool and stack.shape == (19, h, w)
    assert (stack.sum(axis=0) == 1).all()
    pred = parser.predict(astronaut_rgb)
    assert pred.shape == (h, w) and pred.min() >= 0 and pred.max() < 19
    assert np.array_equal(parsed["hair"], pred == CELEBA.index("hair"))


def test_parse_face_crops_around_the_face(parser, astronaut_rgb, astronaut_regions):
    parsed = parser.parse_face(astronaut_rgb, astronaut_regions, margin=0.5)
    covered = np.logical_or.reduce(list(parsed.values()))
    x0, y0, x1, y1 = astronaut_regions.face_box
    assert covered[(y0 + y1) // 2, (x0 + x1) // 2]
    assert 0 < covered.sum() < covered.size  # a crop, not the whole 512x512 image
    assert not covered[0, 0] and not covered[-1, -1]


def test_refine_with_model_output_keeps_face_partition(parser, astronaut_rgb, astronaut_regions):
    r = astronaut_regions
    parsed = parser.parse(astronaut_rgb)
    out = parser.refine(r, parsed)
    assert out.leaf_ids == r.leaf_ids and out.label_map.shape == r.label_map.shape
    face = r.face_mask
    assert np.array_equal(out.label_map[face], r.label_map[face])
    assert np.array_equal(out.face_mask, face)
    assert out.label_map.min() >= -1 and out.label_map.max() < len(out.leaf_ids)
    changed = out.label_map != r.label_map
    assert changed.any()  # the random parser disagrees with SelfieSegmentation somewhere
    assert not (changed & face).any()
    off_face = _leaves("face_image") - _leaves("face")
    new_ids = {out.leaf_ids[k] for k in np.unique(out.label_map[changed]) if k >= 0}
    assert new_ids <= off_face
    assert r.label_map is not out.label_map and "occluders" not in r.meta  # input untouched


def test_refine_maps_classes_to_leaves_with_our_sides(astronaut_rgb, astronaut_regions):
    r = astronaut_regions
    h, w = r.image_size
    x0, y0, x1, y1 = r.face_box
    fw = x1 - x0
    face = r.face_mask
    parsed = {k: np.zeros((h, w), bool) for k in CELEBA}
    parsed["background"][:] = True
    # hair: a cap above and beside the head; cloth: the bottom rows; an "l_ear" patch on the IMAGE LEFT
    hair = np.zeros((h, w), bool)
    hair[max(0, y0 - fw // 2) : y0 + fw // 4, max(0, x0 - fw // 4) : min(w, x1 + fw // 4)] = True
    hair &= ~face
    cloth = np.zeros((h, w), bool)
    cloth[h - 40 :, :] = True
    ear = np.zeros((h, w), bool)
    ear_y = (y0 + y1) // 2
    ear[ear_y - 5 : ear_y + 5, max(0, x0 - 12) : x0 - 2] = True
    ear &= ~face & ~hair
    glasses = np.zeros((h, w), bool)
    glasses[y0 + 10 : y0 + 30, x0:x1] = True
    glasses &= face  # over the face: the parser class there never changes a label
    for k, mk in (("hair", hair), ("cloth", cloth), ("l_ear", ear), ("eye_g", glasses)):
        for other in parsed:
            parsed[other] &= ~mk
        parsed[k] |= mk
    out = refine(r, parsed)
    ids = np.asarray(out.leaf_ids + ("<none>",))
    lab = lambda mask: set(ids[out.label_map[mask]])  # noqa: E731

    assert lab(hair) <= _leaves("hair") | _leaves("hairline")
    assert {"crown_hair"} & lab(hair)
    # sides come from our geometry: image-left hair is the subject's right
    left_half = hair & (np.arange(w)[None, :] < x0)
    right_half = hair & (np.arange(w)[None, :] >= x1)
    assert lab(left_half) <= {"right_side_hair", "right_hairline", "crown_hair", "hairline_center"}
    assert lab(right_half) <= {"left_side_hair", "left_hairline", "crown_hair", "hairline_center"}
    assert lab(cloth & ~face) == {"upper_body"}
    # the parser said l_ear on the image left: it becomes the subject's RIGHT ear
    assert lab(ear) and lab(ear) <= _leaves("right_ear")
    rest = ~face & ~hair & ~cloth & ~ear
    assert lab(rest) <= _leaves("background")
    # the face is untouched, eyeglasses recorded as an occluder (not a tree concept)
    assert np.array_equal(out.label_map[face], r.label_map[face])
    assert np.array_equal(rle_utils.decode(out.meta["occluders"]["eyeglasses"]), glasses)
    assert "eyeglasses" not in {n.id for n in load_tree().nodes}


def test_refine_rejects_bad_parsed(astronaut_regions):
    h, w = astronaut_regions.image_size
    with pytest.raises(ValueError, match="size"):
        refine(astronaut_regions, {"hair": np.zeros((h + 1, w), bool)})
    with pytest.raises(ValueError, match="unknown"):
        refine(astronaut_regions, {"beard": np.zeros((h, w), bool)})


def test_label_presets_are_valid():
    for name, order in LABEL_ORDERS.items():
        assert validate_labels(order, 19) == order, name
        assert set(order) == CELEBAMASK_HQ_CLASSES
    assert LABEL_ORDERS["face_parsing_pytorch_bisenet"] != CELEBA


@pytest.mark.parametrize(
    "labels, message",
    [
        (CELEBA[:-1], "18 labels given but the model has 19"),
        (CELEBA[:-1] + ["beard"], "unknown class names ['beard']"),
        (CELEBA[:-1] + ["skin"], "duplicate class names ['skin']"),
        ([c if c != "neck" else "hat" for c in CELEBA], "required classes missing: ['neck']"),
    ],
)
def test_label_map_validation_errors(tiny_model_dir, labels, message):
    with pytest.raises(ValueError, match="invalid face-parser label map") as e:
        FaceParser(tiny_model_dir, labels)
    assert message in str(e.value)


def test_label_map_validation_lists_every_problem():
    with pytest.raises(ValueError) as e:
        validate_labels(["background", "skin", "skin", "beard"], 19)
    msg = str(e.value)
    for part in ("4 labels given", "beard", "duplicate", "hair", "l_ear", "r_ear", "neck"):
        assert part in msg


def test_label_order_differing_from_model_config_warns(tiny_model_dir):
    with pytest.warns(UserWarning, match="id2label"):
        FaceParser(tiny_model_dir, LABEL_ORDERS["face_parsing_pytorch_bisenet"])


def test_missing_or_wrong_model_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found") as e:
        FaceParser(tmp_path / "nope", CELEBA)
    assert "never downloaded" in str(e.value)
    with pytest.raises(FileNotFoundError, match="config.json"):
        FaceParser(tmp_path, CELEBA)
    pth = tmp_path / "79999_iter.pth"
    pth.write_bytes(b"\0")
    with pytest.raises(NotImplementedError, match="BiSeNet"):
        FaceParser(pth, LABEL_ORDERS["face_parsing_pytorch_bisenet"])
