"""68-point (iBUG) input path: regions from 68 landmarks against the full 478-point result.

The ``test_fit_unit_*`` tests feed points taken from MediaPipe's own mesh: they check the
68 -> mesh fit in isolation (an upper bound, circular by design). Detected points (dlib) are
tested in ``test_backends_dlib68.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fifa.concept_tree.segmentation.ibug68 import (
    IBUG68_UNSUPPORTED,
    MEDIAPIPE_TO_IBUG68,
    estimate_mesh,
    ibug68_from_mediapipe,
    regions_from_ibug68,
    support_fractions,
)
from fifa.concept_tree.segmentation.mesh_topology import mesh_reference
from fifa.concept_tree.segmentation.segment import Segmenter, leaf_ids
from fifa.concept_tree.tree import load_tree

# Anchors both paths support. Measured on the two sample faces (MediaPipe 0.10.21, 68 points
# taken from the 478-point mesh, so this is a unit test of the fit, not of detected points; region
# rules of 9969dfd): eyes 0.77-0.82 (the 68-point eye lacks the eyeball; without it
# 0.90-0.92), brows 0.89-0.93, nose 0.95-0.97, mouth 0.95-0.98, chin 0.97, cheeks 0.88-0.90,
# jaws 0.89-0.93. The threshold leaves a margin of about 0.07 below the lowest.
ANCHORS = (
    "left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "nose", "mouth", "chin",
    "left_cheek", "right_cheek", "left_jaw", "right_jaw",
)  # fmt: skip
MIN_IOU = 0.7


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = (a | b).sum()
    return float((a & b).sum() / u) if u else 1.0


@pytest.fixture(scope="module")
def full_results(astronaut_rgb, grace_hopper_rgb):
    with Segmenter() as seg:
        out = {
            "astronaut": (astronaut_rgb, seg.segment(astronaut_rgb)),
            "grace_hopper": (grace_hopper_rgb, seg.segment(grace_hopper_rgb)),
        }
    for _, r in out.values():
        assert r.ok and r.landmarks.shape == (478, 2)
    return out


def test_mapping_is_consistent_with_reference_layout():
    ref, mirror = mesh_reference()
    m = np.asarray(MEDIAPIPE_TO_IBUG68)
    assert len(m) == 68 and len(set(m.tolist())) == 68
    u = ref[m, 0]
    # subject's right (u < 0, image left) for iBUG jaw 0-7, right brow, right eye, right mouth corner
    assert np.all(u[[0, 1, 2, 3, 4, 5, 6, 7]] < 0) and np.all(u[[9, 10, 11, 12, 13, 14, 15, 16]] > 0)
    assert np.all(u[17:22] < 0) and np.all(u[22:27] > 0)
    assert np.all(u[36:42] < 0) and np.all(u[42:48] > 0)
    assert u[48] < 0 < u[54] and u[60] < 0 < u[64]
    assert m[36] == 33 and m[45] == 263  # outer eye corners
    assert ref[m[36], 0] < ref[m[39], 0] < ref[m[42], 0] < ref[m[45], 0]  # eye corners left to right
    assert ref[m[8], 1] == ref[m, 1].max()  # iBUG 8 is the chin, lowest point
    # the mapping is (nearly) left-right symmetric: mirrored iBUG pairs mirror in the reference
    pairs = [(i, 16 - i) for i in range(8)] + [(17 + i, 26 - i) for i in range(5)] + [(36, 45), (39, 42), (48, 54)]
    for i, j in pairs:
        assert abs(ref[m[i], 0] + ref[m[j], 0]) < 0.02 and abs(ref[m[i], 1] - ref[m[j], 1]) < 0.02


def test_unsupported_is_what_68_points_cannot_reach():
    frac = support_fractions()
    mesh_unsupported = {k for k in IBUG68_UNSUPPORTED if k in frac}
    assert mesh_unsupported  # forehead, brow ridges, upper temples are mesh leaves
    assert all(frac[k] == 0.0 for k in mesh_unsupported)
    kept = {k: f for k, f in frac.items() if k not in IBUG68_UNSUPPORTED}
    assert min(kept.values()) >= 0.5, kept
    assert set(leaf_ids()) >= IBUG68_UNSUPPORTED


def test_fit_unit_estimated_mesh_matches_the_mesh_the_points_came_from(full_results):
    for name, (_, full) in full_results.items():
        est = estimate_mesh(ibug68_from_mediapipe(full.landmarks))
        iod = np.linalg.norm(full.landmarks[468] - full.landmarks[473])
        err = np.linalg.norm(est - full.landmarks[:468], axis=1) / iod
        below_brows = full.landmarks[:468, 1] > full.landmarks[list(MEDIAPIPE_TO_IBUG68[17:27]), 1].max()
        assert np.allclose(est[list(MEDIAPIPE_TO_IBUG68)], ibug68_from_mediapipe(full.landmarks))
        # measured: mean 0.010 of the IOD (max 0.04) on both sample faces
        assert err[below_brows].mean() < 0.02, (name, err[below_brows].mean())


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_fit_unit_mesh_derived_points_give_regions_that_agree_with_478_point_regions(full_results, name):
    rgb, full = full_results[name]
    h, w = rgb.shape[:2]
    pts68 = ibug68_from_mediapipe(full.landmarks)
    r = regions_from_ibug68(pts68, (h, w))
    assert r.ok and r.backend == "ibug68" and r.leaf_ids == full.leaf_ids
    assert r.label_map.shape == (h, w)

    ious = {a: _iou(full.mask(a), r.mask(a)) for a in ANCHORS}
    assert all(v >= MIN_IOU for v in ious.values()), ious

    # unsupported leaves are absent; every supported face leaf the full path draws is drawn
    present = set(r.areas())
    assert not (present & IBUG68_UNSUPPORTED)
    tree = load_tree()
    face_leaves = {n.id for n in tree.leaves(under="face")}
    assert (set(full.areas()) & face_leaves) - IBUG68_UNSUPPORTED <= present

    # the supported face leaves are pairwise disjoint
    stack = np.stack([r.mask(k) for k in sorted(face_leaves - IBUG68_UNSUPPORTED)])
    assert stack.sum(axis=0).max() == 1

    # the eyeball is unknown: its pixels are unlabelled, not lid or lash labels
    eyeball = full.mask("left_eyeball") | full.mask("right_eyeball")
    assert (r.label_map[eyeball] == -1).mean() > 0.8

    # subject's left eye/brow/jaw on the image right
    def cx(node):
        return np.nonzero(r.mask(node))[1].mean()

    assert cx("left_eye") > cx("right_eye")
    assert cx("left_eyebrow") > cx("right_eyebrow")
    assert cx("left_jaw") > cx("right_jaw")


def test_person_map_gives_outside_concepts(full_results):
    rgb, full = full_results["grace_hopper"]
    h, w = rgb.shape[:2]
    person = np.zeros((h, w), dtype=np.float32)
    off_face = {n.id for n in load_tree().leaves()} - {n.id for n in load_tree().leaves(under="face")}
    background = {n.id for n in load_tree().leaves(under="background")}
    for k in off_face - background:
        person[full.mask(k)] = 1.0
    person[full.face_mask] = 1.0
    r = regions_from_ibug68(ibug68_from_mediapipe(full.landmarks), (h, w), person)
    assert r.mask("hair").sum() > 0 and r.mask("background").sum() > 0 and r.mask("neck").sum() > 0
    assert not (set(r.areas()) & IBUG68_UNSUPPORTED)
    # off-face concepts never cover the supported face leaves
    assert not (r.mask("hair") & r.face_mask).any()


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="68"):
        regions_from_ibug68(np.zeros((67, 2)), (100, 100))
    bad = np.zeros((68, 2))
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        regions_from_ibug68(bad, (100, 100))
    with pytest.raises(ValueError):
        ibug68_from_mediapipe(np.zeros((68, 2)))


# --- face_alignment backend (optional package, local weights only) -------------------------------

import importlib.util  # noqa: E402

from fifa.concept_tree.segmentation import face_alignment_backend as fab  # noqa: E402


@pytest.mark.skipif(importlib.util.find_spec("face_alignment") is not None, reason="face_alignment is installed")
def test_face_alignment_package_missing_says_how_to_install():
    with pytest.raises(fab.BackendUnavailable) as e:
        fab.FaceAlignmentLandmarks(device="cpu")
    assert "install with: pip install 'fifa-toolkit[facealign]'" in str(e.value)
    assert isinstance(e.value, RuntimeError)


def test_face_alignment_missing_weights_names_files_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    assert fab.torch_hub_dir() == tmp_path / "hub"
    missing = fab.missing_weights()
    assert missing == [folder / "2DFAN4-cd938726ad.zip", folder / "s3fd-619a316812.pth"]
    msg = fab.missing_weights_message(missing)
    assert str(folder) in msg and "2DFAN4-cd938726ad.zip" in msg and "s3fd-619a316812.pth" in msg
    assert "never downloads" in msg
    # an explicit torch_home wins over the environment; torch 1.6 has its own FAN build
    other = tmp_path / "other"
    assert (
        fab.missing_weights(other, torch_version="1.6.0")[0]
        == other / "hub" / "checkpoints" / "2DFAN4_1.6-c827573f02.zip"
    )
    # once the files are there nothing is missing
    folder.mkdir(parents=True)
    for p in missing:
        p.write_bytes(b"x")
    assert fab.missing_weights() == []
    assert fab.missing_weights(weights_dir=tmp_path / "empty") == [
        tmp_path / "empty" / n for n in fab.required_weights()
    ]


def test_default_hub_dir_without_torch_home(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fab.torch_hub_dir() == tmp_path / "torch" / "hub"
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert Path(torch.hub.get_dir()) == fab.torch_hub_dir()  # same resolution as torch itself


def test_offline_hub_refuses_downloads_and_restores_torch_hub(tmp_path):
    import torch.hub

    before = torch.hub.get_dir()
    weights = tmp_path / "my_weights"
    weights.mkdir()
    with fab._offline_hub(weights):
        assert (Path(torch.hub.get_dir()) / "checkpoints").resolve() == weights.resolve()
        with pytest.raises(fab.BackendUnavailable, match="never downloads"):
            torch.hub.load_state_dict_from_url("https://example.invalid/weights-0123456789.pth")
    assert torch.hub.get_dir() == before
    assert torch.hub.download_url_to_file.__name__ == "download_url_to_file"
