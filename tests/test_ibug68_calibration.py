"""The 68-point calibration: its frame, estimator, file format and the shipped data."""

from __future__ import annotations

import numpy as np
import pytest

from fifa.concept_tree.ibug68 import ibug68_from_mediapipe, regions_from_ibug68
from fifa.concept_tree.ibug68_calibration import (
    Ibug68Calibration,
    consensus_offsets,
    default_calibration,
    face_frame,
    point_errors,
    residuals,
)
from fifa.concept_tree.mesh_topology import mesh_reference

#: iBUG index of the mirrored point (subject's left <-> right).
IBUG_MIRROR = (
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


def _face(scale=40.0, angle=0.0, shift=(200.0, 150.0)):
    """68 points of the reference layout, turned, scaled and moved into pixels."""
    from fifa.concept_tree.ibug68 import MEDIAPIPE_TO_IBUG68

    ref, _ = mesh_reference()
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return ref[list(MEDIAPIPE_TO_IBUG68)] @ rot.T * scale + np.asarray(shift)


def test_frame_and_offsets_turn_and_scale_with_the_face():
    rng = np.random.default_rng(0)
    cal = Ibug68Calibration(rng.normal(0, 0.05, (68, 2)))
    upright = _face(scale=40.0, angle=0.0)
    turned = _face(scale=90.0, angle=0.6, shift=(400.0, 120.0))
    origin, axes, iod = face_frame(turned)
    assert iod == pytest.approx(90.0 * np.linalg.norm(upright[42:48].mean(0) - upright[36:42].mean(0)) / 40.0)
    assert np.allclose(axes[0], [np.cos(0.6), np.sin(0.6)], atol=1e-6)  # x along the eye line
    # the calibrated turned face is the calibrated upright face, turned the same way
    c, s = np.cos(0.6), np.sin(0.6)
    move = lambda p: (p - (200.0, 150.0)) @ np.array([[c, -s], [s, c]]).T * (90.0 / 40.0) + (400.0, 120.0)  # noqa: E731
    assert np.allclose(cal.apply(turned), move(cal.apply(upright)), atol=1e-6)
    assert np.allclose(Ibug68Calibration(np.zeros((68, 2))).apply(turned), turned)
    # residuals are the inverse of apply
    target = cal.apply(turned)
    mesh = np.zeros((478, 2))
    from fifa.concept_tree.ibug68 import MEDIAPIPE_TO_IBUG68

    mesh[list(MEDIAPIPE_TO_IBUG68)] = target
    assert np.allclose(residuals(turned, mesh), cal.offsets, atol=1e-9)


def test_consensus_keeps_only_what_every_group_agrees_on():
    a = np.zeros((3, 68, 2))
    b = np.zeros((2, 68, 2))
    a[:, 0, 1], b[:, 0, 1] = -0.3, -0.2  # both groups: up, by 0.3 and 0.2 -> 0.2
    a[:, 5, 0], b[:, 5, 0] = 0.1, -0.1  # disagree -> 0
    a[:, 9, 0] = [0.1, 0.2, 0.3]  # group mean 0.2; b has 0 -> 0 (no sign)
    b[:, 9, 0] = 0.0
    off = consensus_offsets({"a": a, "b": b})
    assert off[0, 1] == pytest.approx(-0.2) and off[5, 0] == 0.0 and off[9, 0] == 0.0
    assert np.count_nonzero(off) == 1
    one = consensus_offsets({"a": a})  # a single group: its mean
    assert np.allclose(one, a.mean(axis=0))
    with pytest.raises(ValueError):
        consensus_offsets({})
    errs = point_errors(a, off)
    assert set(errs) == {"jaw", "brows", "nose", "eyes", "lips", "all"} and errs["jaw"] > 0


def test_file_round_trip_and_bad_values(tmp_path):
    cal = Ibug68Calibration(np.full((68, 2), 0.01), {"made_by": "test"})
    cal.save(tmp_path / "c.json")
    back = Ibug68Calibration.load(tmp_path / "c.json")
    assert np.allclose(back.offsets, cal.offsets) and back.about == {"made_by": "test"}
    with pytest.raises(ValueError, match="68"):
        Ibug68Calibration(np.zeros((67, 2)))
    with pytest.raises(ValueError, match="finite"):
        Ibug68Calibration(np.full((68, 2), np.nan))
    bad = _face()
    bad[36:48] = bad[36]
    with pytest.raises(ValueError, match="eye"):
        face_frame(bad)


def test_shipped_calibration_records_how_it_was_made():
    cal = default_calibration()
    about = cal.about
    for key in ("what", "detector", "reference", "estimator", "groups", "faces", "point_error_iod",
                "cross_validation", "made_by", "date", "versions"):  # fmt: skip
        assert key in about, key
    assert "commercial" in about["detector"]
    assert {"astronaut", "grace_hopper", "lfw"} <= set(about["groups"])
    assert sum(g["both_detected"] for g in about["faces"].values()) == about["pairs"] >= 150
    assert about["point_error_iod"]["calibrated"]["all"] < about["point_error_iod"]["raw"]["all"]
    # every face came with its mirror, so the offsets are nearly left/right symmetric
    mirrored = cal.offsets[IBUG_MIRROR] * np.array([-1.0, 1.0])
    assert np.abs(cal.offsets - mirrored).max() < 0.06
    # the convention difference the calibration exists for: the top jaw points (iBUG 0, 16) lie
    # on the visible outline, a fifth of the eye distance and more below mesh vertices 162 / 389
    assert cal.offsets[0, 1] < -0.15 and cal.offsets[16, 1] < -0.15
    assert np.abs(cal.offsets[36:48]).max() < 0.05  # eye points: conventions nearly agree


def test_calibration_is_an_option_of_the_68_point_path(astronaut_rgb):
    from fifa.concept_tree.segment import Segmenter

    with Segmenter() as seg:
        full = seg.segment(astronaut_rgb)
    pts = ibug68_from_mediapipe(full.landmarks)
    plain = regions_from_ibug68(pts, astronaut_rgb.shape[:2])
    cal = regions_from_ibug68(pts, astronaut_rgb.shape[:2], calibration=default_calibration())
    assert plain.meta["ibug68_calibrated"] is False and cal.meta["ibug68_calibrated"] is True
    assert np.allclose(cal.meta["ibug68"], pts)  # the input points are kept as given
    # mesh-derived points need no calibration: applying one moves the jaw top upwards
    assert cal.landmarks[162, 1] < plain.landmarks[162, 1] - 5
