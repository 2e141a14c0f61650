"""Pure geometry: landmarks -> the label map of the face over the atomic concepts.

Inside the face oval, the concept atlas (:mod:`.atlas`: smooth concept borders drawn once in
the reference face) is warped onto the face through the mesh: the triangles are rasterised
once into a map of triangle ids and every pixel reads the atlas where its triangle's affine
map sends it. Then the eye openings (iris, pupil, sclera) and the mouth opening are drawn from
their landmark loops. One label per pixel: the face is a partition by construction.

The concepts outside the face oval (hair, ears, neck, background) are in :mod:`.offface`.
"""

from __future__ import annotations

from functools import cache, lru_cache

import cv2
import numpy as np

from .atlas import face_atlas, face_outlines
from .mesh_topology import LEFT_IRIS, N_MESH, RIGHT_IRIS, eye_frame, mesh_reference, mesh_topology
from .offface import UNLABELLED

_SHIFT = 4  # sub-pixel bits for cv2 rasterisation
_SKIPPED = -2  # drawn for a concept the landmarks cannot support; unlabelled in the end
_SCALE = 1 << _SHIFT


@cache
def _leaf_codes(leaf_ids: tuple[str, ...]) -> dict[str, int]:
    return {k: i for i, k in enumerate(leaf_ids)}


@lru_cache(maxsize=16)
def _atlas_codes(leaf_ids: tuple[str, ...], skip: frozenset[str]) -> np.ndarray:
    """Atlas label -> leaf code (``UNLABELLED`` for a skipped concept)."""
    index = _leaf_codes(leaf_ids)
    return np.array([UNLABELLED if n in skip else index[n] for n in face_atlas().names], dtype=np.int16)


def _fixed(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _SCALE).astype(np.int32)


