"""Grounding metrics of ``age`` answers: ``grounded_recall``, ``grounded_precision``, ``consistency``.

DESIGN.md ("Metric definitions", grounding). A submitted answer's grounded phrases are its marks in
order (``<p>phrase</p> [SEG]`` or ``[phrase](id)``, read by :func:`fifa.core.marks.parse_submitted`), the k-th
paired with the k-th submitted mask.

* A phrase resolves to a FICT node by the id of a ``[phrase](id)`` mark when the tree has that id
  (or it is ``artifact``, the artifact mask as a whole), else by the tree's ids, names and synonyms
  (case-insensitive, spaces / underscores / hyphens alike, a leading article dropped).
* Every node has a matching key: its anchor (``roll_up(node, "anchor")``); a node above the anchors
  (``eyes``, ``face``) is its own key, and ``artifact`` is ``artifact``.
* A predicted pair matches a reference pair (``mask_node_ids[k]``, ``masks[k]``) when their keys are
  equal and the masks' IoU is >= 0.5, one-to-one, greedily by IoU descending (ties: earlier predicted,
  then earlier reference pair first). A mark without a mask (fewer masks than marks) is a predicted
  pair with an empty mask; masks beyond the marks are not pairs (``giou`` / ``miou`` still see them).
* ``grounded_recall`` = matched reference pairs / reference pairs, ``grounded_precision`` = matched
  predicted pairs / predicted pairs, pooled over the task's questions (a missing answer has no
  predicted pair, so its reference pairs go unmatched).
* ``consistency`` = mean over resolved predicted pairs of |mask ∩ anchor mask| / |mask|, the anchor
  mask being the bench row's ``anchor_masks`` entry of the node's anchor; for a node above the anchors
  the union of the anchors under it found in the image. 0 when no such anchor is in the image or the
  mask is empty. ``artifact`` pairs claim no region and are left out of it.

Masks stay COCO RLE (pycocotools); inputs are validated RLE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pycocotools import mask as mask_utils

from fifa.concept_tree.tree import ANCHORS, ConceptTree, load_tree
from fifa.core.marks import parse_submitted
from fifa.core.tasks import GROUNDING_METRICS

from .metrics_mask import _coco

ARTIFACT = "artifact"
MATCH_IOU = 0.5

_ARTICLE_RE = re.compile(r"^(?:the|a|an)\s+")


def _key(text: str) -> str:
    text = text.lower().replace("'", "").replace("\u2019", "")
    text = " ".join(re.split(r"[\s_\-]+", text.strip()))
    return _ARTICLE_RE.sub("", text)


class Resolver:
    """Phrase -> FICT node, node -> matching key and anchors (cached per distinct input)."""

    def __init__(self, tree: ConceptTree | None = None):
        self.tree = tree if tree is not None else load_tree()
        index: dict[str, str] = {}
        for kind in ("id", "name", "synonyms"):  # ids first, then names, then synonyms
            for n in self.tree.nodes:
                vals = [n.id] if kind == "id" else [n.name] if kind == "name" else list(n.synonyms)
                for v in vals:
                    index.setdefault(_key(v), n.id)
        self._index = index
        self.resolve = lru_cache(maxsize=100_000)(self._resolve)
        self.key = lru_cache(maxsize=None)(self._match_key)
        self.anchors = lru_cache(maxsize=None)(self._anchors)

    def _resolve(self, phrase: str, node_id: str | None) -> str | None:
        if node_id is not None and (node_id == ARTIFACT or node_id in self.tree):
            return node_id
        return self._index.get(_key(phrase))

    def _match_key(self, node_id: str) -> str:
        if node_id == ARTIFACT or node_id not in self.tree:
            return node_id
        return self.tree.roll_up(node_id, "anchor")

    def _anchors(self, node_id: str) -> tuple[str, ...]:
        """Anchors whose masks make the node's anchor mask (empty for ``artifact``)."""
        if node_id == ARTIFACT or node_id not in self.tree:
            return ()
        a = self.tree.anchor_of(node_id)
        if a is not None:
            return (a,)
        below = {d.id for d in self.tree.descendants(node_id)}
        return tuple(x for x in ANCHORS if x in below)


