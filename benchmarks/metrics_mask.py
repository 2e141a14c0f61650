"""Mask metrics on RLE (``loc``, ``age``): ``giou``, ``ciou``, ``miou``.

All work is done on COCO RLE with pycocotools (``merge``, ``area``, ``iou``);
masks are never decoded to pixels.  Inputs are already validated RLE
(:func:`fifa.core.rle.check_rle`).

Per sample, the union of the predicted masks is compared with the union of the
reference masks:

* ``giou`` = mean over samples of IoU(union pred, union ref);
  empty reference and empty prediction give IoU 1.
* ``ciou`` = sum of intersections / sum of unions over samples (1 if every
  union is empty).
* ``miou`` (``age``) = mean over all reference masks, pooled across samples,
  of the IoU with the predicted mask assigned to it by the Hungarian
  assignment maximising total IoU (``scipy.optimize.linear_sum_assignment``);
  reference masks left unmatched score 0; an empty reference mask and an empty
  predicted mask have IoU 1.  A sample with no reference mask (a real image)
  counts as one term: 1 when it has no predicted mask or only empty ones,
  else 0.
* A question missing from the submission scores IoU 0 in ``giou`` and ``miou``
  (also for real images, so a missing answer is never right) and adds its
  reference area to the ``ciou`` union with no intersection.  A present answer
  without masks means "no mask predicted".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment


def _coco(r: dict) -> dict:
    c = r["counts"]
    return {"size": [int(r["size"][0]), int(r["size"][1])], "counts": c.encode("ascii") if isinstance(c, str) else c}


def _union(rles: list[dict]) -> dict | None:
    if not rles:
        return None
    if len(rles) == 1:
        return rles[0]
    return mask_utils.merge(rles, intersect=False)


@dataclass
class MaskScores:
    iou: np.ndarray  # per sample IoU of the unions
    inter: np.ndarray  # per sample intersection area
    union: np.ndarray  # per sample union area
    miou_sum: np.ndarray  # per sample sum of matched IoUs (per reference mask)
    miou_count: np.ndarray  # per sample number of miou terms

    def summary(self, with_miou: bool) -> dict:
        n = len(self.iou)
        out = {"giou": float(self.iou.mean()) if n else None}
        tu = float(self.union.sum())
        out["ciou"] = (float(self.inter.sum()) / tu if tu > 0 else 1.0) if n else None
        if with_miou:
            c = float(self.miou_count.sum())
            out["miou"] = float(self.miou_sum.sum()) / c if c else None
        return out

    def subset(self, idx: Sequence[int]) -> MaskScores:
        idx = np.asarray(idx, dtype=int)
        return MaskScores(self.iou[idx], self.inter[idx], self.union[idx], self.miou_sum[idx], self.miou_count[idx])


def mask_scores(
    refs: Sequence[list[dict]], preds: Sequence[list[dict] | None], missing: Sequence[bool], with_miou: bool = True
) -> MaskScores:
    n = len(refs)
    iou = np.zeros(n)
    inter = np.zeros(n)
    union = np.zeros(n)
    msum = np.zeros(n)
    mcnt = np.zeros(n)
    for k in range(n):
        R = [_coco(r) for r in refs[k]]
        P = [] if missing[k] or preds[k] is None else [_coco(p) for p in preds[k]]
        uR, uP = _union(R), _union(P)
        aR = int(mask_utils.area(uR)) if uR is not None else 0
        aP = int(mask_utils.area(uP)) if uP is not None else 0
        if missing[k]:
            iou[k], inter[k], union[k] = 0.0, 0, aR
        elif aR == 0 and aP == 0:
            iou[k], inter[k], union[k] = 1.0, 0, 0
        elif aR == 0 or aP == 0:
            iou[k], inter[k], union[k] = 0.0, 0, aR + aP
        else:
            i = int(mask_utils.area(mask_utils.merge([uR, uP], intersect=True)))
            u = aR + aP - i
            iou[k], inter[k], union[k] = i / u, i, u
        if not with_miou:
            continue
        if not R:
            mcnt[k] = 1
            empty_pred = not P or all(int(a) == 0 for a in mask_utils.area(P))
            msum[k] = 1.0 if (not missing[k] and empty_pred) else 0.0
            continue
        mcnt[k] = len(R)
        if not P:
            continue
        m = np.asarray(mask_utils.iou(P, R, [0] * len(R)), dtype=float).reshape(len(P), len(R))
        ap = np.asarray(mask_utils.area(P), dtype=np.int64)
        ar = np.asarray(mask_utils.area(R), dtype=np.int64)
        m[np.ix_(ap == 0, ar == 0)] = 1.0
        m = np.nan_to_num(m, nan=0.0)
        rows, cols = linear_sum_assignment(m, maximize=True)
        msum[k] = float(m[rows, cols].sum())
    return MaskScores(iou, inter, union, msum, mcnt)
