"""Accuracy of the annotator on data with known truth (e.g. ``fifa-data forge`` output).

The metric functions are pure: the caller passes predictions, truth and (optionally) the anchor
masks of the face. :func:`evaluate_run` is the I/O edge (a manifest and an annotation folder).

* Region ids (predicted and true) are rolled up to the tree's anchors; a node above the
  anchors (``face``, ``eyes`` ...) stands for every anchor below it.
* recall = true anchors predicted / true anchors (micro-averaged over samples);
* precision = predicted anchors that are true, or that touch the true edit mask dilated by
  ``border_px`` (a neighbouring anchor touched by the edit's border counts as correct) /
  predicted anchors;
* IoU of the artifact mask with the true edit mask, per sample; the median is reported;
* re-encoded-only pairs (``pair_kind == "reencoded"``, not forgeries): shown to the annotator as
  suspected fakes (:func:`suspect_manifest`), each must get an empty mask and no region.

Every figure is also given per edit kind (``method``) and per encoding of the pair (``png``:
lossless; ``jpeg``: the fake saved as JPEG; ``jpeg_pair``: fake and source both JPEG).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

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
    encoding: str | None = None  # png | jpeg | jpeg_pair
    empty: bool = False  # the predicted mask is empty

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
    encoding: str | None = None,
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
    return SampleEval(
        sample_id, ta, pa_, correct, mask_iou(pred_mask, truth_mask), method, encoding, not pred_mask.any()
    )


@dataclass
class NegativeEval:
    """A re-encoded-only pair shown to the annotator: it must find nothing."""

    sample_id: str
    mask_area: int
    regions: list[str]
    kind: str | None = None  # jpeg | resize | ...


@dataclass
class EvalSummary:
    n: int
    recall: float
    precision: float
    iou_median: float
    iou_mean: float
    empty: int = 0  # fakes with an empty artifact mask
    per_method: dict = field(default_factory=dict)
    per_encoding: dict = field(default_factory=dict)
    negatives: dict = field(default_factory=dict)  # n, with_mask, with_regions, ids_with_regions
    negative_samples: list = field(default_factory=list, repr=False)  # the NegativeEval rows (for pooling)

    def to_dict(self) -> dict:
        return dict(
            n=self.n,
            recall=self.recall,
            precision=self.precision,
            iou_median=self.iou_median,
            iou_mean=self.iou_mean,
            empty=self.empty,
            per_method=self.per_method,
            per_encoding=self.per_encoding,
            negatives=self.negatives,
        )


def _aggregate(ss: list[SampleEval]) -> dict:
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
        empty=sum(s.empty for s in ss),
    )


def summarize(samples: list[SampleEval], negatives: list[NegativeEval] = ()) -> EvalSummary:
    a = _aggregate(samples)
    per = {
        m: _aggregate([s for s in samples if s.method == m]) for m in sorted({s.method for s in samples if s.method})
    }
    enc = {
        e: _aggregate([s for s in samples if s.encoding == e])
        for e in sorted({s.encoding for s in samples if s.encoding})
    }
    neg = {}
    if negatives:
        bad = [x for x in negatives if x.regions]
        neg = dict(
            n=len(negatives),
            with_mask=sum(x.mask_area > 0 for x in negatives),
            with_regions=len(bad),
            ids_with_regions=[x.sample_id for x in bad],
        )
    return EvalSummary(
        a["n"], a["recall"], a["precision"], a["iou_median"], a["iou_mean"], a["empty"], per, enc, neg, list(negatives)
    )


def encoding_of(edit: str | None) -> str:
    """``png``, ``jpeg`` (fake re-encoded) or ``jpeg_pair`` (both), from a forge ``edit`` JSON."""
    e = json.loads(edit) if edit else {}
    if "source_jpeg_q" in e:
        return "jpeg_pair"
    return "jpeg" if "fake_jpeg_q" in e else "png"


def suspect_manifest(manifest_path) -> Path:
    """``manifest.suspects.parquet`` next to a forged manifest: a copy in which the re-encoded-only
    pairs are shown as suspected fakes (``label=fake``, no category), so that the annotator compares
    them with their source. For evaluation only: the pairs are not forgeries (the forged manifest
    says ``real``). Paths stay relative to the same folder."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(manifest_path)
    if "pair_kind" not in t.column_names:
        raise ValueError(f"{manifest_path} has no pair_kind column (not a forge manifest)")
    neg = pc.equal(t.column("pair_kind"), "reencoded")
    null = pa.nulls(t.num_rows, pa.string())
    t = t.set_column(t.column_names.index("label"), "label", pc.if_else(neg, "fake", t.column("label")))
    t = t.set_column(t.column_names.index("category"), "category", pc.if_else(neg, null, t.column("category")))
    out = Path(manifest_path).parent / "manifest.suspects.parquet"
    pq.write_table(t, out)
    return out


