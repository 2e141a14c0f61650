"""dlib68 backend: dlib's detected 68 points (real dlib, real model from face-recognition-models)
through the calibrated 68-point path, against the MediaPipe path on the sample photos."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fifa.concept_tree.dlib_backend import INSTALL_HINT, Dlib68Landmarks
from fifa.concept_tree.ibug68 import IBUG68_UNSUPPORTED
from fifa.concept_tree.ibug68_calibration import COMPARED_ANCHORS, anchor_ious
from fifa.concept_tree.segment import BACKENDS, SegmentConfig, Segmenter
from fifa.concept_tree.tree import load_tree

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def results(astronaut_rgb, grace_hopper_rgb):
    """MediaPipe, dlib68 (shipped calibration) and raw dlib68 results on both photos and their mirrors."""
    images = {"astronaut": astronaut_rgb, "grace_hopper": grace_hopper_rgb}
    images |= {f"{k}_mirror": np.ascontiguousarray(v[:, ::-1]) for k, v in list(images.items())}
    out = {}
    with Segmenter() as mp, Segmenter(SegmentConfig(backend="dlib68")) as dl, Dlib68Landmarks(calibration=None) as raw:
        for name, rgb in images.items():
            out[name] = (rgb, mp.segment(rgb), dl.segment(rgb), raw.segment(rgb))
    return out


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "astronaut_mirror", "grace_hopper_mirror"])
def test_detected_points_give_regions_that_agree_with_mediapipe(results, name):
    rgb, ref, got, _ = results[name]
    assert got.ok and got.backend == "dlib68" and got.leaf_ids == ref.leaf_ids
    assert got.meta["ibug68_calibrated"] is True and np.asarray(got.meta["ibug68"]).shape == (68, 2)
    assert got.label_map.shape == rgb.shape[:2]
    ious = anchor_ious(ref, got)
    # Measured with detected points (HOG, upsample 1; region rules of 89dcfc6): mean 0.72-0.80,
    # nose/mouth/chin 0.82-0.91, eyes and brows 0.68-0.83, cheeks 0.63-0.83, jaws 0.32-0.82
    # (Grace Hopper's mirrored left jaw, a band a few pixels wide, is the 0.32).
    assert np.mean(list(ious.values())) >= 0.68, ious
    assert min(ious["nose"], ious["mouth"], ious["chin"]) >= 0.75, ious
    assert min(ious[a] for a in COMPARED_ANCHORS if "jaw" not in a) >= 0.55, ious
    assert min(ious["left_jaw"], ious["right_jaw"]) >= 0.25, ious


def test_shipped_calibration_brings_detected_points_closer_to_mediapipe(results):
    """On the four sample images (among the faces the calibration was made with; held-out
    numbers are in docs/backends.md from scripts/bench_dlib68.py): measured 0.715 -> 0.757."""
    raw = np.mean([np.mean(list(anchor_ious(ref, r).values())) for _, ref, _, r in results.values()])
    cal = np.mean([np.mean(list(anchor_ious(ref, g).values())) for _, ref, g, _ in results.values()])
    assert cal >= raw + 0.025, (raw, cal)


def test_partition_parents_and_unsupported(results):
    tree = load_tree()
    face_leaves = {n.id for n in tree.leaves(under="face")}
    for name, (_, ref, got, _) in results.items():
        present = set(got.areas())
        assert not (present & IBUG68_UNSUPPORTED), name
        assert got.meta["unsupported"] == sorted(IBUG68_UNSUPPORTED)
        # every supported face leaf MediaPipe draws is drawn; they are pairwise disjoint
        assert (set(ref.areas()) & face_leaves) - IBUG68_UNSUPPORTED <= present, name
        stack = np.stack([got.mask(k) for k in sorted(face_leaves - IBUG68_UNSUPPORTED)])
        assert stack.sum(axis=0).max() == 1, name
        # a parent is the union of its leaves
        assert np.array_equal(got.mask("left_eye"), np.any([got.mask(n.id) for n in tree.leaves(under="left_eye")], axis=0))
        # eyeball pixels are unlabelled, not eyelid labels (measured: 0.67-0.9 of MediaPipe's eyeball;
        # the detected eye opening is a 6-point polygon and not where MediaPipe puts it exactly)
        eyeball = ref.mask("left_eyeball") | ref.mask("right_eyeball")
        assert (got.label_map[eyeball] == -1).mean() > 0.55, name
        # SelfieSegmentation still gives the off-face concepts
        assert got.mask("hair").sum() > 0 and got.mask("background").sum() > 0 and got.mask("neck").sum() > 0, name
        assert not (got.mask("hair") & got.face_mask).any()


def test_left_right_follow_the_subject(results):
    def cx(r, node):
        return np.nonzero(r.mask(node))[1].mean()

    for name in ("astronaut", "grace_hopper"):
        _, _, got, _ = results[name]
        _, _, mirrored, _ = results[name + "_mirror"]
        w = got.image_size[1]
        for left, right in (("left_eye", "right_eye"), ("left_eyebrow", "right_eyebrow"), ("left_jaw", "right_jaw")):
            assert cx(got, left) > cx(got, right), (name, left)
            assert cx(mirrored, left) > cx(mirrored, right), (name, left)
            # the subject's left eye of the mirror lies where the right eye was
            assert abs((w - 1 - cx(mirrored, left)) - cx(got, right)) < 0.05 * w, (name, left)


def test_no_face_grey_and_bad_input():
    import skimage.data

    with Segmenter(SegmentConfig(backend="dlib68")) as dl:
        r = dl.segment(skimage.data.coffee())
        assert r.status == "no_face" and r.backend == "dlib68" and r.error == "no face detected"
        grey = skimage.data.astronaut().mean(axis=2).astype(np.uint8)  # 2-D input is accepted as grey RGB
        g = dl.segment(grey)
        assert g.ok and g.mask("nose").sum() > 0
        assert dl.segment(np.zeros((8, 8, 3), np.uint8)).status == "no_face"
        with pytest.raises(ValueError, match="uint8"):
            dl.segment(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="unknown segmentation backend"):
        Segmenter(SegmentConfig(backend="dlib5"))
    with pytest.raises(ValueError, match="detector"):
        Dlib68Landmarks(detector="mtcnn")
    assert BACKENDS == ("mediapipe", "dlib68")


def _hide(tmp_path: Path, *modules: str) -> dict:
    """Environment for a subprocess in which importing ``modules`` fails (a sitecustomize sets
    ``sys.modules[name] = None``)."""
    site = tmp_path / "hide"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules))
    env = dict(os.environ, PYTHONPATH=str(site), GLOG_minloglevel="2")
    return env


@pytest.mark.parametrize("hidden", ["dlib", "face_recognition_models"])
def test_missing_package_says_how_to_install(tmp_path, hidden):
    code = textwrap.dedent("""
        from fifa.concept_tree.landmarks import BackendUnavailable
        from fifa.concept_tree.segment import SegmentConfig, Segmenter
        try:
            Segmenter(SegmentConfig(backend="dlib68"))
        except BackendUnavailable as e:
            print("UNAVAILABLE:", e)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_hide(tmp_path, hidden), timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "UNAVAILABLE:" in p.stdout and INSTALL_HINT in p.stdout, p.stdout
    assert "commercial" in p.stdout


