"""The concept rules of the face: which atomic concept a point of the reference face belongs to.

Points are given in the frontal, left/right-symmetric reference layout of the MediaPipe mesh
(eye-normalised units: origin between the eye centres, ``u`` towards the subject's left,
``v`` down, 1 = inter-ocular distance). The rules go from the most specific structures
(lips, eyelids, brows, nose) to the broad skin areas (cheeks, forehead); the first rule
that matches wins, which makes the result a partition by construction.

The rules are evaluated on whole arrays of points (:func:`classify_points`): the concept
atlas (:mod:`.atlas`) evaluates them once on a fine grid of the reference face and maps that
grid onto every face through the mesh, so region borders follow these rules, not the mesh
triangles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from matplotlib.path import Path

from .mesh_topology import mesh_reference, mesh_topology


def outline_distance(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance from each point (N, 2) to the closed polygon's outline (M, 2)."""
    px, py = np.ascontiguousarray(p[:, 0]), np.ascontiguousarray(p[:, 1])
    best = np.full(len(p), np.inf)
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        np.minimum(best, _segment_distance(px, py, a, b), out=best)
    return best


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from each point (N, 2) to the segment ``a``-``b`` (points (2,) or one per point (N, 2))."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return _segment_distance(np.ascontiguousarray(p[:, 0]), np.ascontiguousarray(p[:, 1]), a, b)


