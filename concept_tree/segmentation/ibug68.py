"""68-point (iBUG / 300-W) landmark input: the same concept regions from sparser landmarks.

DeepfakeBench's preprocessed data and the ``face_alignment`` package give the 68 iBUG points,
not the 478-point MediaPipe mesh the region rules are written for. This module bridges them:

1. a fixed correspondence from the 68 iBUG points to MediaPipe mesh vertices
   (:data:`MEDIAPIPE_TO_IBUG68`, the one commonly used between the two schemes);
2. all 468 mesh vertices are estimated: for detected points by the learned map of a calibration
   (:mod:`~fifa.concept_tree.segmentation.ibug68_calibration`), for points taken from a MediaPipe mesh by a
   thin-plate-spline warp of the frontal reference layout
   (:func:`~fifa.concept_tree.segmentation.mesh_topology.mesh_reference`) fitted exactly on those 68 pairs;
3. the estimated mesh goes through the ordinary core,
   :func:`~fifa.concept_tree.segmentation.segment.regions_from_landmarks`, with ``backend="ibug68"`` and
   ``skip=IBUG68_UNSUPPORTED``: the same leaf ids, minus the concepts 68 points cannot place.

>>> from fifa.concept_tree.segmentation.ibug68 import regions_from_ibug68
>>> regions = regions_from_ibug68(points68, (h, w))      # doctest: +SKIP

What 68 points cannot support (:data:`IBUG68_UNSUPPORTED`, stays unlabelled):

* the eyeball: there are no iris landmarks, so iris, pupil and the medial/lateral sclera split
  cannot be placed. The eye opening (the polygon of the six eyelid points) is left unlabelled
  rather than filled with a neighbouring eyelid label.
* everything above the brows: the 68 points stop at the eyebrows and at the top of the jaw
  contour (iBUG 0 / 16, about eye level), so the forehead (``upper_forehead``,
  ``forehead_center``, ``left/right_forehead``), the brow ridges and the upper temples would be
  pure extrapolation. Their triangles lie entirely outside the convex hull of the 68 points in the
  reference layout (checked by :func:`support_fractions`). ``glabella`` is kept: about half of it
  lies inside the hull, and the rest is bounded by the brow heads and the nasal root.

The face oval used to split the face from hair/ears/neck is still the warped mesh oval, so its
upper part (forehead) is an extrapolated guess; pixels there are neither face leaves nor hair.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .mesh_topology import N_MESH, mesh_reference, mesh_topology
from .offface import UNLABELLED, OutsideFaceRules
from .regions import FaceRegions

if TYPE_CHECKING:
    from .ibug68_calibration import Ibug68Calibration

#: MediaPipe FaceMesh vertex for each iBUG-68 point (index i -> mesh vertex).
#: Subject's sides: iBUG 0-8 / 17-21 / 36-41 / 48 are the subject's right (image left in a
#: frontal photo), as are mesh 33 (right eye outer corner) and 61 (right mouth corner).
MEDIAPIPE_TO_IBUG68: tuple[int, ...] = (
    # jaw 0-16 (subject's right ear level -> chin -> left ear level)
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    # nose bridge 27-30 (top -> tip), nostril base 31-35 (right -> left)
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    # right eye 36-41 (outer corner, upper lid x2, inner corner, lower lid x2)
    33, 160, 158, 133, 153, 144,
    # left eye 42-47 (inner corner, upper lid x2, outer corner, lower lid x2)
    362, 385, 387, 263, 373, 380,
    # outer lips 48-59 (right corner, upper lip, left corner, lower lip)
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    # inner lips 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip

#: Leaves 68 points cannot support; they are absent from the regions of this backend.
IBUG68_UNSUPPORTED: frozenset[str] = frozenset(
    {
        # eyeball: no iris landmarks
        "left_iris", "left_pupil", "left_medial_sclera", "left_lateral_sclera",
        "right_iris", "right_pupil", "right_medial_sclera", "right_lateral_sclera",
        # above the brows: no landmark there
        "upper_forehead", "forehead_center", "left_forehead", "right_forehead",
        "left_brow_ridge", "right_brow_ridge",
        "left_upper_temple", "right_upper_temple",
    }
)  # fmt: skip

# iBUG eye-opening polygons (six points each, in order around the opening).
_IBUG_RIGHT_EYE = (36, 37, 38, 39, 40, 41)
_IBUG_LEFT_EYE = (42, 43, 44, 45, 46, 47)


def ibug68_from_mediapipe(landmarks: np.ndarray) -> np.ndarray:
    """The 68 iBUG points (68, 2) picked from MediaPipe landmarks (468 or 478, 2+)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < N_MESH or pts.shape[1] < 2:
        raise ValueError(f"expected MediaPipe landmarks of shape (468|478, 2), got {pts.shape}")
    return pts[list(MEDIAPIPE_TO_IBUG68), :2].copy()