def test_cli_segments_with_dlib68_and_refuses_cleanly_without_dlib(sample_faces_dir, tmp_path):
    out = tmp_path / "out"
    cmd = [str(BIN / "fifa-tree"), "segment", str(sample_faces_dir), "--out", str(out), "--backend", "dlib68",
           "--no-overlays", "--workers", "1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "FIFA_DLIB68_LICENCE_SHOWN"}  # set by this process's Segmenters
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(env, GLOG_minloglevel="2"), timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr.count("non-commercial") == 1  # the licence is told once (not again by each worker)
    images = pq.read_table(out / "images.parquet").to_pylist()
    assert sorted(r["status"] for r in images) == ["ok", "ok"]
    nodes = set(pq.read_table(out / "regions.parquet", columns=["node_id"]).column(0).to_pylist())
    assert {"nose", "left_eye", "hair", "left_jaw"} <= nodes and not (nodes & IBUG68_UNSUPPORTED)

    p = subprocess.run(cmd, capture_output=True, text=True, env=_hide(tmp_path, "dlib"), timeout=120)
    assert p.returncode == 2 and INSTALL_HINT in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]

    bad = [str(BIN / "fifa-tree"), "segment", str(sample_faces_dir), "--out", str(out), "--backend", "dlib5"]
    p = subprocess.run(bad, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "dlib5" in p.stderr


def test_cnn_detector_from_the_model_package(astronaut_rgb):
    """dlib's MMOD detector (its file ships in face-recognition-models) finds the face the HOG
    detector finds; the points agree to a pixel (measured 0.15 px on this 184x208 crop)."""
    import cv2

    crop = cv2.resize(astronaut_rgb[0:260, 100:330], (184, 208), interpolation=cv2.INTER_AREA)
    with Dlib68Landmarks(detector="cnn", upsample=0) as cnn, Dlib68Landmarks(upsample=0) as hog:
        a, b = cnn.landmarks(crop), hog.landmarks(crop)
    assert len(a) == len(b) == 1
    assert np.abs(a[0] - b[0]).mean() < 1.5