def _segment_distance(px, py, a, b):
    ax, ay = a[..., 0], a[..., 1]
    dx, dy = b[..., 0] - ax, b[..., 1] - ay
    qx, qy = px - ax, py - ay
    t = np.clip((qx * dx + qy * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    return np.hypot(qx - t * dx, qy - t * dy)


@dataclass(frozen=True)
class _Context:
    eyes: dict  # side -> eyelid-margin polygon
    brows: dict  # side -> closed brow polygon
    corners: dict  # side -> (inner, outer) canthus points
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


class _Cascade:
    """First matching rule wins: ``rule(cond, name)`` labels the still-unlabelled points where
    ``cond`` holds. ``name`` may contain ``{side}`` (the subject's side of each point)."""

    def __init__(self, left: np.ndarray):
        self.left = left
        self.names: list[str] = []
        self.code = np.full(left.shape, -1, dtype=np.int32)

    def _id(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def rule(self, cond: np.ndarray, name: str) -> None:
        free = self.code < 0
        if "{side}" in name:
            for side, sel in (("left", self.left), ("right", ~self.left)):
                self.code[free & cond & sel] = self._id(name.format(side=side))
        else:
            self.code[free & cond] = self._id(name)

    def result(self) -> np.ndarray:
        return np.array(self.names, dtype=object)[self.code]


def _by_side(left: np.ndarray, values: dict) -> np.ndarray:
    """Per point, the value of its side's entry (``values[side]`` is a scalar or an array)."""
    lv, rv = np.asarray(values["left"]), np.asarray(values["right"])
    return np.where(left.reshape(left.shape + (1,) * (max(lv.ndim, rv.ndim) - 1)), lv, rv)


class _Points(NamedTuple):
    """Reference-layout points (N, 2) and their coordinates: ``u`` across (towards the subject's
    left), ``v`` down, ``a = |u|``, ``left = u >= 0``."""

    p: np.ndarray
    u: np.ndarray
    v: np.ndarray
    a: np.ndarray
    left: np.ndarray

    def sided(self, fn) -> np.ndarray:
        """Per point, ``fn(side)`` of its own side."""
        return _by_side(self.left, {s: fn(s) for s in ("left", "right")})


def classify_points(points: np.ndarray, ctx: _Context | None = None) -> np.ndarray:
    """Atomic concept id (object array of str) of every reference-layout point (N, 2).

    Meant for points inside the face oval; points outside get the nearest broad concept. The rules
    run in a fixed order (a point takes the first concept whose rule it meets), region by region.
    """
    ctx = ctx or _context()
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pt = _Points(p, p[:, 0], p[:, 1], np.abs(p[:, 0]), p[:, 0] >= 0)
    c = _Cascade(pt.left)
    _lips(c, ctx, pt)
    d_eye, above = _eyes(c, ctx, pt)
    _nose(c, ctx, pt)
    c.rule(~above & (d_eye < 0.32) & (pt.a < 0.8) & (pt.v < 0.42), "{side}_under_eye")  # below the eyes
    _around_mouth(c, ctx, pt)
    d_oval = outline_distance(p, ctx.oval)
    _chin_and_jaw(c, ctx, pt, d_oval)
    _cheeks(c, pt, d_oval)
    _temples_and_forehead(c, ctx, pt)
    return c.result()


def _lips(c: _Cascade, ctx: _Context, pt: _Points) -> None:
    """The ring between the outer and the inner lip contour."""
    p, u, v, a, left = pt
    in_lips = Path(ctx.lips_outer).contains_points(p)
    mid = ctx.mouth_mid_v - (ctx.mouth_mid_v - ctx.mouth_corner_v) * np.minimum(1.0, (a / ctx.mouth_corner_u) ** 2)
    c.rule(in_lips & (a > ctx.mouth_corner_u - 0.065), "{side}_mouth_corner")
    c.rule(in_lips & (v < mid) & (a < 0.1), "upper_lip_center")
    c.rule(in_lips & (v < mid), "{side}_upper_lip")
    c.rule(in_lips & (a < 0.12), "lower_lip_center")
    c.rule(in_lips, "{side}_lower_lip")


def _eyes(c: _Cascade, ctx: _Context, pt: _Points) -> tuple[np.ndarray, np.ndarray]:
    """The eyes and their surroundings (eyelids, canthi, lashes, brows, crow's feet, crease);
    returns each point's distance to its eye outline and whether it lies above the eye line."""
    p, u, v, a, left = pt
    sided = pt.sided
    d_eye = sided(lambda s: outline_distance(p, ctx.eyes[s]))
    inner = sided(lambda s: np.broadcast_to(ctx.corners[s][0], p.shape))
    outer = sided(lambda s: np.broadcast_to(ctx.corners[s][1], p.shape))
    eye_line_v = (inner[:, 1] + outer[:, 1]) / 2
    above = v < eye_line_v
    d_inner = np.linalg.norm(p - inner, axis=1)
    d_outer = np.linalg.norm(p - outer, axis=1)
    in_brow = sided(lambda s: Path(ctx.brows[s]).contains_points(p) | (outline_distance(p, ctx.brows[s]) < 0.07))
    near_eye = (d_eye < 0.16) & ~in_brow
    c.rule(near_eye & (d_inner < 0.09), "{side}_inner_canthus")
    c.rule(near_eye & (d_outer < 0.08), "{side}_outer_canthus")
    c.rule(near_eye & (d_eye < 0.04) & above, "{side}_upper_eyelashes")
    c.rule(near_eye & (d_eye < 0.04), "{side}_lower_eyelashes")
    c.rule(near_eye & above & (d_eye < 0.11), "{side}_upper_eyelid")
    c.rule(near_eye & ~above & (d_eye < 0.09), "{side}_lower_eyelid")
    brow_ia = sided(lambda s: np.abs(ctx.brows[s][:, 0]).min())
    brow_oa = sided(lambda s: np.abs(ctx.brows[s][:, 0]).max())
    f = (a - brow_ia) / np.maximum(brow_oa - brow_ia, 1e-9)
    c.rule(in_brow & (f < 0.3), "{side}_eyebrow_head")
    c.rule(in_brow & (f < 0.7), "{side}_eyebrow_body")
    c.rule(in_brow, "{side}_eyebrow_tail")
    outer_a = np.abs(outer[:, 0])
    c.rule((a > outer_a + 0.01) & (v > -0.12) & (v < 0.22) & (d_outer < 0.3), "{side}_crows_feet")
    brow_lower = sided(lambda s: _brow_edge_v(ctx.brows[s], a, upper=False))
    c.rule(above & (d_eye < 0.3) & (v > brow_lower), "{side}_eyelid_crease")
    return d_eye, above


def _nose(c: _Cascade, ctx: _Context, pt: _Points) -> None:
    p, u, v, a, left = pt
    nose = (v < 0.75) & (a < 0.4)
    c.rule(nose & (v > -0.1) & (v < 0.16) & (a < 0.16), "nasal_root")
    c.rule(nose & (v >= 0.16) & (v < 0.42) & (a < 0.13), "nasal_bridge")
    c.rule(nose & (v >= 0.42) & (v < 0.52) & (a < 0.12), "nasal_supratip")
    c.rule(nose & (v >= 0.52) & (v < 0.665) & (a < 0.12), "nose_tip")
    c.rule(nose & (v >= 0.665) & (v < ctx.subnasale_v + 0.02) & (a < 0.055), "columella")
    c.rule(nose & (v >= 0.62) & (v < ctx.subnasale_v + 0.03) & (a >= 0.055) & (a < 0.27), "{side}_nostril")
    c.rule(nose & (v >= 0.44) & (v < 0.72) & (a < 0.38), "{side}_ala")
    c.rule(nose & (v >= 0.1) & (v < 0.5) & (a < 0.27), "{side}_nasal_sidewall")


def _around_mouth(c: _Cascade, ctx: _Context, pt: _Points) -> None:
    """The skin of the upper lip and the nasolabial folds."""
    p, u, v, a, left = pt
    upper_lip_skin = (v > ctx.subnasale_v - 0.03) & (v < ctx.mouth_mid_v) & (a < ctx.mouth_corner_u + 0.04)
    c.rule(upper_lip_skin & (a < 0.1), "philtrum")
    c.rule(upper_lip_skin, "{side}_upper_lip_skin")
    sgn = np.where(left, 1.0, -1.0)
    fold = segment_distance(
        p, np.column_stack([0.40 * sgn, np.full_like(u, 0.56)]), np.column_stack([0.60 * sgn, np.full_like(u, 1.02)])
    )
    c.rule(fold < 0.075, "{side}_nasolabial_fold")


def _chin_and_jaw(c: _Cascade, ctx: _Context, pt: _Points, d_oval: np.ndarray) -> None:
    p, u, v, a, left = pt
    c.rule((v > ctx.lip_bottom_v) & (a < 0.3) & (v < ctx.lip_bottom_v + 0.15), "mentolabial_sulcus")
    c.rule((v > 1.05) & (a >= 0.3) & (a < 0.58) & (v < 1.45) & (d_oval > 0.12), "{side}_marionette")
    c.rule((v > 1.3) & (a < 0.5) & (v > 1.58), "lower_chin")
    c.rule((v > 1.3) & (a < 0.2), "chin_center")
    c.rule((v > 1.3) & (a < 0.5), "{side}_chin")
    jawline = (d_oval < 0.2) & (v > 0.55)
    c.rule(jawline & (v < 0.97), "{side}_posterior_jawline")
    c.rule(jawline & (v < 1.25), "{side}_jaw_angle")
    c.rule(jawline, "{side}_anterior_jawline")
    c.rule(v > 1.1, "{side}_jowl")


def _cheeks(c: _Cascade, pt: _Points, d_oval: np.ndarray) -> None:
    p, u, v, a, left = pt
    c.rule((d_oval < 0.16) & (v > 0.05) & (v <= 0.55), "{side}_preauricular")
    c.rule((v > 0.05) & (v < 0.45), "{side}_cheekbone")
    c.rule((v >= 0.45) & (v < 0.8), "{side}_mid_cheek")
    c.rule(v >= 0.8, "{side}_lower_cheek")


def _temples_and_forehead(c: _Cascade, ctx: _Context, pt: _Points) -> None:
    p, u, v, a, left = pt
    c.rule((a > 0.7) & (v < -0.2), "{side}_upper_temple")
    c.rule(a > 0.7, "{side}_lower_temple")
    c.rule((a < 0.2) & (v > -0.38), "glabella")
    brow_upper = pt.sided(lambda s: _brow_edge_v(ctx.brows[s], a, upper=True))
    c.rule((v > brow_upper - 0.14) & (a < 0.95), "{side}_brow_ridge")
    c.rule(v < -0.58, "upper_forehead")
    c.rule(a < 0.3, "forehead_center")
    c.rule(np.ones_like(left), "{side}_forehead")


def _brow_edge_v(brow: np.ndarray, a: np.ndarray, upper: bool) -> np.ndarray:
    """``v`` of the brow's lower (or upper) edge at each ``|u|`` (the polygon is lower edge then upper)."""
    half = brow[len(brow) // 2 :] if upper else brow[: len(brow) // 2]
    order = np.argsort(np.abs(half[:, 0]))
    return np.interp(a, np.abs(half[order, 0]), half[order, 1])


@lru_cache(maxsize=1)
def triangle_concepts() -> tuple[str, ...]:
    """Concept of every mesh triangle's centroid (aligned with ``mesh_topology().triangles``).

    The segmentation no longer assigns whole triangles (see :mod:`.atlas`); this coarse table
    remains for code that reasons per triangle (e.g. the 68-point support estimate).
    """
    ref, _ = mesh_reference()
    centroids = ref[mesh_topology().triangles].mean(axis=1)
    return tuple(str(x) for x in classify_points(centroids))