def _negative_eval(m: dict, a: dict) -> NegativeEval:
    """A re-encoded-only pair (manifest row ``m``) and what the annotator found in it (its row ``a``)."""
    from fifa.core import rle as rle_utils

    area = int(rle_utils.decode(a["artifact_mask"]).sum()) if a["artifact_mask"] else 0
    kind = json.loads(m["edit"]).get("reencode") if m.get("edit") else None
    return NegativeEval(m["sample_id"], area, list(a["artifact_regions"] or []), kind)


def _anchor_masks(segmenter, path: Path) -> dict | None:
    """The anchor masks of the source image at ``path`` (None when no face is found)."""
    from fifa.concept_tree.imageio import load_rgb
    from fifa.concept_tree.tree import ANCHORS

    reg = segmenter.segment(load_rgb(path))
    return {x: reg.mask(x) for x in ANCHORS} if reg.ok else None


def evaluate_run(manifest_path, out_dir, segmenter=None) -> tuple[EvalSummary, list[SampleEval]]:
    """Evaluate an annotation folder against a manifest with ``truth`` and ``truth_mask`` columns.

    Anchor masks (for the neighbouring-anchor rule) come from segmenting each source image.
    Re-encoded-only pairs count as negatives when the annotation folder holds them (see
    :func:`suspect_manifest`).
    """
    import pyarrow.parquet as pq

    from fifa.concept_tree.tree import load_tree
    from fifa.core import rle as rle_utils

    from .store import read_annotations

    tree = load_tree()
    man = pq.read_table(manifest_path).to_pylist()
    base = Path(manifest_path).resolve().parent
    ann = {r["sample_id"]: r for r in read_annotations(out_dir).to_pylist()}
    own = segmenter is None
    if own:
        from fifa.concept_tree.segmentation.segment import Segmenter

        segmenter = Segmenter()
    cache: dict = {}
    samples, negatives = [], []
    try:
        for m in man:
            a = ann.get(m["sample_id"])
            if m.get("pair_kind") == "reencoded" and m.get("source_path"):
                if a is not None and a["status"] == "ok":
                    negatives.append(_negative_eval(m, a))
                continue
            if m["label"] != "fake" or not m.get("truth"):
                continue
            truth_mask = rle_utils.decode(m["truth_mask"])
            if a is None or a["status"] != "ok":
                pred_ids, pred_mask = [], np.zeros_like(truth_mask)
            else:
                pred_ids, pred_mask = a["artifact_regions"], rle_utils.decode(a["artifact_mask"])
            src = m["source_path"]
            if src not in cache:
                cache[src] = _anchor_masks(segmenter, Path(src) if Path(src).is_absolute() else base / src)
            samples.append(
                evaluate_sample(
                    m["sample_id"],
                    pred_ids,
                    m["truth"],
                    pred_mask,
                    truth_mask,
                    cache[src],
                    method=m.get("method"),
                    tree=tree,
                    encoding=encoding_of(m.get("edit")),
                )
            )
    finally:
        if own:
            segmenter.close()
    return summarize(samples, negatives), samples