def face_label_map(
    landmarks: np.ndarray, image_size: tuple[int, int], leaf_ids: tuple[str, ...], skip: frozenset[str] = frozenset()
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Label the face oval of one face.

    Returns ``(labels, face, box)``: labels and a boolean face mask over the crop
    ``box = (x0, y0, x1, y1)`` of the image (clipped to the image). ``skip``: leaves
    the landmarks cannot support (left unlabelled). ``landmarks`` may carry a third
    column, depth (MediaPipe ``z``: smaller is nearer), which orders overlapping concepts.
    """
    h, w = image_size
    topo = mesh_topology()
    index = _leaf_codes(leaf_ids)
    arr = np.asarray(landmarks, dtype=np.float64)
    pts = arr[:, :2]
    depth = arr[:N_MESH, 2] if arr.shape[1] >= 3 else None
    x0 = int(max(0, np.floor(pts[:N_MESH, 0].min()) - 2))
    y0 = int(max(0, np.floor(pts[:N_MESH, 1].min()) - 2))
    x1 = int(min(w, np.ceil(pts[:N_MESH, 0].max()) + 3))
    y1 = int(min(h, np.ceil(pts[:N_MESH, 1].max()) + 3))
    ch, cw = max(0, y1 - y0), max(0, x1 - x0)
    labels = np.full((ch, cw), UNLABELLED, dtype=np.int16)
    face = np.zeros((ch, cw), dtype=np.uint8)
    if ch == 0 or cw == 0:
        return labels, face.astype(bool), (x0, y0, x1, y1)
    # MediaPipe landmarks put pixel i's centre at coordinate i, as cv2's rasteriser does.
    local = pts - (x0, y0)
    cv2.fillPoly(face, [_fixed(local[list(topo.face_oval)])], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    facemask = face.astype(bool)
    warp_atlas(labels, facemask, local[:N_MESH], depth, _atlas_codes(leaf_ids, frozenset(skip)))
    _draw_openings(labels, local, pts, index, skip)
    labels[~facemask] = UNLABELLED
    return labels, facemask, (x0, y0, x1, y1)


def warp_atlas(
    labels: np.ndarray,
    where: np.ndarray,
    mesh: np.ndarray,
    depth: np.ndarray | None,
    codes: np.ndarray,
    fold_tolerance: float = 0.003,
) -> None:
    """Draw the concept atlas onto ``labels`` (crop coordinates) through the mesh (a piecewise-affine
    warp): every pixel of ``where`` gets ``codes[atlas label]``, except the eye and mouth openings
    (holes of the mesh, drawn by :func:`_draw_openings`).

    A face whose mesh does not fold over itself in the image (flipped triangles below
    ``fold_tolerance`` of its area: frontal and moderately turned faces) is drawn as polygons, one
    fill per concept (fast). A folded mesh (a turned head, whose far side slips behind the nose)
    is drawn pixel by pixel: triangles are rasterised far to near into a map of triangle ids and
    every pixel reads the atlas through its triangle's affine map, so the visible surface wins."""
    tris = mesh_topology().triangles
    img_tri = mesh[tris]
    area = _signed_area(img_tri)
    flipped = np.sign(area) != _reference_orientation()
    if np.abs(area[flipped]).sum() <= fold_tolerance * np.abs(area).sum():
        _draw_outlines(labels, mesh, depth, codes)
    else:
        _draw_pixels(labels, where, img_tri, flipped, depth, codes)
    topo = mesh_topology()
    holes = np.zeros(labels.shape, np.uint8)
    cv2.fillPoly(
        holes,
        [_fixed(mesh[list(loop)]) for loop in (topo.right_eye, topo.left_eye, topo.lips_inner)],
        1,
        lineType=cv2.LINE_8,
        shift=_SHIFT,
    )
    _fill_gaps(labels, where & (labels == UNLABELLED) & ~holes.astype(bool))
    labels[labels == _SKIPPED] = UNLABELLED


def _draw_outlines(labels: np.ndarray, mesh: np.ndarray, depth: np.ndarray | None, codes: np.ndarray) -> None:
    """Fill every concept's outline, placed through the mesh; far concepts first."""
    ol = face_outlines()
    pos = _fixed(ol.place(mesh))
    order = range(len(ol.label))
    if depth is not None:
        order = np.argsort(-(ol.group_depth * depth).sum(axis=1), kind="stable")  # far (large z) first; no BLAS call
    for g in order:
        code = int(codes[ol.label[g]])
        cv2.fillPoly(
            labels,
            [pos[a:b] for a, b in ol.loops[g]],
            code if code >= 0 else _SKIPPED,
            lineType=cv2.LINE_8,
            shift=_SHIFT,
        )


def _draw_pixels(labels, where, img_tri, flipped, depth, codes) -> None:
    """Per pixel: its triangle (rasterised flipped ones first, then far to near), then the atlas."""
    tris = mesh_topology().triangles
    key = -depth[tris].mean(axis=1) if depth is not None else np.zeros(len(tris))
    tid = np.full(labels.shape, -1, dtype=np.int16)
    fixed = _fixed(img_tri)
    for t in np.lexsort((key, ~flipped)).tolist():
        cv2.fillConvexPoly(tid, fixed[t], t, lineType=cv2.LINE_8, shift=_SHIFT)
    ys, xs = np.nonzero(where & (tid >= 0))
    if len(ys) == 0:
        return
    atlas = face_atlas()
    a = _affines(img_tri, _reference_cells()[tris])[tid[ys, xs]]
    fx, fy = xs.astype(np.float32), ys.astype(np.float32)
    cx = np.rint(a[:, 0, 0] * fx + a[:, 0, 1] * fy + a[:, 0, 2]).astype(np.int32)
    cy = np.rint(a[:, 1, 0] * fx + a[:, 1, 1] * fy + a[:, 1, 2]).astype(np.int32)
    ah, aw = atlas.labels.shape
    code = codes[atlas.labels[np.clip(cy, 0, ah - 1), np.clip(cx, 0, aw - 1)]]
    labels[ys, xs] = np.where(code >= 0, code, _SKIPPED)


@lru_cache(maxsize=1)
def _reference_cells() -> np.ndarray:
    """Atlas cell coordinates of the mesh vertices."""
    ref, _ = mesh_reference()
    return face_atlas().to_cells(ref)


@lru_cache(maxsize=1)
def _reference_orientation() -> np.ndarray:
    ref, _ = mesh_reference()
    return np.sign(_signed_area(ref[mesh_topology().triangles]))


def _signed_area(tri: np.ndarray) -> np.ndarray:
    d1, d2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    return d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]


