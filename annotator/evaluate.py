"""Accuracy of the annotator on data with known truth (e.g. ``fifa-data forge`` output).

Pure: the caller passes predictions, truth and (optionally) the anchor masks of the face;
nothing here reads files or imports ``fifa.pipelines``.

* Region ids (predicted and true) are rolled up to the tree's anchors; a node above the
  anchors (``face``, ``eyes`` ...) stands for every anchor below it.
* recall = true anchors predicted / true anchors (micro-averaged over samples);
* precision = predicted anchors that are true, or that touch the true edit mask dilated by
  ``border_px`` (a neighbouring anchor touched by the edit's border counts as correct) /
  predicted anchors;
* IoU of the artifact mask with the true edit mask, per sample; the median is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np


def to_anchors(ids: Iterable[str], tree=None) -> set[str]:
    if tree is None:
        from fifa.concept_tree.tree import load_tree

        tree = load_tree()
    from fifa.concept_tree.tree import ANCHORS

    out: set[str] = set()
    for i in ids:
        if i not in tree:
            continue
        a = tree.anchor_of(i)
        if a is not None:
            out.add(a)
        else:
            out.update(d.id for d in tree.descendants(i) if d.id in ANCHORS)
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    if u == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / u)


@dataclass
class SampleEval:
    sample_id: str
    truth_anchors: set[str]
    pred_anchors: set[str]
    correct_pred: set[str]
    iou: float
    method: str | None = None

    @property
    def hit(self) -> int:
        return len(self.truth_anchors & self.pred_anchors)


def evaluate_sample(
    sample_id: str,
    pred_ids: Iterable[str],
    truth_ids: Iterable[str],
    pred_mask: np.ndarray,
    truth_mask: np.ndarray,
    anchor_masks: Mapping[str, np.ndarray] | None = None,
    border_px: int | None = None,
    method: str | None = None,
    tree=None,
) -> SampleEval:
    import cv2

    ta = to_anchors(truth_ids, tree)
    pa_ = to_anchors(pred_ids, tree)
    correct = set(pa_ & ta)
    if anchor_masks is not None:
        if border_px is None:
            border_px = max(2, int(round(0.03 * min(truth_mask.shape))))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * border_px + 1, 2 * border_px + 1))
        grown = cv2.dilate(truth_mask.astype(np.uint8), k) > 0
        for a in pa_ - ta:
            m = anchor_masks.get(a)
            if m is not None and np.logical_and(m, grown).any():
                correct.add(a)
    return SampleEval(sample_id, ta, pa_, correct, mask_iou(pred_mask, truth_mask), method)


@dataclass
class EvalSummary:
    n: int
    recall: float
    precision: float
    iou_median: float
    iou_mean: float
    per_method: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(n=self.n, recall=self.recall, precision=self.precision, iou_median=self.iou_median,
                    iou_mean=self.iou_mean, per_method=self.per_method)


def summarize(samples: list[SampleEval]) -> EvalSummary:
    def agg(ss: list[SampleEval]) -> dict:
        t = sum(len(s.truth_anchors) for s in ss)
        p = sum(len(s.pred_anchors) for s in ss)
        hit = sum(s.hit for s in ss)
        corr = sum(len(s.correct_pred) for s in ss)
        ious = [s.iou for s in ss]
        return dict(
            n=len(ss),
            recall=hit / t if t else 1.0,
            precision=corr / p if p else 1.0,
            iou_median=float(np.median(ious)) if ious else 0.0,
            iou_mean=float(np.mean(ious)) if ious else 0.0,
        )

    a = agg(samples)
    methods = sorted({s.method for s in samples if s.method})
    per = {m: agg([s for s in samples if s.method == m]) for m in methods}
    return EvalSummary(a["n"], a["recall"], a["precision"], a["iou_median"], a["iou_mean"], per)


def evaluate_run(manifest_path, out_dir, segmenter=None) -> tuple[EvalSummary, list[SampleEval]]:
    """Evaluate an annotation folder against a manifest with ``truth`` and ``truth_mask`` columns.

    Anchor masks (for the neighbouring-anchor rule) come from segmenting each source image.
    """
    from pathlib import Path

    import pyarrow.parquet as pq

    from fifa.concept_tree import rle as rle_utils
    from fifa.concept_tree.imageio import load_rgb
    from fifa.concept_tree.tree import ANCHORS, load_tree

    from .store import read_annotations

    tree = load_tree()
    man = pq.read_table(manifest_path).to_pylist()
    base = Path(manifest_path).resolve().parent
    ann = {r["sample_id"]: r for r in read_annotations(out_dir).to_pylist()}
    own = segmenter is None
    if own:
        from fifa.concept_tree.segment import Segmenter

        segmenter = Segmenter()
    cache: dict = {}
    samples = []
    try:
        for m in man:
            if m["label"] != "fake" or not m.get("truth"):
                continue
            a = ann.get(m["sample_id"])
            truth_mask = rle_utils.decode(m["truth_mask"])
            if a is None or a["status"] != "ok":
                pred_ids, pred_mask = [], np.zeros_like(truth_mask)
            else:
                pred_ids, pred_mask = a["artifact_regions"], rle_utils.decode(a["artifact_mask"])
            src = m["source_path"]
            if src not in cache:
                p = Path(src) if Path(src).is_absolute() else base / src
                reg = segmenter.segment(load_rgb(p))
                cache[src] = {x: reg.mask(x) for x in ANCHORS} if reg.ok else None
            samples.append(evaluate_sample(m["sample_id"], pred_ids, m["truth"], pred_mask, truth_mask,
                                           cache[src], method=m.get("method"), tree=tree))
    finally:
        if own:
            segmenter.close()
    return summarize(samples), samples
