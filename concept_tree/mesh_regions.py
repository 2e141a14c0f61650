"""Assignment of MediaPipe FaceMesh triangles to atomic concepts of the tree.

Each triangle is classified once, by where its centroid falls in the frontal,
symmetric reference layout (eye-normalised units: origin between the eye centres,
u towards the subject's left, v down, 1 = inter-ocular distance). The table depends
only on the mesh index, so in an image the regions deform with the face.

Rules are ordered from the most specific structures (lips, eyelids, brows, nose)
to the broad skin areas (cheeks, forehead); the first rule that matches wins,
which makes the assignment a partition by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .mesh_topology import mesh_reference, mesh_topology


def _seg_dist(p: np.ndarray, poly: np.ndarray) -> float:
    """Distance from point p to the closed polygon's outline."""
    a = poly
    b = np.roll(poly, -1, axis=0)
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    proj = a + t[:, None] * ab
    return float(np.min(np.linalg.norm(proj - p, axis=1)))


def _inside(p: np.ndarray, poly: np.ndarray) -> bool:
    x, y = p
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


@dataclass(frozen=True)
class _Context:
    ref: np.ndarray
    eyes: dict  # side -> polygon
    brows: dict
    corners: dict  # side -> (inner, outer) points
    lips_outer: np.ndarray
    oval: np.ndarray
    mouth_corner_u: float
    mouth_mid_v: float
    mouth_corner_v: float
    lip_top_v: float
    lip_bottom_v: float
    subnasale_v: float


@lru_cache(maxsize=1)
def _context() -> _Context:
    ref, _ = mesh_reference()
    t = mesh_topology()
    return _Context(
        ref=ref,
        eyes={"right": ref[list(t.right_eye)], "left": ref[list(t.left_eye)]},
        brows={"right": ref[list(t.right_eyebrow)], "left": ref[list(t.left_eyebrow)]},
        corners={"right": (ref[133], ref[33]), "left": (ref[362], ref[263])},
        lips_outer=ref[list(t.lips_outer)],
        oval=ref[list(t.face_oval)],
        mouth_corner_u=float(ref[291, 0]),
        mouth_mid_v=float((ref[13, 1] + ref[14, 1]) / 2),
        mouth_corner_v=float((ref[61, 1] + ref[291, 1]) / 2),
        lip_top_v=float(ref[0, 1]),
        lip_bottom_v=float(ref[17, 1]),
        subnasale_v=float(ref[2, 1]),
    )


