"""`FaceRegions`: the result of segmenting one face into Facial Image Concept Tree regions."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from fifa.core import rle as rle_utils


@lru_cache(maxsize=8)
def node_membership(leaf_ids: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """(every tree node id, node x leaf 0/1 matrix) for label maps whose label ``k`` is ``leaf_ids[k]``:
    a node's area (or hit count) is its row times the leaves' counts."""
    from ..tree import load_tree

    tree = load_tree()
    col = {k: i for i, k in enumerate(leaf_ids)}
    nodes = [n.id for n in tree.nodes]
    m = np.zeros((len(nodes), len(leaf_ids)), dtype=np.int64)
    for r, node in enumerate(tree.nodes):
        for leaf in [node] if node.is_leaf else tree.leaves(under=node.id):
            if leaf.id in col:
                m[r, col[leaf.id]] = 1
    return nodes, m


@lru_cache(maxsize=2)
def _deepest_first(tree) -> list:
    """The parent nodes of ``tree``, deepest first."""
    return [n for n in sorted(tree.nodes, key=lambda n: -n.depth) if not n.is_leaf]


@dataclass
class FaceRegions:
    """Concept masks of one face, stored compactly as a label map over the atomic concepts.

    ``label_map[y, x] == k`` means the pixel belongs to the atomic concept ``leaf_ids[k]``
    (``-1``: no concept, e.g. outside the image's person and background split).
    A parent concept's mask is the union of its leaves'.
    """

    image_size: tuple[int, int]  # (height, width)
    status: str = "ok"  # "ok" | "no_face"
    leaf_ids: tuple[str, ...] = ()
    label_map: np.ndarray | None = None
    landmarks: np.ndarray | None = None  # (N, 2) pixel (x, y)
    face_box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1
    face_index: int = 0
    backend: str = "mediapipe"
    error: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @cached_property
    def _leaf_index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.leaf_ids)}

    def _leaves_under(self, node_id: str) -> list[str]:
        from ..tree import load_tree

        tree = load_tree()
        node = tree[node_id]
        if node.is_leaf:
            return [node_id]
        return [n.id for n in tree.leaves(under=node_id)]

    def mask(self, node_id: str) -> np.ndarray:
        """Boolean HxW mask of an atomic or parent concept (parents: union of their leaves)."""
        h, w = self.image_size
        if self.label_map is None:
            return np.zeros((h, w), dtype=bool)
        idx = [self._leaf_index[i] for i in self._leaves_under(node_id) if i in self._leaf_index]
        if not idx:
            return np.zeros((h, w), dtype=bool)
        if len(idx) == 1:
            return self.label_map == idx[0]
        lut = np.zeros(len(self.leaf_ids) + 1, dtype=bool)
        lut[np.asarray(idx)] = True
        return lut[self.label_map]  # -1 indexes the trailing False

    @cached_property
    def _runs(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Runs of the label map in COCO order: read once for every RLE and area of the face."""
        return rle_utils.label_runs(self.label_map)

    @cached_property
    def _leaf_coco(self) -> dict[str, dict]:
        """pycocotools RLE objects (bytes counts) of every non-empty atomic concept."""
        h, w = self.label_map.shape
        enc = rle_utils.encode_runs(self._runs, h, w)
        return {self.leaf_ids[k]: r for k, r in enc.items() if k >= 0}

    @cached_property
    def leaf_rles(self) -> dict[str, dict]:
        """RLE of every non-empty atomic concept, from one pass over the label map."""
        if self.label_map is None:
            return {}
        h, w = self.label_map.shape
        return {k: {"size": [h, w], "counts": r["counts"].decode("ascii")} for k, r in self._leaf_coco.items()}

    def rles(self, include_parents: bool = True) -> dict[str, dict]:
        """RLE of every non-empty concept: atomic ones, and (by RLE merges) their parents."""
        from pycocotools import mask as mask_utils

        from ..tree import load_tree

        out = dict(self.leaf_rles)
        if not include_parents or not out:
            return out
        tree = load_tree()
        h, w = self.image_size
        coco = dict(self._leaf_coco)  # bytes counts, as pycocotools merges them
        # Children before parents: walk the tree bottom-up and merge children RLEs.
        for node in _deepest_first(tree):
            parts = [coco[c] for c in node.children if c in coco]
            if parts:
                coco[node.id] = parts[0] if len(parts) == 1 else mask_utils.merge(parts, intersect=False)
                out[node.id] = {"size": [h, w], "counts": coco[node.id]["counts"].decode("ascii")}
        return out

    def areas(self, include_parents: bool = False) -> dict[str, int]:
        """Pixel count of every non-empty atomic concept (and, on request, parent: sums, as leaves are disjoint)."""
        if self.label_map is None:
            return {}
        start, label, n = self._runs  # a few thousand runs instead of every pixel
        counts = np.bincount(label.astype(np.intp) + 1, weights=np.diff(start, append=n),
                             minlength=len(self.leaf_ids) + 1)[1:len(self.leaf_ids) + 1].astype(np.int64)  # fmt: skip
        if not include_parents:
            return {k: c for k, c in zip(self.leaf_ids, counts.tolist()) if c}
        nodes, member = node_membership(tuple(self.leaf_ids))
        totals = member @ counts
        return {node: t for node, t in zip(nodes, totals.tolist()) if t}

    @property
    def face_mask(self) -> np.ndarray:
        """The face region (the ``face`` subtree: skin, eyes, brows, nose, mouth ...)."""
        return self.mask("face")
