"""The 68-point calibration (a learned 68 points -> mesh map): frame, fit, file format, shipped data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fifa.concept_tree.segmentation import ibug68_calibration as c
from fifa.concept_tree.segmentation.ibug68 import MEDIAPIPE_TO_IBUG68, ibug68_from_mediapipe, regions_from_ibug68
from fifa.concept_tree.segmentation.ibug68_calibration import (
    IBUG_MIRROR,
    CalibrationError,
    Ibug68Calibration,
    default_calibration,
    face_frame,
    fit_mesh_map,
    mirror_points,
    point_errors,
    residuals,
)
from fifa.concept_tree.segmentation.mesh_topology import mesh_reference


def _turn(p: np.ndarray, scale: float, angle: float, shift) -> np.ndarray:
    cs, sn = np.cos(angle), np.sin(angle)
    return p @ np.array([[cs, -sn], [sn, cs]]).T * scale + np.asarray(shift)


def _face(scale=40.0, angle=0.0, shift=(200.0, 150.0)) -> np.ndarray:
    """68 points of the reference layout, turned, scaled and moved into pixels."""
    ref, _ = mesh_reference()
    return _turn(ref[list(MEDIAPIPE_TO_IBUG68)], scale, angle, shift)


def _random_map(rank=3, seed=0) -> Ibug68Calibration:
    rng = np.random.default_rng(seed)
    ref, _ = mesh_reference()
    modes = np.linalg.qr(rng.normal(size=(468 * 3, rank)))[0].T
    mesh = np.column_stack([ref, rng.normal(0, 0.1, len(ref))])
    mean = ref[list(MEDIAPIPE_TO_IBUG68)]
    return Ibug68Calibration(
        c.to_frame(mean, face_frame(mean)), mesh, rng.normal(0, 0.5, (136, rank)), modes, {"made_by": "test"}
    )


def test_map_turns_and_scales_with_the_face():
    cal = _random_map()
    rng = np.random.default_rng(1)
    upright = _face() + rng.normal(0, 0.8, (68, 2))  # a detected face is not the mean face
    turned = _turn(upright - (200.0, 150.0), 90.0 / 40.0, 0.6, (400.0, 120.0))
    (_, up_axes, up_iod), (_, axes, iod) = face_frame(upright), face_frame(turned)
    assert np.allclose(axes, _turn(up_axes, 1.0, 0.6, (0, 0)), atol=1e-9) and iod == pytest.approx(up_iod * 90 / 40)
    a, b = cal.mesh(upright), cal.mesh(turned)
    assert a.shape == (468, 3)
    assert np.allclose(b[:, :2], _turn(a[:, :2] - (200.0, 150.0), 90.0 / 40.0, 0.6, (400.0, 120.0)), atol=1e-6)
    assert np.allclose(b[:, 2], a[:, 2] * 90.0 / 40.0)  # depth in pixels scales with the face
    assert np.allclose(cal.apply(upright), a[list(MEDIAPIPE_TO_IBUG68), :2])
    # the mean face gives the mean mesh
    mean_face = _face()
    assert np.allclose(c.to_frame(cal.mesh(mean_face), face_frame(mean_face)), cal.mean_mesh, atol=1e-9)


def test_fit_recovers_a_linear_map_and_treats_left_and_right_alike():
    """Pairs made by a known mirror-symmetric linear map (plus noise) are fitted back; mirrored
    input gives exactly the mirrored mesh, since every pair also enters the fit mirrored."""
    g = _random_map(rank=4, seed=3)

    def truth(p: np.ndarray) -> np.ndarray:  # g made symmetric: the mean of g and its mirror image
        return (g.mesh(p) + _unmirror_mesh(g.mesh(mirror_points(p, 640)), 640)) / 2

    rng = np.random.default_rng(4)
    pts, meshes = [], []
    for _ in range(300):
        p = _turn(
            _face(scale=1.0, shift=(0, 0)) + rng.normal(0, 0.03, (68, 2)),
            rng.uniform(30, 90),
            rng.uniform(-0.3, 0.3),
            rng.uniform(100, 300, 2),
        )
        pts.append(p)
        meshes.append(truth(p) + rng.normal(0, 0.002, (468, 3)))
    fit = fit_mesh_map(pts, meshes, ridge=1e-6, rank=8)
    test = _turn(_face(scale=1.0, shift=(0, 0)) + rng.normal(0, 0.03, (68, 2)), 60.0, 0.2, (250.0, 250.0))
    iod = face_frame(test)[2]
    assert np.abs(fit.mesh(test) - truth(test)).max() / iod < 0.01
    assert np.allclose(_unmirror_mesh(fit.mesh(mirror_points(test, 640)), 640), fit.mesh(test), atol=1e-6 * iod)
    assert fit.rank == 8 and fit.about == {}
    with pytest.raises(ValueError):
        fit_mesh_map([], [])


def _unmirror_mesh(mesh: np.ndarray, width: int) -> np.ndarray:
    _, mirror = mesh_reference()
    out = mesh[mirror].copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


def test_mirror_points_relabels_and_residuals_measure_in_the_frame():
    p = _face(angle=0.1)
    m = mirror_points(p, 400)
    assert np.allclose(m[36], [399 - p[45, 0], p[45, 1]])  # the mirror's right outer eye corner
    assert np.allclose(mirror_points(m, 400), p)
    assert sorted(IBUG_MIRROR) == list(range(68))
    mesh = np.zeros((478, 2))
    mesh[list(MEDIAPIPE_TO_IBUG68)] = p + face_frame(p)[1][1] * face_frame(p)[2] * 0.1  # 0.1 IOD "down" the face
    assert np.allclose(residuals(p, mesh), [0.0, 0.1])
    errs = point_errors(residuals(p, mesh)[None])
    assert set(errs) == {"jaw", "brows", "nose", "eyes", "lips", "all"} and errs["all"] == pytest.approx(0.1)


def test_file_round_trip_and_bad_files(tmp_path):
    cal = _random_map()
    cal.save(tmp_path / "c.json")
    back = Ibug68Calibration.load(tmp_path / "c.json")
    assert back.about == {"made_by": "test"} and back.rank == cal.rank
    p = _face()
    assert np.abs(back.mesh(p) - cal.mesh(p)).max() < 0.01  # 5 decimals of the IOD
    data = json.loads((tmp_path / "c.json").read_text())
    cases = {
        "format": {"about": {}, "offsets": np.zeros((68, 2)).tolist()},  # the old per-point offset file
        "mean_mesh": {k: v for k, v in data.items() if k != "mean_mesh"},
        "shape": dict(data, coef=np.zeros((136, cal.rank + 1)).tolist()),
        "NaN": dict(data, mean_points=np.full((68, 2), np.nan).tolist()),
    }
    for expect, bad in cases.items():
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(CalibrationError, match=expect):
            Ibug68Calibration.load(tmp_path / "bad.json")
    (tmp_path / "cut.json").write_text((tmp_path / "c.json").read_text()[:500])
    with pytest.raises(CalibrationError, match="cut.json"):
        Ibug68Calibration.load(tmp_path / "cut.json")
    with pytest.raises(CalibrationError, match="cannot read"):
        Ibug68Calibration.load(tmp_path / "missing.json")
    bad = _face()
    bad[36:48] = bad[36]
    with pytest.raises(ValueError, match="eye"):
        face_frame(bad)


def test_missing_or_corrupt_shipped_file_says_how_to_rebuild(monkeypatch):
    default_calibration.cache_clear()
    try:
        monkeypatch.setattr(c, "CALIBRATION_FILE", "data/no_such_calibration.json")
        with pytest.raises(CalibrationError, match="calibrate_ibug68.py"):
            default_calibration()
        monkeypatch.setattr(c, "CALIBRATION_FILE", "data/face_atlas.json")  # JSON, but not a calibration
        default_calibration.cache_clear()
        with pytest.raises(CalibrationError, match="format"):
            default_calibration()
    finally:
        monkeypatch.undo()
        default_calibration.cache_clear()
    assert default_calibration().rank >= 1


def test_shipped_calibration_records_how_it_was_made():
    cal = default_calibration()
    about = cal.about
    for key in ("what", "detector", "reference", "estimator", "groups", "faces", "pairs", "pairs_augmented",
                "point_error_iod", "cross_validation", "made_by", "date", "versions"):  # fmt: skip
        assert key in about, key
    assert "commercial" in about["detector"] and "mirror" in about["detector"]
    assert {"astronaut", "grace_hopper", "lfw"} <= set(about["groups"])
    assert sum(g["both_detected"] for g in about["faces"].values()) == about["pairs"] >= 800
    errs = about["point_error_iod"]
    assert errs["calibrated"]["all"] < errs["raw"]["all"] and errs["calibrated"]["jaw"] < errs["raw"]["jaw"]
    # the held-out agreement it was made with: better than the raw points on every held-out group
    held = [g for fold in about["cross_validation"] for g in fold["held_out"].values()]
    assert len(held) == 4 and all(g["calibrated"]["mean"] > g["raw"]["mean"] for g in held)
    # the convention difference it learned: MediaPipe's vertices 162 / 389 (iBUG 0 / 16) lie a
    # fifth of the eye distance and more above dlib's top jaw points on the mean face
    d = cal.mean_mesh[[162, 389], 1] - cal.mean_points[[0, 16], 1]
    assert np.all(d < -0.15), d


def test_calibration_is_an_option_of_the_68_point_path(astronaut_rgb):
    from fifa.concept_tree.segmentation.segment import Segmenter

    with Segmenter() as seg:
        full = seg.segment(astronaut_rgb)
    pts = ibug68_from_mediapipe(full.landmarks)
    plain = regions_from_ibug68(pts, astronaut_rgb.shape[:2])
    cal = regions_from_ibug68(pts, astronaut_rgb.shape[:2], calibration=default_calibration())
    assert plain.meta["ibug68_calibrated"] is False and cal.meta["ibug68_calibrated"] is True
    assert np.allclose(cal.meta["ibug68"], pts)  # the input points are kept as given
    # without a calibration the mesh passes through the points; with one, it is the map's mesh
    assert np.allclose(plain.landmarks[list(MEDIAPIPE_TO_IBUG68)], pts)
    assert np.allclose(cal.landmarks, default_calibration().mesh(pts)[:, :2])
    assert not np.allclose(cal.landmarks, plain.landmarks, atol=1.0)