def classify(p: np.ndarray, ctx: _Context | None = None) -> str:
    """Atomic concept id for a point of the reference layout inside the face oval."""
    ctx = ctx or _context()
    u, v = float(p[0]), float(p[1])
    a = abs(u)
    side = "left" if u >= 0 else "right"
    eye = ctx.eyes[side]
    inner_c, outer_c = ctx.corners[side]
    brow = ctx.brows[side]

    # --- lips (the ring between the outer and the inner lip contour)
    if _inside(p, ctx.lips_outer):
        mid = ctx.mouth_mid_v - (ctx.mouth_mid_v - ctx.mouth_corner_v) * min(1.0, (a / ctx.mouth_corner_u) ** 2)
        if a > ctx.mouth_corner_u - 0.065:
            return f"{side}_mouth_corner"
        if v < mid:
            return "upper_lip_center" if a < 0.1 else f"{side}_upper_lip"
        return "lower_lip_center" if a < 0.12 else f"{side}_lower_lip"

    # --- eyes and their surroundings
    d_eye = _seg_dist(p, eye)
    eye_line_v = float((inner_c[1] + outer_c[1]) / 2)
    above = v < eye_line_v
    d_inner = float(np.linalg.norm(p - inner_c))
    d_outer = float(np.linalg.norm(p - outer_c))
    in_brow = _inside(p, brow) or _seg_dist(p, brow) < 0.07
    if d_eye < 0.16 and not in_brow:
        if d_inner < 0.09:
            return f"{side}_inner_canthus"
        if d_outer < 0.08:
            return f"{side}_outer_canthus"
        if d_eye < 0.04:
            return f"{side}_upper_eyelashes" if above else f"{side}_lower_eyelashes"
        if above and d_eye < 0.11:
            return f"{side}_upper_eyelid"
        if not above and d_eye < 0.09:
            return f"{side}_lower_eyelid"
    if in_brow:
        ia, oa = abs(brow[:, 0]).min(), abs(brow[:, 0]).max()
        f = (a - ia) / max(oa - ia, 1e-9)
        return f"{side}_eyebrow_head" if f < 0.3 else (f"{side}_eyebrow_body" if f < 0.7 else f"{side}_eyebrow_tail")
    if a > abs(outer_c[0]) + 0.01 and -0.12 < v < 0.22 and d_outer < 0.3:
        return f"{side}_crows_feet"
    if above and d_eye < 0.3 and v > _brow_lower_v(brow, u):
        return f"{side}_eyelid_crease"

    # --- nose
    if v < 0.75 and a < 0.4:
        if v > -0.1 and v < 0.16 and a < 0.16:
            return "nasal_root"
        if 0.16 <= v < 0.42 and a < 0.13:
            return "nasal_bridge"
        if 0.42 <= v < 0.52 and a < 0.12:
            return "nasal_supratip"
        if 0.52 <= v < 0.665 and a < 0.12:
            return "nose_tip"
        if 0.665 <= v < ctx.subnasale_v + 0.02 and a < 0.055:
            return "columella"
        if 0.62 <= v < ctx.subnasale_v + 0.03 and 0.055 <= a < 0.27:
            return f"{side}_nostril"
        if 0.44 <= v < 0.72 and a < 0.38:
            return f"{side}_ala"
        if 0.1 <= v < 0.5 and a < 0.27:
            return f"{side}_nasal_sidewall"

    # --- below the eyes
    if not above and d_eye < 0.32 and a < 0.8 and v < 0.42:
        return f"{side}_under_eye"

    # --- around the mouth
    if ctx.subnasale_v - 0.03 < v < ctx.mouth_mid_v and a < ctx.mouth_corner_u + 0.04:
        return "philtrum" if a < 0.1 else f"{side}_upper_lip_skin"
    if _near_segment(p, np.array([0.40 * _sgn(u), 0.56]), np.array([0.60 * _sgn(u), 1.02]), 0.075):
        return f"{side}_nasolabial_fold"

    # --- chin and jaw
    d_oval = _seg_dist(p, ctx.oval)
    if v > ctx.lip_bottom_v and a < 0.3 and v < ctx.lip_bottom_v + 0.15:
        return "mentolabial_sulcus"
    if v > 1.05 and 0.3 <= a < 0.58 and v < 1.45 and d_oval > 0.12:
        return f"{side}_marionette"
    if v > 1.3 and a < 0.5:
        if v > 1.58:
            return "lower_chin"
        return "chin_center" if a < 0.2 else f"{side}_chin"
    if d_oval < 0.2 and v > 0.55:
        if v < 0.97:
            return f"{side}_posterior_jawline"
        if v < 1.25:
            return f"{side}_jaw_angle"
        return f"{side}_anterior_jawline"
    if v > 1.1:
        return f"{side}_jowl"

    # --- cheeks
    if d_oval < 0.16 and 0.05 < v <= 0.55:
        return f"{side}_preauricular"
    if v > 0.05 and v < 0.45:
        return f"{side}_cheekbone"
    if 0.45 <= v < 0.8:
        return f"{side}_mid_cheek"
    if v >= 0.8:
        return f"{side}_lower_cheek"

    # --- temples and forehead
    if a > 0.7:
        return f"{side}_upper_temple" if v < -0.2 else f"{side}_lower_temple"
    if a < 0.2 and v > -0.38:
        return "glabella"
    if v > _brow_upper_v(brow, u) - 0.14 and a < 0.95:
        return f"{side}_brow_ridge"
    if v < -0.58:
        return "upper_forehead"
    if a < 0.3:
        return "forehead_center"
    return f"{side}_forehead"


def _sgn(u: float) -> float:
    return 1.0 if u >= 0 else -1.0


def _near_segment(p, a, b, tol) -> bool:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0, 1)
    return float(np.linalg.norm(a + t * ab - p)) < tol


def _brow_lower_v(brow: np.ndarray, u: float) -> float:
    lower = brow[: len(brow) // 2]
    return float(np.interp(abs(u), np.sort(abs(lower[:, 0])), lower[np.argsort(abs(lower[:, 0])), 1]))


def _brow_upper_v(brow: np.ndarray, u: float) -> float:
    upper = brow[len(brow) // 2 :]
    return float(np.interp(abs(u), np.sort(abs(upper[:, 0])), upper[np.argsort(abs(upper[:, 0])), 1]))


@lru_cache(maxsize=1)
def triangle_concepts() -> tuple[str, ...]:
    """Concept id of every mesh triangle (aligned with ``mesh_topology().triangles``)."""
    ctx = _context()
    tris = mesh_topology().triangles
    centroids = ctx.ref[tris].mean(axis=1)
    return tuple(classify(c, ctx) for c in centroids)
