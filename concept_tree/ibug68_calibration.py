"""Calibration of detected 68-point (iBUG / 300-W) landmarks to the MediaPipe mesh vertices.

:data:`~fifa.concept_tree.ibug68.MEDIAPIPE_TO_IBUG68` pairs each iBUG point with a mesh vertex,
but a 68-point detector follows the iBUG annotation convention, not MediaPipe's vertices: the jaw
contour lies on the visible outline (its top points, iBUG 0 / 16, about a quarter of the
inter-ocular distance below mesh vertices 162 / 389), the outer brow ends sit lower, and so on.
A calibration is one offset per point, in a face-normalised frame, added to the detected points
before the mesh is estimated:

* the frame: origin between the two eye centres (means of iBUG 36-41 and 42-47), x along the eye
  line towards the subject's left, y perpendicular (down in an upright face), unit = the
  inter-ocular distance (IOD). Offsets turn and scale with the face.
* an offset is learned from faces where both detectors ran (:func:`residuals` of each face),
  per group of faces (one identity or one data set per group), and kept per coordinate only where
  every group agrees on its sign, at the smallest magnitude any group shows
  (:func:`consensus_offsets`): a conservative estimate of the detector convention, not of one
  face set's quirks.

The shipped calibration (``data/ibug68_calibration.json``, :func:`default_calibration`) records
how it was made; ``scripts/calibrate_ibug68.py`` rebuilds it (optionally with your own faces).

>>> from fifa.concept_tree.ibug68_calibration import default_calibration
>>> points = default_calibration().apply(dlib_points)      # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .ibug68 import MEDIAPIPE_TO_IBUG68, check_points68

CALIBRATION_FILE = "data/ibug68_calibration.json"

#: Anchors both the 478-point and the 68-point paths draw (compared by :func:`anchor_ious`).
COMPARED_ANCHORS: tuple[str, ...] = (
    "left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "nose", "mouth", "chin",
    "left_cheek", "right_cheek", "left_jaw", "right_jaw",
)  # fmt: skip

#: iBUG point groups, for reports.
POINT_GROUPS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "lips": (48, 68),
}  # fmt: skip


def face_frame(points68: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Origin (between the eye centres), unit axes as rows (x: eye line towards the subject's
    left, y: perpendicular, down) and scale (inter-ocular distance) of 68 iBUG points."""
    p = check_points68(points68)
    right, left = p[36:42].mean(axis=0), p[42:48].mean(axis=0)
    x = left - right
    iod = float(np.linalg.norm(x))
    if iod < 1e-6:
        raise ValueError("68-point landmarks have coincident eye centres")
    x = x / iod
    return (right + left) / 2, np.stack([x, np.array([-x[1], x[0]])]), iod


def residuals(points68: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Where the corresponding MediaPipe vertices lie relative to the 68 detected points, (68, 2)
    in the detected face's frame (units of its inter-ocular distance)."""
    p = check_points68(points68)
    target = np.asarray(mesh, dtype=np.float64)[list(MEDIAPIPE_TO_IBUG68), :2]
    _, axes, iod = face_frame(p)
    return (target - p) @ axes.T / iod


def consensus_offsets(groups: dict[str, np.ndarray]) -> np.ndarray:
    """Offsets (68, 2) from per-face residuals grouped by source (name -> (n, 68, 2)).

    Per coordinate: zero unless every group's mean residual has the same sign; then the smallest
    of the groups' magnitudes, with that sign."""
    means = np.stack([np.asarray(r, dtype=np.float64).reshape(-1, 68, 2).mean(axis=0) for r in groups.values() if len(r)])
    if not len(means):
        raise ValueError("no residuals to calibrate from")
    sign = np.sign(means[0])
    agree = np.all(np.sign(means) == sign, axis=0)
    return np.where(agree, sign * np.abs(means).min(axis=0), 0.0)


def point_errors(res: np.ndarray, offsets: np.ndarray | None = None) -> dict[str, float]:
    """Mean distance (IOD units) between calibrated points and mesh vertices, per point group
    and overall, over faces' residuals (n, 68, 2)."""
    r = np.asarray(res, dtype=np.float64).reshape(-1, 68, 2)
    d = np.linalg.norm(r - (0.0 if offsets is None else offsets), axis=2)
    out = {g: float(d[:, a:b].mean()) for g, (a, b) in POINT_GROUPS.items()}
    out["all"] = float(d.mean())
    return out


@dataclass(frozen=True)
class Ibug68Calibration:
    """Per-point offsets (68, 2) in the face frame of :func:`face_frame`, plus how they were made."""

    offsets: np.ndarray
    about: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        off = np.asarray(self.offsets, dtype=np.float64)
        if off.shape != (68, 2) or not np.all(np.isfinite(off)):
            raise ValueError(f"calibration offsets must be 68 finite (x, y) pairs, got shape {off.shape}")
        object.__setattr__(self, "offsets", off)

    def apply(self, points68: np.ndarray) -> np.ndarray:
        """Detected points (68, 2) in pixels -> points placed where MediaPipe's vertices would be."""
        p = check_points68(points68)
        _, axes, iod = face_frame(p)
        return p + (self.offsets * iod) @ axes

    def to_dict(self) -> dict:
        return {"about": self.about, "offsets": np.round(self.offsets, 5).tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Ibug68Calibration":
        return cls(np.asarray(data["offsets"], dtype=np.float64), dict(data.get("about", {})))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Ibug68Calibration":
        return cls.from_dict(json.loads(Path(path).read_text()))


@lru_cache(maxsize=1)
def default_calibration() -> Ibug68Calibration:
    """The shipped calibration for dlib's 68-point predictor (``data/ibug68_calibration.json``)."""
    text = resources.files("fifa.concept_tree").joinpath(CALIBRATION_FILE).read_text()
    return Ibug68Calibration.from_dict(json.loads(text))


def anchor_ious(reference, other, anchors: tuple[str, ...] = COMPARED_ANCHORS) -> dict[str, float]:
    """IoU per anchor between a 478-point result and a 68-point one (:class:`FaceRegions`).

    The eyes are compared without the reference's eyeball (iris, pupil, sclera), which 68 points
    cannot place."""
    out = {}
    for a in anchors:
        ref = reference.mask(a)
        if a in ("left_eye", "right_eye"):
            ref = ref & ~reference.mask(a + "ball")
        got = other.mask(a)
        union = int((ref | got).sum())
        out[a] = float((ref & got).sum() / union) if union else 1.0
    return out
