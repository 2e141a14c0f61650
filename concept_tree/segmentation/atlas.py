"""The concept atlas: the face's atomic concepts drawn once, with smooth borders, in the
reference face, and mapped onto every face through the mesh.

The atlas is a label image over the frontal reference layout of the MediaPipe mesh
(eye-normalised units, see :mod:`.mesh_topology`). It is made from the concept rules
(:func:`.mesh_regions.classify_points`) evaluated at every cell, then smoothed in two steps
so that borders are smooth curves rather than rule corners:

1. anchors (nose, mouth, cheeks, ...): each cell takes the anchor with the largest
   Gaussian-weighted share around it (``anchor_sigma``);
2. leaves: the same vote among the leaves of the cell's anchor (``leaf_sigma``), so a leaf
   never crosses its anchor's border; islands smaller than ``min_island`` join a neighbour.

Cells outside the face oval take the label of the nearest cell inside, so a lookup a pixel
beyond the oval still lands on a sensible concept. One label per cell: the face concepts stay
a partition. The atlas ships as ``data/face_atlas.png`` + ``data/face_atlas.json`` (built by
``scripts/build_face_atlas.py``; a test checks that the files match a fresh build).

:func:`warp_labels` maps the atlas onto an image: every mesh triangle is rasterised once into
a map of triangle ids, and each pixel is carried by its triangle's affine map back to the
reference face, where it reads its label (a piecewise-affine warp of the atlas). For speed
the segmentation draws the same warp as polygons (:func:`outlines`): every concept's outline
is a loop of vertices, each fixed once to the mesh triangle it lies in by barycentric weights;
per face the vertices are placed by one weighted sum and each concept is filled in one call.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

import cv2
import numpy as np

from .mesh_topology import mesh_reference, mesh_topology

_DATA = "data/face_atlas"
_OUTLINE_PARAMS = (0.5, 4.0)  # tolerance, max_edge (cells) of the shipped outlines


@dataclass(frozen=True)
class AtlasParams:
    step: float = 0.005  # cell size (inter-ocular distances)
    margin: float = 0.05  # grid reaches this far beyond the reference oval
    anchor_sigma: float = 0.05  # smoothing of anchor borders (IOD)
    leaf_sigma: float = 0.02  # smoothing of leaf borders inside an anchor (IOD)
    min_island: float = 0.002  # leaf pieces below this area (IOD^2) join a neighbour


@dataclass(frozen=True)
class Atlas:
    labels: np.ndarray  # (H, W) uint8: index into ``names``
    names: tuple[str, ...]
    origin: tuple[float, float]  # (u, v) of the centre of cell (0, 0)
    step: float

    def to_cells(self, uv: np.ndarray) -> np.ndarray:
        """Reference coordinates (N, 2) -> fractional cell coordinates (x, y)."""
        return (np.asarray(uv, dtype=np.float64) - self.origin) / self.step

    def lookup(self, uv: np.ndarray) -> np.ndarray:
        """Concept names (object array) at reference coordinates (N, 2)."""
        c = np.rint(self.to_cells(uv)).astype(np.int64)
        h, w = self.labels.shape
        lab = self.labels[np.clip(c[:, 1], 0, h - 1), np.clip(c[:, 0], 0, w - 1)]
        return np.array(self.names, dtype=object)[lab]


def _grid(params: AtlasParams) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Cell centres: symmetric about u = 0 and offset by half a cell, so that no centre lies on the
    midline or on a round rule threshold (where float rounding would decide the side)."""
    ref, _ = mesh_reference()
    oval = ref[list(mesh_topology().face_oval)]
    half_u = np.ceil((np.abs(oval[:, 0]).max() + params.margin) / params.step) * params.step
    v0 = np.floor((oval[:, 1].min() - params.margin) / params.step) * params.step
    v1 = oval[:, 1].max() + params.margin
    us = np.arange(-half_u, half_u, params.step) + params.step / 2
    us = (us - us[::-1]) / 2  # exactly antisymmetric
    vs = np.arange(v0, v1, params.step) + params.step / 2
    return us, vs, (float(us[0]), float(vs[0]))