def _affines(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(T, 2, 3) affine maps taking each triangle ``src[t]`` onto ``dst[t]`` (float32), in closed
    form. A degenerate (flat) triangle maps everything to its target's centroid."""
    p1, p2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    q1, q2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]
    det = p1[:, 0] * p2[:, 1] - p1[:, 1] * p2[:, 0]
    ok = np.abs(det) > 1e-6
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    i00, i01 = p2[:, 1] * inv_det, -p2[:, 0] * inv_det  # P^-1 for P = [p1 p2] (columns); A = Q P^-1
    i10, i11 = -p1[:, 1] * inv_det, p1[:, 0] * inv_det
    out = np.empty((len(src), 2, 3))
    for r in range(2):
        a0 = q1[:, r] * i00 + q2[:, r] * i10
        a1 = q1[:, r] * i01 + q2[:, r] * i11
        out[:, r, 0], out[:, r, 1] = a0, a1
        out[:, r, 2] = np.where(ok, dst[:, 0, r] - a0 * src[:, 0, 0] - a1 * src[:, 0, 1], dst[:, :, r].mean(axis=1))
    return out.astype(np.float32)


def _fill_gaps(labels: np.ndarray, gaps: np.ndarray) -> None:
    """``gaps`` pixels (inside the face, between drawn outlines or in folds) take a neighbour's label."""
    if not gaps.any():
        return
    for _ in range(3):  # seams are a pixel or two wide
        grown = cv2.dilate(labels, np.ones((3, 3), np.uint8))
        take = gaps & (grown >= 0)
        labels[take] = grown[take]
        gaps = gaps & ~take
        if not gaps.any():
            return
    known = labels >= 0
    if known.any():
        from scipy import ndimage  # rarely reached: imported here, not in every worker

        iy, ix = ndimage.distance_transform_edt(~known, return_distances=False, return_indices=True)
        labels[gaps] = labels[iy[gaps], ix[gaps]]


def _fill_window(shape: tuple[int, int], loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (ys, xs) of the polygon ``loop`` (pixel coordinates) inside an array of ``shape``,
    rasterised in the polygon's bounding window only (integer shifts leave cv2's fill unchanged)."""
    fixed = _fixed(loop)
    x0 = max(0, int(fixed[:, 0].min()) >> _SHIFT)
    y0 = max(0, int(fixed[:, 1].min()) >> _SHIFT)
    x1 = min(shape[1], (int(fixed[:, 0].max()) >> _SHIFT) + 2)
    y1 = min(shape[0], (int(fixed[:, 1].max()) >> _SHIFT) + 2)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    win = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(win, [fixed - np.array([x0, y0], np.int32) * _SCALE], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    ys, xs = np.nonzero(win)
    return ys + y0, xs + x0


def _draw_openings(labels: np.ndarray, local: np.ndarray, pts: np.ndarray, index: dict, skip) -> None:
    """Eye openings (iris, pupil, medial/lateral sclera) and the mouth opening."""
    topo = mesh_topology()
    origin, axes, _ = eye_frame(pts)
    origin_local = origin - (pts[0] - local[0])
    if "inner_mouth" not in skip:
        labels[_fill_window(labels.shape, local[list(topo.lips_inner)])] = index["inner_mouth"]
    have_iris = len(pts) >= 478
    for side, loop, iris in (("right", topo.right_eye, RIGHT_IRIS), ("left", topo.left_eye, LEFT_IRIS)):
        if f"{side}_iris" in skip:
            continue
        ys, xs = _fill_window(labels.shape, local[list(loop)])
        if len(ys) == 0:
            continue
        if have_iris:
            c = local[iris[0]]
            r = float(np.mean(np.linalg.norm(local[list(iris[1:])] - c, axis=1)))
        else:  # no iris landmarks: the iris cannot be placed
            c, r = local[list(loop)].mean(axis=0), 0.0
        d = np.hypot(xs - c[0], ys - c[1])
        # medial = closer to the face midline than the iris centre, along the eye axis
        u_pix = (xs - origin_local[0]) * axes[0, 0] + (ys - origin_local[1]) * axes[0, 1]
        u_iris = (c[0] - origin_local[0]) * axes[0, 0] + (c[1] - origin_local[1]) * axes[0, 1]
        medial = np.abs(u_pix) < abs(u_iris)
        lab = np.where(medial, index[f"{side}_medial_sclera"], index[f"{side}_lateral_sclera"]).astype(np.int16)
        lab[d <= r] = index[f"{side}_iris"]
        lab[d <= 0.4 * r] = index[f"{side}_pupil"]
        labels[ys, xs] = lab
