"""Calibration of detected 68-point (iBUG / 300-W) landmarks to the MediaPipe mesh: a learned map.

:data:`~fifa.concept_tree.segmentation.ibug68.MEDIAPIPE_TO_IBUG68` pairs each iBUG point with a mesh vertex,
but a 68-point detector follows the iBUG annotation convention, not MediaPipe's vertices (the jaw
contour lies on the visible outline, its top points about a quarter of the inter-ocular distance
below mesh vertices 162 / 389, the outer brow ends sit lower, ...), and the two detectors also
disagree face by face in ways a fixed per-point offset cannot follow (on a turned or cropped face
MediaPipe's contour moves with its 3-D model, dlib's with the visible outline). So the calibration
is a linear map, learned from faces where both detectors ran, from the 68 detected points to all
468 MediaPipe vertices and their depth:

* the frame: origin between the two eye centres (means of iBUG 36-41 and 42-47), x along the eye
  line towards the subject's left, y perpendicular (down in an upright face), unit = the
  inter-ocular distance (IOD). The map works in this frame, so it turns and scales with the face.
* the map: ``mesh = mean_mesh + (points - mean_points) @ coef @ modes`` (all in the frame; the
  mesh as 468 x (x, y, depth)), a ridge regression reduced to a few modes (``rank``): it predicts
  where MediaPipe would put each vertex *on average* given dlib's points, rather than
  interpolating dlib's noise exactly as a thin-plate spline through the 68 points does.

The shipped calibration (``data/ibug68_calibration.json``, :func:`default_calibration`) records
how it was made in its ``about`` block; ``scripts/calibrate_ibug68.py`` rebuilds it (optionally
with your own faces), with the procedure in :mod:`~fifa.concept_tree.segmentation.calibrate68`.

>>> from fifa.concept_tree.segmentation.ibug68_calibration import default_calibration
>>> mesh = default_calibration().mesh(dlib_points)          # doctest: +SKIP  (468, 3) pixels
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from fifa.core.errors import FifaError

from .ibug68 import MEDIAPIPE_TO_IBUG68, check_points68
from .mesh_topology import N_MESH, mesh_reference

CALIBRATION_FILE = "data/ibug68_calibration.json"
FORMAT = "fifa-ibug68-mesh-map/2"

#: Anchors both the 478-point and the 68-point paths draw (compared by :func:`anchor_ious`).
COMPARED_ANCHORS: tuple[str, ...] = (
    "left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "nose", "mouth", "chin",
    "left_cheek", "right_cheek", "left_jaw", "right_jaw",
)  # fmt: skip

#: iBUG point groups, for reports.
POINT_GROUPS: dict[str, tuple[int, int]] = {
    "jaw": (0, 17), "brows": (17, 27), "nose": (27, 36), "eyes": (36, 48), "lips": (48, 68),
}  # fmt: skip

#: iBUG index of the mirrored point (subject's left <-> right).
IBUG_MIRROR: tuple[int, ...] = tuple(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


class CalibrationError(FifaError, ValueError):
    """A calibration file is missing, unreadable or not a valid 68-point calibration."""


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


def to_frame(points: np.ndarray, frame) -> np.ndarray:
    """Pixel (x, y[, depth]) -> frame units (depth divided by the IOD)."""
    origin, axes, iod = frame
    p = np.asarray(points, dtype=np.float64)
    xy = (p[:, :2] - origin) @ axes.T / iod
    return np.column_stack([xy, p[:, 2] / iod]) if p.shape[1] > 2 else xy


def from_frame(points: np.ndarray, frame) -> np.ndarray:
    """Inverse of :func:`to_frame`."""
    origin, axes, iod = frame
    xy = points[:, :2] * iod @ axes + origin
    return np.column_stack([xy, points[:, 2] * iod]) if points.shape[1] > 2 else xy


def residuals(points68: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Where the corresponding MediaPipe vertices lie relative to the 68 detected points, (68, 2)
    in the detected face's frame (units of its inter-ocular distance)."""
    p = check_points68(points68)
    target = np.asarray(mesh, dtype=np.float64)[list(MEDIAPIPE_TO_IBUG68), :2]
    _, axes, iod = face_frame(p)
    return (target - p) @ axes.T / iod