def check_points68(points68: np.ndarray) -> np.ndarray:
    """68 finite (x, y) points as a float (68, 2) array; ``ValueError`` otherwise."""
    p = np.asarray(points68, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != 68 or p.shape[1] < 2:
        raise ValueError(f"expected 68 iBUG points of shape (68, 2), got {p.shape}")
    p = p[:, :2]
    if not np.all(np.isfinite(p)):
        raise ValueError("68-point landmarks contain NaN or infinite values")
    return p


def estimate_mesh(points68: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """All 468 MediaPipe mesh vertices (468, 2) estimated from the 68 iBUG points.

    A thin-plate spline (with its affine part) maps the reference layout's 68 corresponding
    vertices exactly onto ``points68`` and carries the other 400 along. ``smoothing`` > 0 relaxes
    the exact fit (in squared reference units) for noisy detections.
    """
    from scipy.interpolate import RBFInterpolator

    dst = check_points68(points68)
    ref, _ = mesh_reference()
    src = ref[list(MEDIAPIPE_TO_IBUG68)]
    tps = RBFInterpolator(src, dst, kernel="thin_plate_spline", degree=1, smoothing=smoothing)
    est = tps(ref)
    est[list(MEDIAPIPE_TO_IBUG68)] = dst if smoothing == 0 else est[list(MEDIAPIPE_TO_IBUG68)]
    return est


def regions_from_ibug68(
    points68: np.ndarray,
    image_size: tuple[int, int],
    person: np.ndarray | None = None,
    *,
    face_index: int = 0,
    rules: OutsideFaceRules = OutsideFaceRules(),
    backend: str = "ibug68",
    calibration: Ibug68Calibration | None = None,
) -> FaceRegions:
    """68 iBUG points (pixel x, y) of one face (and optionally a person probability map, HxW)
    -> :class:`FaceRegions` with the usual leaf ids; :data:`IBUG68_UNSUPPORTED` leaves are absent.

    ``calibration`` (e.g. :func:`~fifa.concept_tree.segmentation.ibug68_calibration.default_calibration`, made
    for dlib's predictor; face-alignment follows the same iBUG convention) estimates the mesh
    (with depth) from *detected* points by its learned map; ``None`` fits the reference layout
    exactly through the points (:func:`estimate_mesh`), right for points taken from a MediaPipe mesh.

    ``regions.landmarks`` holds the estimated 468-vertex mesh; ``regions.meta["ibug68"]`` the
    input points, ``regions.meta["ibug68_calibrated"]`` whether a calibration was applied and
    ``regions.meta["unsupported"]`` the skipped leaves.
    """
    from .segment import regions_from_landmarks

    pts = check_points68(points68)
    est = calibration.mesh(pts) if calibration is not None else estimate_mesh(pts)
    regions = regions_from_landmarks(
        est, image_size, person, face_index=face_index, backend=backend, skip=IBUG68_UNSUPPORTED, rules=rules
    )
    _clear_eye_openings(regions, est[list(MEDIAPIPE_TO_IBUG68), :2])
    regions.meta["ibug68"] = pts.tolist()
    regions.meta["ibug68_calibrated"] = calibration is not None
    regions.meta["unsupported"] = sorted(IBUG68_UNSUPPORTED)
    return regions


def _clear_eye_openings(regions: FaceRegions, pts: np.ndarray) -> None:
    """Eyeball pixels have no supported concept: make them unlabelled (the face core otherwise
    fills the opening from the neighbouring eyelid labels)."""
    lm = regions.label_map
    if lm is None:
        return
    h, w = lm.shape
    opening = np.zeros((h, w), dtype=np.uint8)
    topo = mesh_topology()
    est = regions.landmarks
    for loop, ibug in ((topo.right_eye, _IBUG_RIGHT_EYE), (topo.left_eye, _IBUG_LEFT_EYE)):
        # the estimated 16-point eyelid margin, which passes through the six iBUG eye points
        poly = est[list(loop)] if est is not None and len(est) >= N_MESH else pts[list(ibug)]
        cv2.fillPoly(opening, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    lm[opening.astype(bool)] = UNLABELLED


@lru_cache(maxsize=1)
def support_fractions() -> dict[str, float]:
    """For every mesh-drawn leaf, the fraction of its reference-layout area that lies inside the
    convex hull of the 68 corresponding vertices (0: pure extrapolation from 68 points)."""
    from matplotlib.path import Path
    from scipy.spatial import ConvexHull

    from .mesh_regions import triangle_concepts

    ref, _ = mesh_reference()
    src = ref[list(MEDIAPIPE_TO_IBUG68)]
    hull = Path(src[ConvexHull(src).vertices])
    tris = mesh_topology().triangles
    area: dict[str, float] = {}
    inside: dict[str, float] = {}
    for tri, concept in zip(tris, triangle_concepts()):
        p = ref[tri]
        a = 0.5 * abs(float(np.cross(p[1] - p[0], p[2] - p[0])))
        area[concept] = area.get(concept, 0.0) + a
        if hull.contains_point(p.mean(axis=0)):
            inside[concept] = inside.get(concept, 0.0) + a
    return {c: inside.get(c, 0.0) / a if a > 0 else 0.0 for c, a in area.items()}
