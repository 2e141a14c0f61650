"""MediaPipe FaceMesh topology: triangles, contour loops and the eye-normalised frame.

All of it is derived from the connection lists that ship inside the mediapipe wheel,
so nothing here is downloaded or hand-copied.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

N_MESH = 468  # landmarks without the 10 refined iris points
RIGHT_IRIS = (468, 469, 470, 471, 472)  # centre first; subject's right (image left)
LEFT_IRIS = (473, 474, 475, 476, 477)


def _connections():
    from mediapipe.python.solutions import face_mesh_connections as c

    return c


def _chain_loop(edges) -> list[int]:
    """Order the vertices of a closed edge loop."""
    adj = defaultdict(list)
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    start = min(adj)
    loop, prev, cur = [start], None, start
    while True:
        nxt = [v for v in adj[cur] if v != prev]
        if not nxt or nxt[0] == start:
            break
        prev, cur = cur, nxt[0]
        loop.append(cur)
    return loop


def _split_loops(edges) -> list[list[int]]:
    """Split an edge set made of several closed loops into ordered loops."""
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen, loops = set(), []
    for v in sorted(adj):
        if v in seen:
            continue
        comp, stack = set(), [v]
        while stack:
            x = stack.pop()
            if x in comp:
                continue
            comp.add(x)
            stack.extend(adj[x] - comp)
        seen |= comp
        loops.append(_chain_loop([e for e in edges if e[0] in comp]))
    return loops


@dataclass(frozen=True)
class MeshTopology:
    triangles: np.ndarray  # (T, 3) vertex indices
    face_oval: tuple[int, ...]
    right_eye: tuple[int, ...]  # eyelid-margin loop, subject's right
    left_eye: tuple[int, ...]
    right_eyebrow: tuple[int, ...]  # closed polygon
    left_eyebrow: tuple[int, ...]
    lips_outer: tuple[int, ...]
    lips_inner: tuple[int, ...]


def _brow_polygon(edges) -> tuple[int, ...]:
    """The eyebrow connections are two open chains (upper and lower edge); join them into a polygon."""
    adj = defaultdict(list)
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    ends = [v for v, n in adj.items() if len(n) == 1]
    chains, used = [], set()
    for e in ends:
        if e in used:
            continue
        chain, prev, cur = [e], None, e
        while True:
            nxt = [v for v in adj[cur] if v != prev]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
            chain.append(cur)
        used |= set(chain)
        chains.append(chain)
    a, b = chains
    # Join the chains end to end: the second one reversed when both start at the same end of the brow,
    # which the reference layout tells (shorter closing edges).
    ref, _ = mesh_reference()

    def closing(x, y):
        return np.linalg.norm(ref[x[-1]] - ref[y[0]]) + np.linalg.norm(ref[y[-1]] - ref[x[0]])

    return tuple(a + b[::-1]) if closing(a, b[::-1]) <= closing(a, b) else tuple(a + b)


@lru_cache(maxsize=1)
def mesh_topology() -> MeshTopology:
    c = _connections()
    edges = {tuple(sorted(e)) for e in c.FACEMESH_TESSELATION}
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    tris = sorted({tuple(sorted((a, b, x))) for a, b in edges for x in adj[a] & adj[b]})
    lips = _split_loops([tuple(e) for e in c.FACEMESH_LIPS])
    lips.sort(key=len)
    # outer loop contains the mouth corners 61/291; inner contains 78/308
    outer = next(lp for lp in lips if 61 in lp)
    inner = next(lp for lp in lips if 78 in lp)
    return MeshTopology(
        triangles=np.asarray(tris, dtype=np.int32),
        face_oval=tuple(_chain_loop(list(c.FACEMESH_FACE_OVAL))),
        right_eye=tuple(_chain_loop(list(c.FACEMESH_RIGHT_EYE))),
        left_eye=tuple(_chain_loop(list(c.FACEMESH_LEFT_EYE))),
        right_eyebrow=_brow_polygon(list(c.FACEMESH_RIGHT_EYEBROW)),
        left_eyebrow=_brow_polygon(list(c.FACEMESH_LEFT_EYEBROW)),
        lips_outer=tuple(outer),
        lips_inner=tuple(inner),
    )


@lru_cache(maxsize=1)
def _eye_loops() -> tuple[np.ndarray, np.ndarray]:
    topo = mesh_topology()
    return np.asarray(topo.right_eye, dtype=np.intp), np.asarray(topo.left_eye, dtype=np.intp)


def eye_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Origin (between the eye centres), unit axes (x: towards the subject's left, y: down) and scale (IOD)."""
    right, left = _eye_loops()  # index arrays made once: this runs several times per face
    rc = points[right].mean(axis=0)  # eye centres
    lc = points[left].mean(axis=0)
    x = lc - rc
    iod = math.sqrt(x[0] * x[0] + x[1] * x[1])
    x = x / max(iod, 1e-9)
    axes = np.array([[x[0], x[1]], [-x[1], x[0]]])
    return (rc + lc) / 2, axes, iod


def eye_normalise(points: np.ndarray) -> np.ndarray:
    """Landmarks (N, 2) in pixels -> eye-normalised (u, v)."""
    origin, axes, iod = eye_frame(points)
    return (points[:, :2] - origin) @ axes.T / max(iod, 1e-9)


@lru_cache(maxsize=1)
def mesh_reference() -> tuple[np.ndarray, np.ndarray]:
    """The frontal symmetric reference layout (468, 2) and the mirror permutation."""
    data = json.loads(resources.files("fifa.concept_tree").joinpath("data/mesh_reference.json").read_text())
    return np.asarray(data["points"], dtype=np.float64), np.asarray(data["mirror"], dtype=np.int64)
