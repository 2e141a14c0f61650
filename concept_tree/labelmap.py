"""Pure geometry: landmarks (+ a person mask) -> a label map over the atomic concepts.

Inside the face oval the map is rasterised once from the mesh triangles (each carries
its concept), then the eye openings (iris, pupil, sclera) and the mouth opening are
drawn, and any pixel left between triangles takes its nearest label. The face is a
partition by construction: one label per pixel, no gaps at seams.

Outside the face oval, person pixels (SelfieSegmentation) become hair, ears, neck or
upper body, and the rest background, by position in the eye-normalised face frame
(see docs/segmentation.md for the rules and their limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy import ndimage

from .mesh_regions import triangle_concepts
from .mesh_topology import LEFT_IRIS, RIGHT_IRIS, eye_frame, mesh_topology

UNLABELLED = -1
_SHIFT = 4  # sub-pixel bits for cv2 rasterisation
_SCALE = 1 << _SHIFT


@dataclass(frozen=True)
class OutsideFaceRules:
    """Bands of the eye-normalised frame (unit: inter-ocular distance) for off-mesh concepts."""

    ear_top_v: float = -0.25  # ears span from about the brows ...
    ear_bottom_v: float = 0.8  # ... to below the nose
    ear_width: float = 0.55  # how far past the face contour an ear reaches
    tragus_width: float = 0.12
    helix_bottom_v: float = 0.1
    lobe_top_v: float = 0.5
    hairline_width: float = 0.22
    hairline_center_half_width: float = 0.45
    crown_half_width: float = 0.8
    neck_half_width: float = 0.75
    neck_length: float = 1.2  # below the chin
    throat_half_width: float = 0.3
    above_head_half_width: float = 1.3
    person_threshold: float = 0.5


@lru_cache(maxsize=None)
def _leaf_codes(leaf_ids: tuple[str, ...]) -> tuple[np.ndarray, dict[str, int]]:
    index = {k: i for i, k in enumerate(leaf_ids)}
    tri = np.array([index[c] for c in triangle_concepts()], dtype=np.int16)
    return tri, index


def _fixed(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _SCALE).astype(np.int32)


def face_label_map(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    leaf_ids: tuple[str, ...],
    skip: frozenset[str] = frozenset(),
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Label the face oval of one face.

    Returns ``(labels, face, box)``: labels and a boolean face mask over the crop
    ``box = (x0, y0, x1, y1)`` of the image (clipped to the image). ``skip``: leaves
    the landmarks cannot support (left unlabelled).
    """
    h, w = image_size
    topo = mesh_topology()
    tri_codes, index = _leaf_codes(leaf_ids)
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    x0 = int(max(0, np.floor(pts[:468, 0].min()) - 2))
    y0 = int(max(0, np.floor(pts[:468, 1].min()) - 2))
    x1 = int(min(w, np.ceil(pts[:468, 0].max()) + 3))
    y1 = int(min(h, np.ceil(pts[:468, 1].max()) + 3))
    ch, cw = max(0, y1 - y0), max(0, x1 - x0)
    labels = np.full((ch, cw), UNLABELLED, dtype=np.int16)
    face = np.zeros((ch, cw), dtype=np.uint8)
    if ch == 0 or cw == 0:
        return labels, face.astype(bool), (x0, y0, x1, y1)
    # MediaPipe landmarks put pixel i's centre at coordinate i, as cv2's rasteriser does.
    local = pts - (x0, y0)
    cv2.fillPoly(face, [_fixed(local[list(topo.face_oval)])], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    tri_pts = _fixed(local[topo.triangles])
    skip_codes = {index[s] for s in skip if s in index}
    # One fillPoly per concept: its triangles tile a region, so the scan-line fill gives their union.
    for code, members in _triangles_by_code(tri_codes):
        value = int(code) if code not in skip_codes else -2
        cv2.fillPoly(labels, list(tri_pts[members]), value, lineType=cv2.LINE_8, shift=_SHIFT)
    _draw_openings(labels, local, pts, index, skip)
    labels[labels == -2] = UNLABELLED
    facemask = face.astype(bool)
    holes = facemask & (labels == UNLABELLED)
    if skip:
        # Unsupported concepts stay unlabelled; only seams between supported ones are filled.
        holes &= ~_skipped_area(local, topo, tri_codes, skip_codes, labels.shape)
    _fill_holes(labels, holes)
    labels[~facemask] = UNLABELLED
    return labels, facemask, (x0, y0, x1, y1)


@lru_cache(maxsize=None)
def _triangles_by_code_cached(codes: bytes) -> tuple[tuple[int, np.ndarray], ...]:
    arr = np.frombuffer(codes, dtype=np.int16)
    return tuple((int(c), np.flatnonzero(arr == c)) for c in np.unique(arr))


def _triangles_by_code(tri_codes: np.ndarray):
    return _triangles_by_code_cached(tri_codes.tobytes())


def _fill_holes(labels: np.ndarray, holes: np.ndarray) -> None:
    """Give seam pixels (between rasterised triangles) a neighbouring label."""
    if not holes.any():
        return
    kernel = np.ones((3, 3), np.uint8)
    for _ in range(3):  # seams are a pixel or two wide
        grown = cv2.dilate(labels, kernel)
        take = holes & (grown != UNLABELLED)
        labels[take] = grown[take]
        holes = holes & ~take
        if not holes.any():
            return
    known = labels != UNLABELLED
    if known.any():
        idx = ndimage.distance_transform_edt(~known, return_distances=False, return_indices=True)
        labels[holes] = labels[idx[0][holes], idx[1][holes]]


def _skipped_area(local, topo, tri_codes, skip_codes, shape) -> np.ndarray:
    m = np.zeros(shape, dtype=np.uint8)
    for tri, code in zip(topo.triangles, tri_codes):
        if code in skip_codes:
            cv2.fillConvexPoly(m, _fixed(local[tri]), 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return m.astype(bool)


def _draw_openings(labels: np.ndarray, local: np.ndarray, pts: np.ndarray, index: dict, skip) -> None:
    """Eye openings (iris, pupil, medial/lateral sclera) and the mouth opening."""
    topo = mesh_topology()
    origin, axes, _ = eye_frame(pts)
    origin_local = origin - (pts[0] - local[0])
    mouth = np.zeros(labels.shape, dtype=np.uint8)
    cv2.fillPoly(mouth, [_fixed(local[list(topo.lips_inner)])], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    if "inner_mouth" not in skip:
        labels[mouth.astype(bool)] = index["inner_mouth"]
    have_iris = len(pts) >= 478
    for side, loop, iris in (("right", topo.right_eye, RIGHT_IRIS), ("left", topo.left_eye, LEFT_IRIS)):
        if f"{side}_iris" in skip:
            continue
        opening = np.zeros(labels.shape, dtype=np.uint8)
        cv2.fillPoly(opening, [_fixed(local[list(loop)])], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        ys, xs = np.nonzero(opening)
        if len(ys) == 0:
            continue
        if have_iris:
            c = local[iris[0]]
            r = float(np.mean(np.linalg.norm(local[list(iris[1:])] - c, axis=1)))
        else:  # no iris landmarks: the iris cannot be placed
            c, r = local[list(loop)].mean(axis=0), 0.0
        d = np.hypot(xs - c[0], ys - c[1])
        # medial = closer to the face midline than the iris centre, along the eye axis
        u_pix = (np.stack([xs, ys], 1) - origin_local) @ axes[0]
        u_iris = (c - origin_local) @ axes[0]
        medial = np.abs(u_pix) < abs(u_iris)
        lab = np.where(medial, index[f"{side}_medial_sclera"], index[f"{side}_lateral_sclera"]).astype(np.int16)
        lab[d <= r] = index[f"{side}_iris"]
        lab[d <= 0.4 * r] = index[f"{side}_pupil"]
        labels[ys, xs] = lab


def outside_face_labels(
    landmarks: np.ndarray,
    image_size: tuple[int, int],
    person: np.ndarray | None,
    face_full: np.ndarray,
    leaf_ids: tuple[str, ...],
    rules: OutsideFaceRules = OutsideFaceRules(),
) -> np.ndarray:
    """Hair, ears, neck, upper body and background for the pixels outside the face (full image).

    The geometric bands are evaluated on a grid of every ``step``-th pixel (they are smooth),
    once as if each cell were person and once as if it were background; the full-resolution
    person mask then picks between the two, so region outlines keep the mask's resolution.
    """
    h, w = image_size
    _, index = _leaf_codes(leaf_ids)
    topo = mesh_topology()
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    origin, axes, iod = eye_frame(pts)
    iod = max(iod, 1e-6)
    step = 2 if min(h, w) >= 128 else 1
    # centre of each step x step block; pixel i's centre is at coordinate i (landmark convention)
    gy = (np.arange(0, h, step, dtype=np.float32) + (step - 1) / 2 - origin[1])[:, None]
    gx = (np.arange(0, w, step, dtype=np.float32) + (step - 1) / 2 - origin[0])[None, :]
    u = (gx * axes[0, 0] + gy * axes[0, 1]) / iod
    v = (gx * axes[1, 0] + gy * axes[1, 1]) / iod
    a = np.abs(u)
    left = u >= 0
    oval_uv = (pts[list(topo.face_oval)] - origin) @ axes.T / iod
    v_top, v_chin = float(oval_uv[:, 1].min()), float(oval_uv[:, 1].max())
    half = np.empty_like(u)
    for side_mask, sel in ((left, oval_uv[:, 0] >= 0), (~left, oval_uv[:, 0] < 0)):
        side_pts = oval_uv[sel]
        order = np.argsort(side_pts[:, 1])
        half[side_mask] = np.interp(v[side_mask], side_pts[order, 1], np.abs(side_pts[order, 0]))
    lateral = a - half
    dist_out = cv2.distanceTransform((~face_full).astype(np.uint8), cv2.DIST_L2, 3)[::step, ::step] / iod

    def pick(cond_left, cond_right=None):
        return cond_left if cond_right is None else np.where(left, cond_left, cond_right)

    code = {k: np.int16(v_) for k, v_ in index.items()}
    # -- as background
    above = (v < v_top) & (a < rules.above_head_half_width)
    bg = np.where(
        above,
        code["background_above_head"],
        np.where(
            v < v_chin,
            pick(code["background_left"], code["background_right"]),
            pick(code["background_lower_left"], code["background_lower_right"]),
        ),
    ).astype(np.int16)
    # -- as person
    ear_band = (v >= rules.ear_top_v) & (v <= rules.ear_bottom_v)
    ear = ear_band & (lateral < rules.ear_width)
    tragus = ear & (dist_out < rules.tragus_width) & (v > rules.helix_bottom_v) & (v < rules.lobe_top_v)
    beside_jaw = (v > rules.ear_bottom_v) & (v < v_chin) & (lateral > 0.15)
    hair = ~ear & ((v < rules.ear_top_v) | ear_band | beside_jaw)
    hairline = hair & (dist_out < rules.hairline_width) & (v < rules.ear_top_v)
    neck = (a < rules.neck_half_width) & (v < v_chin + rules.neck_length)
    person_code = np.select(
        [
            tragus,
            ear & (v < rules.helix_bottom_v),
            ear & (v > rules.lobe_top_v),
            ear,
            hairline & (a < rules.hairline_center_half_width),
            hairline,
            hair & (a < rules.crown_half_width) & (v < rules.ear_top_v),
            hair,
            neck & (a < rules.throat_half_width),
            neck,
        ],
        [
            pick(code["left_tragus"], code["right_tragus"]),
            pick(code["left_helix"], code["right_helix"]),
            pick(code["left_earlobe"], code["right_earlobe"]),
            pick(code["left_concha"], code["right_concha"]),
            code["hairline_center"],
            pick(code["left_hairline"], code["right_hairline"]),
            code["crown_hair"],
            pick(code["left_side_hair"], code["right_side_hair"]),
            code["throat"],
            pick(code["left_neck"], code["right_neck"]),
        ],
        default=code["upper_body"],
    ).astype(np.int16)
    if step > 1:
        bg = np.repeat(np.repeat(bg, step, axis=0), step, axis=1)[:h, :w]
        person_code = np.repeat(np.repeat(person_code, step, axis=0), step, axis=1)[:h, :w]
    is_person = (person >= rules.person_threshold) if person is not None else np.zeros((h, w), bool)
    out = np.where(is_person, person_code, bg)
    out[face_full] = UNLABELLED
    return out