def point_errors(res: np.ndarray) -> dict[str, float]:
    """Mean distance (IOD units) between estimated points and mesh vertices, per point group and
    overall, over faces' residuals (n, 68, 2)."""
    d = np.linalg.norm(np.asarray(res, dtype=np.float64).reshape(-1, 68, 2), axis=2)
    out = {g: float(d[:, a:b].mean()) for g, (a, b) in POINT_GROUPS.items()}
    out["all"] = float(d.mean())
    return out


def mirror_points(points: np.ndarray, width: int) -> np.ndarray:
    """68 points of a face as they lie in the horizontally mirrored image (re-labelled, so that
    iBUG 36 is again the subject's right eye corner)."""
    p = check_points68(points).copy()
    p[:, 0] = width - 1 - p[:, 0]
    return p[list(IBUG_MIRROR)]


def _mirror_frame_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mirror image of one training pair in frame units: u -> -u, labels swapped."""
    _, mesh_mirror = mesh_reference()
    xm = x[list(IBUG_MIRROR)] * (-1.0, 1.0)
    ym = y[mesh_mirror] * (-1.0, 1.0, 1.0)
    return xm, ym


@dataclass(frozen=True)
class Ibug68Calibration:
    """The learned 68-point -> mesh map (frame units) and how it was made."""

    mean_points: np.ndarray  # (68, 2)
    mean_mesh: np.ndarray  # (468, 3): x, y, depth
    coef: np.ndarray  # (136, rank)
    modes: np.ndarray  # (rank, 468 * 3)
    about: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = {
            k: np.asarray(getattr(self, k), dtype=np.float64) for k in ("mean_points", "mean_mesh", "coef", "modes")
        }
        rank = arrays["coef"].shape[1] if arrays["coef"].ndim == 2 else -1
        expected = {"mean_points": (68, 2), "mean_mesh": (N_MESH, 3), "coef": (136, rank), "modes": (rank, N_MESH * 3)}
        for k, shape in expected.items():
            if arrays[k].shape != shape or rank < 1:
                raise CalibrationError(f"calibration {k} must have shape {shape} (rank >= 1), got {arrays[k].shape}")
            if not np.all(np.isfinite(arrays[k])):
                raise CalibrationError(f"calibration {k} holds NaN or infinite values")
            object.__setattr__(self, k, arrays[k])

    @property
    def rank(self) -> int:
        return int(self.coef.shape[1])

    def mesh_in_frame(self, points68: np.ndarray) -> np.ndarray:
        """The estimated mesh (468, 3) in the frame of ``points68`` (already in frame units)."""
        d = (np.asarray(points68, dtype=np.float64) - self.mean_points).reshape(-1)
        return self.mean_mesh + ((d @ self.coef) @ self.modes).reshape(N_MESH, 3)

    def mesh(self, points68: np.ndarray) -> np.ndarray:
        """Detected points (68, 2) in pixels -> estimated MediaPipe mesh (468, 3): pixel x, y and
        a MediaPipe-like depth (pixels; smaller is nearer), which orders overlapping triangles."""
        p = check_points68(points68)
        frame = face_frame(p)
        return from_frame(self.mesh_in_frame(to_frame(p, frame)), frame)

    def apply(self, points68: np.ndarray) -> np.ndarray:
        """Detected points (68, 2) -> where MediaPipe's corresponding vertices would be (68, 2)."""
        return self.mesh(points68)[list(MEDIAPIPE_TO_IBUG68), :2]

    def to_dict(self) -> dict:
        def r(a):
            # 4 decimals (of the IOD; of the unit-norm modes) move the shipped mesh by < 0.0002 IOD
            return (np.round(a, 4) + 0.0).tolist()  # + 0.0: no "-0.0"

        return {"format": FORMAT, "about": self.about, "rank": self.rank, "mean_points": r(self.mean_points),
                "mean_mesh": r(self.mean_mesh), "coef": r(self.coef), "modes": r(self.modes)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Ibug68Calibration:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CalibrationError(f"not a 68-point calibration of format {FORMAT!r} (got {got!r})")
        try:
            arrays = [np.asarray(data[k], dtype=np.float64) for k in ("mean_points", "mean_mesh", "coef", "modes")]
        except (KeyError, TypeError, ValueError) as e:
            raise CalibrationError(f"calibration data incomplete or malformed: {e!r}") from e
        return cls(*arrays, about=dict(data.get("about") or {}))

    def save(self, path: str | Path) -> None:
        """JSON with a readable ``about`` block and one line per array."""

        def value(k, v) -> str:
            return (
                json.dumps(v, indent=1).replace("\n", "\n ") if k == "about" else json.dumps(v, separators=(",", ":"))
            )

        lines = [f" {json.dumps(k)}: {value(k, v)}" for k, v in self.to_dict().items()]
        Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n")

    @classmethod
    def load(cls, path: str | Path) -> Ibug68Calibration:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CalibrationError(f"cannot read the 68-point calibration {path}: {e}") from e
        try:
            return cls.from_dict(data)
        except CalibrationError as e:
            raise CalibrationError(f"{path}: {e}") from e


def fit_mesh_map(
    points: list[np.ndarray], meshes: list[np.ndarray], weights: np.ndarray | None = None, *,
    ridge: float = 0.02, rank: int = 8, about: dict | None = None,
) -> Ibug68Calibration:  # fmt: skip
    """Learn the map from pairs: detected 68 points (pixels) and MediaPipe meshes (468+ x 3, with
    depth) of the same faces. Every pair also enters mirrored (in the frame), so the map treats
    the subject's left and right alike. ``weights``: one per pair (normalised here).

    Ridge regression of the mesh on the centred points (penalty ``ridge`` on the weighted, unit-sum
    scale), then reduced to ``rank`` modes: the principal directions of its fitted values."""
    xs, ys = [], []
    for p, m in zip(points, meshes):
        frame = face_frame(p)
        x, y = to_frame(check_points68(p), frame), to_frame(np.asarray(m, dtype=np.float64)[:N_MESH, :3], frame)
        xm, ym = _mirror_frame_pair(x, y)
        xs += [x, xm]
        ys += [y, ym]
    if not xs:
        raise ValueError("no face pairs to calibrate from")
    w = np.repeat(np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64), 2)
    w = w / w.sum()
    X = np.stack(xs).reshape(len(xs), -1)
    Y = np.stack(ys).reshape(len(ys), -1)
    xm, ym = w @ X, w @ Y
    Xc, Yc = (X - xm) * np.sqrt(w)[:, None], (Y - ym) * np.sqrt(w)[:, None]
    B = np.linalg.solve(Xc.T @ Xc + ridge * np.eye(X.shape[1]), Xc.T @ Yc)
    _, _, vt = np.linalg.svd(Xc @ B, full_matrices=False)
    modes = vt[:rank]
    return Ibug68Calibration(xm.reshape(68, 2), ym.reshape(N_MESH, 3), B @ modes.T, modes, dict(about or {}))