@dataclass
class GroundingScores:
    """Per question counts; the metrics are pooled ratios over any subset of questions."""

    matched: np.ndarray  # matched pairs (same number on both sides)
    ref_pairs: np.ndarray
    pred_pairs: np.ndarray
    cons_sum: np.ndarray  # sum of consistency over resolved predicted pairs
    cons_count: np.ndarray  # resolved predicted pairs (artifact left out)
    has_refs: bool = True  # the bench has mask_node_ids
    has_anchors: bool = True  # the bench has anchor_masks

    def summary(self) -> dict:
        out = {}
        if self.has_refs:
            out["grounded_recall"] = _ratio(self.matched, self.ref_pairs)
            out["grounded_precision"] = _ratio(self.matched, self.pred_pairs)
        if self.has_anchors:
            out["consistency"] = _ratio(self.cons_sum, self.cons_count)
        return out

    def parts(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(numerators, denominators) per question of ``metric`` (for the bootstrap)."""
        return {
            "grounded_recall": (self.matched, self.ref_pairs),
            "grounded_precision": (self.matched, self.pred_pairs),
            "consistency": (self.cons_sum, self.cons_count),
        }[metric]

    def subset(self, idx: Sequence[int]) -> GroundingScores:
        i = np.asarray(idx, dtype=int)
        return GroundingScores(
            self.matched[i],
            self.ref_pairs[i],
            self.pred_pairs[i],
            self.cons_sum[i],
            self.cons_count[i],
            self.has_refs,
            self.has_anchors,
        )


def _ratio(num: np.ndarray, den: np.ndarray) -> float | None:
    d = float(np.sum(den))
    return float(np.sum(num)) / d if d > 0 else None


def match_pairs(
    pred_keys: Sequence[str | None],
    pred_masks: Sequence[dict | None],
    ref_keys: Sequence[str],
    ref_masks: Sequence[dict],
) -> int:
    """Matched pairs: same key, IoU >= 0.5, one-to-one, greedy by IoU descending."""
    cand = [
        (p, r)
        for p, kp in enumerate(pred_keys)
        if kp is not None and pred_masks[p] is not None
        for r, kr in enumerate(ref_keys)
        if kr == kp
    ]
    if not cand:
        return 0
    ps = sorted({p for p, _ in cand})
    rs = sorted({r for _, r in cand})
    m = np.asarray(
        mask_utils.iou([pred_masks[p] for p in ps], [ref_masks[r] for r in rs], [0] * len(rs)), dtype=float
    ).reshape(len(ps), len(rs))
    pi, ri = {p: k for k, p in enumerate(ps)}, {r: k for k, r in enumerate(rs)}
    scored = sorted(((m[pi[p], ri[r]], p, r) for p, r in cand), key=lambda x: (-x[0], x[1], x[2]))
    used_p, used_r, n = set(), set(), 0
    for v, p, r in scored:
        if v < MATCH_IOU:
            break
        if p in used_p or r in used_r:
            continue
        used_p.add(p)
        used_r.add(r)
        n += 1
    return n


def _consistency(mask: dict | None, anchors: tuple[str, ...], anchor_masks: Mapping[str, dict]) -> float:
    if mask is None:
        return 0.0
    area = int(mask_utils.area(mask))
    have = [_coco(anchor_masks[a]) for a in anchors if a in anchor_masks]
    if area == 0 or not have:
        return 0.0
    region = have[0] if len(have) == 1 else mask_utils.merge(have, intersect=False)
    inter = int(mask_utils.area(mask_utils.merge([mask, region], intersect=True)))
    return inter / area


def grounding_scores(
    answers: Sequence[str | None],
    pred_masks: Sequence[list[dict] | None],
    ref_node_ids: Sequence[list[str]] | None,
    ref_masks: Sequence[list[dict]],
    anchor_masks: Sequence[Mapping[str, dict]] | None,
    resolver: Resolver | None = None,
) -> GroundingScores:
    """Per-question grounding counts. ``answers[k]`` None = no answer; ``ref_node_ids`` None / ``anchor_masks``
    None = the bench lacks that column (recall and precision / consistency are not computed)."""
    res = resolver or Resolver()
    n = len(answers)
    out = [np.zeros(n) for _ in range(5)]
    for k in range(n):
        phrases = parse_submitted(answers[k]) if answers[k] is not None else []
        masks = [_coco(m) for m in (pred_masks[k] or [])]
        nodes = [res.resolve(p, i) for p, i in phrases]
        pm = [masks[j] if j < len(masks) else None for j in range(len(nodes))]
        out[2][k] = len(nodes)
        if ref_node_ids is not None:
            refs = list(ref_node_ids[k] or [])
            rm = [_coco(m) for m in ref_masks[k]]
            out[1][k] = len(refs)
            keys = [res.key(x) if x is not None else None for x in nodes]
            out[0][k] = match_pairs(keys, pm, [res.key(r) for r in refs], rm)
        if anchor_masks is not None:
            am = anchor_masks[k] or {}
            for x, m in zip(nodes, pm):
                if x is None or x == ARTIFACT:
                    continue
                out[4][k] += 1
                out[3][k] += _consistency(m, res.anchors(x), am)
    return GroundingScores(*out, has_refs=ref_node_ids is not None, has_anchors=anchor_masks is not None)


__all__ = ["GROUNDING_METRICS", "GroundingScores", "Resolver", "grounding_scores", "match_pairs"]