def _oval_cells(shape, origin, step) -> np.ndarray:
    ref, _ = mesh_reference()
    pts = np.round((ref[list(mesh_topology().face_oval)] - origin) / step * 16).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def _vote(labels: np.ndarray, n: int, sigma_cells: float, inside: np.ndarray, allowed=None) -> np.ndarray:
    """Per cell, the label with the largest Gaussian-weighted count around it (among ``allowed``)."""
    best = np.full(labels.shape, -1.0, np.float32)
    arg = np.full(labels.shape, -1, np.int32)
    for k in range(n):
        m = ((labels == k) & inside).astype(np.float32)
        if not m.any():
            continue
        score = cv2.GaussianBlur(m, (0, 0), sigma_cells, borderType=cv2.BORDER_CONSTANT)
        if allowed is not None:
            score[~allowed(k)] = -1.0
        take = score > best
        best[take] = score[take]
        arg[take] = k
    return arg


def _nearest_fill(target: np.ndarray, fill: np.ndarray, values: np.ndarray, source: np.ndarray) -> None:
    """``target[fill]`` = ``values`` at the nearest ``source`` cell (in place)."""
    if fill.any() and source.any():
        from scipy import ndimage  # build time only: the import costs a worker ~0.25 s CPU

        iy, ix = ndimage.distance_transform_edt(~source, return_distances=False, return_indices=True)
        target[fill] = values[iy[fill], ix[fill]]