@lru_cache(maxsize=1)
def default_calibration() -> Ibug68Calibration:
    """The shipped calibration for dlib's 68-point predictor (``data/ibug68_calibration.json``);
    :class:`CalibrationError` (saying how to rebuild it) when the file is missing or corrupt."""
    hint = "reinstall fifa-toolkit or rebuild it with scripts/calibrate_ibug68.py"
    try:
        text = resources.files("fifa.concept_tree").joinpath(CALIBRATION_FILE).read_text()
        return Ibug68Calibration.from_dict(json.loads(text))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, CalibrationError) as e:
        raise CalibrationError(
            f"the shipped 68-point calibration {CALIBRATION_FILE} is missing or corrupt ({e}); {hint}"
        ) from e


def anchor_ious(reference, other, anchors: tuple[str, ...] = COMPARED_ANCHORS) -> dict[str, float]:
    """IoU per anchor between a 478-point result and a 68-point one (:class:`FaceRegions`).

    The eyes are compared without the eyeball (iris, pupil, sclera), which 68 points cannot place
    (also taken out of ``other`` when it has one: two 478-point results compare alike)."""
    out = {}
    for a in anchors:
        ref, got = reference.mask(a), other.mask(a)
        if a in ("left_eye", "right_eye"):
            ref, got = ref & ~reference.mask(a + "ball"), got & ~other.mask(a + "ball")
        union = int((ref | got).sum())
        out[a] = float((ref & got).sum() / union) if union else 1.0
    return out
