"""Pure parts of the FF++ import: crop geometry and frame sampling."""

from __future__ import annotations

import numpy as np
import pytest

from fifa.pipelines.importers.facecrop import CropConfig, align_matrix, box_matrix, template
from fifa.pipelines.importers.video import frame_indices


def _similarity(angle_deg: float, scale: float, shift) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array(
        [[scale * np.cos(a), -scale * np.sin(a), shift[0]], [scale * np.sin(a), scale * np.cos(a), shift[1]]]
    )


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


@pytest.mark.parametrize("npts", [5, 4])
def test_align_matrix_undoes_a_known_similarity(npts):
    """Face points = the template moved by a known rotation, zoom and shift: the fitted crop matrix maps
    them back onto the template exactly (5 points, or 4 with the mouth centre of FaceDetection)."""
    dst = template(256, 1.3)
    frame_from_crop = _similarity(17.0, 2.7, (140.0, 85.0))
    face = _apply(frame_from_crop, dst)
    if npts == 4:
        face = np.vstack([face[:3], face[3:].mean(0)])
    m = align_matrix(face, 256, 1.3)
    back = _apply(m, face)
    want = dst if npts == 5 else np.vstack([dst[:3], dst[3:].mean(0)])
    assert np.abs(back - want).max() < 1e-6
    inv = np.linalg.inv(np.vstack([frame_from_crop, [0, 0, 1]]))[:2]
    assert np.allclose(m, inv, atol=1e-6)
    with pytest.raises(ValueError):
        align_matrix(face[:3], 256, 1.3)


def test_box_matrix_centres_a_square_scale_times_the_box():
    m = box_matrix((100, 50, 200, 250), 300, 1.5)  # 100 x 200 box: the square side is 1.5 * 200 = 300
    assert np.allclose(_apply(m, np.array([[150.0, 150.0]])), [[150, 150]])  # box centre -> crop centre
    assert np.allclose(_apply(m, np.array([[150.0, 0.0], [150.0, 300.0]])), [[150, 0], [150, 300]])


def test_frame_indices_are_deepfakebench_fixed_num_frames():
    assert frame_indices(12, 4) == [0, 3, 7, 11]  # np.linspace(0, 11, 4) cast to int
    assert frame_indices(300, 3) == [0, 149, 299]
    assert frame_indices(3, 8) == [0, 1, 2]  # shorter than asked: every frame once
    assert frame_indices(0, 8) == [] and frame_indices(10, 0) == []


def test_crop_config_rejects_bad_values():
    for bad in ({"mode": "zoom"}, {"size": 8}, {"scale": 0.5}):
        with pytest.raises(ValueError):
            CropConfig(**bad)