def _merge_islands(labels: np.ndarray, inside: np.ndarray, min_cells: int, group: np.ndarray) -> None:
    """Pieces of a leaf smaller than ``min_cells`` take the most common other label of the same
    anchor (``group[label]``) on their border (in place)."""
    for k in np.unique(labels[inside]):
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == k).astype(np.uint8), connectivity=4)
        if n <= 2:
            continue
        for c in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] < min_cells) + 1:
            piece = comp == c
            ring = cv2.dilate(piece.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~piece & inside
            nb = labels[ring]
            nb = nb[(nb != k) & (group[nb] == group[k])]
            if nb.size:
                labels[piece] = np.bincount(nb).argmax()


def build_atlas(params: AtlasParams = AtlasParams()) -> Atlas:
    """Evaluate the concept rules on the reference grid and smooth the borders (a few seconds)."""
    from ..tree import load_tree
    from .mesh_regions import classify_points

    us, vs, origin = _grid(params)
    uu, vv = np.meshgrid(us, vs)
    raw = classify_points(np.column_stack([uu.ravel(), vv.ravel()])).reshape(uu.shape)
    inside = _oval_cells(raw.shape, origin, params.step)
    names, leaf = np.unique(raw, return_inverse=True)
    leaf = leaf.reshape(raw.shape).astype(np.int32)
    tree = load_tree()
    anchors = sorted({tree.anchor_of(str(n)) for n in names})
    anchor_of = np.array([anchors.index(tree.anchor_of(str(n))) for n in names])
    anchor = _vote(anchor_of[leaf], len(anchors), params.anchor_sigma / params.step, inside)
    out = _vote(leaf, len(names), params.leaf_sigma / params.step, inside, allowed=lambda k: anchor == anchor_of[k])
    for a in range(len(anchors)):  # cells an anchor gained where none of its leaves got a vote
        lost = inside & (anchor == a) & ((out < 0) | (anchor_of[np.maximum(out, 0)] != a))
        _nearest_fill(out, lost, leaf, inside & (anchor_of[leaf] == a))
    _merge_islands(out, inside, max(1, int(params.min_island / params.step**2)), anchor_of)
    _nearest_fill(out, ~inside, out.copy(), inside)
    return Atlas(labels=out.astype(np.uint8), names=tuple(str(n) for n in names), origin=origin, step=params.step)


def save_atlas(atlas: Atlas, stem) -> None:
    """Write ``stem.png`` (labels), ``stem.json`` (names, origin, step) and ``stem_outlines.npz``
    (the outlines the segmentation draws, :func:`save_outlines`)."""
    from pathlib import Path

    stem = Path(stem)
    cv2.imwrite(str(stem.with_suffix(".png")), atlas.labels)
    meta = {
        "about": "Concept atlas of the reference face (labels index `names`); built by scripts/build_face_atlas.py.",
        "names": list(atlas.names),
        "origin": list(atlas.origin),
        "step": atlas.step,
    }
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    save_outlines(atlas, stem.with_name(stem.name + "_outlines.npz"))


@dataclass(frozen=True)
class AtlasOutlines:
    """The atlas as polygons: every concept's outline (and holes) as vertex loops in the reference
    face, each vertex tied to the mesh triangle it lies in by barycentric weights, so one
    weighted sum places all vertices on a face."""

    label: tuple[int, ...]  # atlas label of each group of loops
    loops: tuple[tuple[tuple[int, int], ...], ...]  # per group: (start, end) into the vertex arrays
    triangle: np.ndarray  # (V,) mesh triangle of each vertex
    weights: np.ndarray  # (V, 3) barycentric weights in that triangle
    corners: np.ndarray  # (V, 3) mesh vertex ids of that triangle
    group_depth: np.ndarray  # (G, 468): mean depth of each group's outer loop = group_depth @ depth

    @cached_property
    def _columns(self) -> tuple[np.ndarray, ...]:
        """Weights and corner ids as contiguous columns (a gather from a contiguous vector each)."""
        return tuple(np.ascontiguousarray(self.weights[:, k]) for k in range(3)) + tuple(
            np.ascontiguousarray(self.corners[:, k]).astype(np.intp) for k in range(3)
        )

    def place(self, mesh: np.ndarray) -> np.ndarray:
        """Vertex positions (V, 2) for mesh vertex positions (468, 2)."""
        w0, w1, w2, c0, c1, c2 = self._columns
        out = np.empty((len(w0), 2))
        for d, m in enumerate(np.ascontiguousarray(np.asarray(mesh, dtype=np.float64)[:, :2].T)):
            out[:, d] = w0 * m[c0] + w1 * m[c1] + w2 * m[c2]
        return out


def outlines(atlas: Atlas, tolerance: float = 0.5, max_edge: float = 4.0) -> AtlasOutlines:
    """Outlines of every concept of ``atlas`` inside the face oval, simplified to ``tolerance``
    cells, with no edge longer than ``max_edge`` cells (a long straight edge would cross several
    triangles, whose maps differ)."""
    ref, _ = mesh_reference()
    tris = mesh_topology().triangles
    cells = atlas.to_cells(ref)
    inside = _oval_cells(atlas.labels.shape, atlas.origin, atlas.step)
    tid = np.full(atlas.labels.shape, -1, np.int32)
    for t, tri in enumerate(tris):  # triangles of the reference face, at atlas resolution
        cv2.fillConvexPoly(tid, np.round(cells[tri] * 16).astype(np.int32), t, lineType=cv2.LINE_8, shift=4)
    known = tid >= 0
    from scipy import ndimage  # not at import: segmentation loads the shipped outlines instead

    iy, ix = ndimage.distance_transform_edt(~known, return_distances=False, return_indices=True)
    tid = tid[iy, ix]  # cells beyond the oval: the nearest triangle (extrapolated)
    labels, loops, verts = [], [], []
    n = 0
    for k in range(len(atlas.names)):
        contours, _ = cv2.findContours(
            ((atlas.labels == k) & inside).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE
        )
        group = []
        for c in contours:
            c = _subdivide(cv2.approxPolyDP(c, tolerance, True).reshape(-1, 2).astype(np.float64), max_edge)
            if len(c) < 3:
                continue
            verts.append(c)
            group.append((n, n + len(c)))
            n += len(c)
        if group:
            labels.append(k)
            loops.append(tuple(group))
    v = np.concatenate(verts)
    t = tid[
        np.clip(np.rint(v[:, 1]).astype(int), 0, tid.shape[0] - 1),
        np.clip(np.rint(v[:, 0]).astype(int), 0, tid.shape[1] - 1),
    ]
    w = _barycentric(v, cells[tris[t]])
    corners = tris[t]
    depth = _group_depth(loops, corners, w, len(ref))
    return AtlasOutlines(tuple(labels), tuple(loops), t.astype(np.int32), w, corners, depth)


def _group_depth(loops, corners: np.ndarray, w: np.ndarray, n_mesh: int) -> np.ndarray:
    """(G, n_mesh): row g averages the mesh depth over group g's outer loop (barycentric weights)."""
    depth = np.zeros((len(loops), n_mesh))
    for g, group in enumerate(loops):
        a, b = group[0]
        for k in range(3):
            np.add.at(depth[g], corners[a:b, k], w[a:b, k] / (b - a))
    return depth


def _subdivide(loop: np.ndarray, max_edge: float) -> np.ndarray:
    """The closed loop with points added so that no edge is longer than ``max_edge``."""
    nxt = np.roll(loop, -1, axis=0)
    parts = []
    for a, b in zip(loop, nxt):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / max_edge)))
        parts.append(a + (b - a) * (np.arange(n)[:, None] / n))
    return np.concatenate(parts)


