"""Which Facial Image Concept Tree regions an artifact mask falls in (pure, no I/O).

For every tree node present in the face: ``coverage`` = share of the node hit by the
artifact, ``share`` = share of the artifact inside the node. Atomic concepts are
chosen when the artifact covers enough of them, or when enough of the artifact lies
in them (and it still covers a little of them); then, bottom-up, a parent replaces its
children when most of its (present) children are chosen (the published rule), and a grouping
parent above the anchors (``eyes``, ``cheeks``, ``face``) only when at least two are: a turned
face that shows one eye keeps ``left_eye``, not ``eyes``.
``artifact_regions`` lists the chosen ids, strongest (largest share) first.

Defaults were tuned on ``fifa-data forge`` output (seed 7); see docs/annotator.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from fifa.concept_tree.segmentation.regions import FaceRegions


@dataclass(frozen=True)
class RegionSelectConfig:
    min_coverage: float = 0.30  #: a leaf at least this much covered is chosen
    min_share: float = 0.06  #: ... or holding this share of the artifact,
    min_share_coverage: float = 0.08  #: ... provided it is at least this much covered
    parent_fraction: float = 0.5  #: a parent replaces its children when MORE than this share of them is chosen
    max_regions: int = 12  #: at most this many ids in artifact_regions

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class NodeHit:
    node_id: str
    inter: int  # artifact pixels inside the node
    area: int  # node pixels
    coverage: float  # inter / area
    share: float  # inter / artifact area


@dataclass
class RegionResult:
    hits: dict[str, NodeHit]  # every node with a non-empty intersection
    chosen: list[str]  # artifact_regions, strongest first
    artifact_area: int


@lru_cache(maxsize=4)
def _tree_index(tree_version_key: int = 0):
    from fifa.concept_tree.tree import load_tree

    tree = load_tree()
    leaves_under: dict[str, list[str]] = {}
    for node in tree.nodes:
        if node.is_leaf:
            leaves_under[node.id] = [node.id]
        else:
            leaves_under[node.id] = [n.id for n in tree.leaves(under=node.id)]
    return tree, leaves_under


@lru_cache(maxsize=8)
def _membership(leaf_ids: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """(node ids, node x leaf 0/1 matrix) for a label map whose labels are ``leaf_ids``."""
    _, leaves_under = _tree_index()
    col = {k: i for i, k in enumerate(leaf_ids)}
    nodes = list(leaves_under)
    m = np.zeros((len(nodes), len(leaf_ids)), dtype=np.int64)
    for r, nid in enumerate(nodes):
        for x in leaves_under[nid]:
            if x in col:
                m[r, col[x]] = 1
    return nodes, m


def node_stats(regions: FaceRegions, mask: np.ndarray) -> tuple[dict[str, NodeHit], dict[str, int], int]:
    """Intersections of ``mask`` with every node: (hits with inter > 0, areas of all present nodes, artifact area)."""
    total = int(mask.sum())
    if regions.label_map is None:
        return {}, {}, total
    n_leaf = len(regions.leaf_ids)
    lm = regions.label_map
    area_arr = np.bincount(lm.ravel().astype(np.int64) + 1, minlength=n_leaf + 1)[1:]
    inter_arr = (
        np.bincount(lm[mask].astype(np.int64) + 1, minlength=n_leaf + 1)[1:] if total else np.zeros(n_leaf, np.int64)
    )
    nodes, member = _membership(tuple(regions.leaf_ids))
    node_area = member @ area_arr  # a parent's area and hits are sums over its leaves
    node_inter = member @ inter_arr
    areas = {nodes[r]: int(node_area[r]) for r in np.flatnonzero(node_area)}
    hits = {}
    for r in np.flatnonzero(node_inter):
        i, a = int(node_inter[r]), int(node_area[r])
        hits[nodes[r]] = NodeHit(nodes[r], i, a, i / a, i / total if total else 0.0)
    return hits, areas, total


@lru_cache(maxsize=1)
def _deepest_first() -> list:
    tree, _ = _tree_index()
    return sorted(tree.nodes, key=lambda n: -n.depth)


def select_regions(
    regions: FaceRegions, mask: np.ndarray, config: RegionSelectConfig = RegionSelectConfig()
) -> RegionResult:
    """Coverage/share of every node and the chosen regions (see module doc)."""
    tree, _ = _tree_index()
    hits, areas, total = node_stats(regions, mask)
    if not total or not hits:
        return RegionResult(hits=hits, chosen=[], artifact_area=total)
    chosen: set[str] = set()
    for nid, h in hits.items():
        if not tree[nid].is_leaf:
            continue
        if h.coverage >= config.min_coverage or (
            h.share >= config.min_share and h.coverage >= config.min_share_coverage
        ):
            chosen.add(nid)
    # Bottom-up roll-up: a parent replaces its children when most of its present children are chosen.
    for node in _deepest_first():
        if node.is_leaf:
            continue
        present = [c for c in node.children if c in areas]
        if not present:
            continue
        hit = [c for c in present if c in chosen]
        if not hit:
            continue
        frac = len(hit) / len(present)
        # A grouping parent above the anchors (eyes, cheeks, face ...) needs two chosen children: with
        # one (a turned face shows only the left eye) it would lose the side. At or below an anchor,
        # a single present child may roll up (left_iris alone -> left_eye).
        grouping = tree.anchor_of(node.id) is None
        if frac > config.parent_fraction and (len(hit) >= 2 or (len(present) == 1 and not grouping)):
            chosen.difference_update(hit)
            chosen.add(node.id)
    ordered = sorted(chosen, key=lambda n: (-hits[n].share if n in hits else 0.0, n))
    return RegionResult(hits=hits, chosen=ordered[: config.max_regions], artifact_area=total)