def _barycentric(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric weights (V, 3) of points (V, 2) in triangles (V, 3, 2) (extrapolated outside)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.column_stack([1 - wb - wc, wb, wc])


@lru_cache(maxsize=1)
def face_outlines() -> AtlasOutlines:
    """Outlines of the shipped atlas: the shipped file when it was made from this atlas, reference
    layout and mesh (a key says so), else computed (once per process)."""
    atlas = face_atlas()
    return _load_outlines(atlas) or outlines(atlas, *_OUTLINE_PARAMS)


def _outline_key(atlas: Atlas) -> str:
    """Digest of everything the outlines are made from."""
    ref, _ = mesh_reference()
    h = hashlib.sha256(repr((atlas.names, atlas.origin, atlas.step, _OUTLINE_PARAMS)).encode())
    for part in (atlas.labels, ref, mesh_topology().triangles):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def save_outlines(atlas: Atlas, path) -> None:
    """Write the outlines of ``atlas`` (``.npz``) for :func:`face_outlines`: a worker process then
    reads them (a few ms) instead of tracing them (~0.1 s) and importing scipy (~0.25 s)."""
    ol = outlines(atlas, *_OUTLINE_PARAMS)
    loops = np.array([(g, a, b) for g, group in enumerate(ol.loops) for a, b in group], np.int64)
    np.savez_compressed(path, key=np.array(_outline_key(atlas)), label=np.array(ol.label, np.int64), loops=loops,
                        triangle=ol.triangle, weights=ol.weights, corners=ol.corners)  # fmt: skip


def _load_outlines(atlas: Atlas) -> AtlasOutlines | None:
    try:
        raw = resources.files("fifa.concept_tree").joinpath(_DATA + "_outlines.npz").read_bytes()
    except FileNotFoundError:
        return None
    data = np.load(io.BytesIO(raw))
    if str(data["key"]) != _outline_key(atlas):
        return None  # stale: made from another atlas, reference or mesh
    groups: dict[int, list] = {}
    for g, a, b in data["loops"].tolist():
        groups.setdefault(g, []).append((a, b))
    loops = tuple(tuple(groups[g]) for g in range(len(data["label"])))
    corners, w = data["corners"], data["weights"]
    depth = _group_depth(loops, corners, w, len(mesh_reference()[0]))
    return AtlasOutlines(tuple(data["label"].tolist()), loops, data["triangle"], w, corners, depth)


@lru_cache(maxsize=1)
def face_atlas() -> Atlas:
    """The shipped concept atlas."""
    root = resources.files("fifa.concept_tree")
    meta = json.loads(root.joinpath(_DATA + ".json").read_text())
    buf = np.frombuffer(root.joinpath(_DATA + ".png").read_bytes(), np.uint8)
    labels = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return Atlas(labels=labels, names=tuple(meta["names"]), origin=tuple(meta["origin"]), step=float(meta["step"]))
