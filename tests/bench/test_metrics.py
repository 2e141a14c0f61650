"""Metrics against independent computations (scikit-learn, brute-force numpy IoU / permutation Hungarian)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score, roc_curve

from fifa.benchmarks.bootstrap import bootstrap_auc, bootstrap_mean, draw_indices, interval, task_rng
from fifa.benchmarks.metrics_cls import cls_metrics
from fifa.benchmarks.metrics_det import det_metrics, ranking_scores
from fifa.benchmarks.metrics_mask import mask_scores
from fifa.core.rle import encode


# ------------------------------------------------------------------------ det
@pytest.mark.parametrize("n", [4, 37, 500])
@pytest.mark.parametrize("seed", [0, 1])
def test_det_against_sklearn(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1
    parsed = [None if rng.random() < 0.15 else int(v) for v in rng.integers(0, 2, n)]
    scores = [None if rng.random() < 0.3 else float(np.round(v, 2)) for v in rng.random(n)]  # rounding: ties
    s = np.array(
        [sc if sc is not None else (float(p) if p is not None else 1.0 - t) for sc, p, t in zip(scores, parsed, y)]
    )
    sc = ranking_scores(y, parsed, scores)
    np.testing.assert_array_equal(sc, s)
    m, warn = det_metrics(y, parsed, sc)
    assert warn == []
    acc = np.mean([p is not None and p == t for p, t in zip(parsed, y)])
    assert m["acc"] == pytest.approx(acc, abs=1e-12)
    assert m["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["ap"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s, pos_label=1)  # DeepfakeBench's EER, written out
    assert m["eer"] == pytest.approx(fpr[np.nanargmin(np.absolute((1 - tpr) - fpr))], abs=1e-12)
    assert all(0 <= m[k] <= 1 for k in ("acc", "auc", "ap", "eer"))


def test_det_eer_perfect_and_inverted():
    y = np.array([0, 0, 1, 1])
    m, _ = det_metrics(y, [0, 0, 1, 1], np.array([0.1, 0.2, 0.8, 0.9]))
    assert (m["acc"], m["auc"], m["eer"]) == (1.0, 1.0, 0.0)
    m, _ = det_metrics(y, [1, 1, 0, 0], np.array([0.9, 0.8, 0.2, 0.1]))
    assert (m["acc"], m["auc"], m["eer"]) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("label", [0, 1])
def test_det_one_class_only_is_undefined_not_a_crash(label):
    y = np.full(6, label)
    parsed = [label, label, 1 - label, None, label, label]
    m, warn = det_metrics(y, parsed, ranking_scores(y, parsed, [None] * 6))
    assert m["auc"] is None and m["eer"] is None
    assert m["acc"] == pytest.approx(4 / 6)
    assert any("auc undefined: one class only" in w for w in warn)
    if label == 1:
        assert m["ap"] == pytest.approx(1.0)
    else:
        assert m["ap"] is None


def test_unparseable_is_wrong_for_det_auc():
    # every answer unparseable: the ranking puts each question on the wrong side
    y = np.array([0, 1, 0, 1])
    sc = ranking_scores(y, [None] * 4, [None] * 4)
    m, _ = det_metrics(y, [None] * 4, sc)
    assert m["acc"] == 0.0 and m["auc"] == 0.0


# ------------------------------------------------------------------------ cls
@pytest.mark.parametrize("n", [3, 50, 1000])
def test_cls_against_sklearn(n):
    rng = np.random.default_rng(n)
    classes = ["EFS", "FE", "FR", "FS", "real"]
    refs = list(rng.choice(classes, n))
    preds = [None if rng.random() < 0.1 else str(c) for c in rng.choice(classes, n)]
    m = cls_metrics(refs, preds, classes)
    p = ["__none__" if x is None else x for x in preds]
    assert m["acc"] == pytest.approx(accuracy_score(refs, p), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(
        f1_score(refs, p, labels=classes, average="macro", zero_division=0), abs=1e-12
    )


def test_cls_all_unparsed():
    m = cls_metrics(["FS", "FR"], [None, None], ["FR", "FS"])
    assert m == {"acc": 0.0, "macro_f1": 0.0}


# ---------------------------------------------------------------------- masks
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else np.logical_and(a, b).sum() / u


def _brute(ref_masks, pred_masks, missing, h, w):
    """giou, ciou, miou by pixels and permutations, written independently of the scorer."""
    ious, inters, unions, terms = [], [], [], []
    for R, P, miss in zip(ref_masks, pred_masks, missing):
        P = [] if miss else P
        ur = np.any(R, axis=0) if R else np.zeros((h, w), bool)
        up = np.any(P, axis=0) if P else np.zeros((h, w), bool)
        inters.append(np.logical_and(ur, up).sum())
        unions.append(np.logical_or(ur, up).sum())
        ious.append(0.0 if miss else _iou(ur, up))
        if not R:
            terms.append([1.0 if (not miss and not any(p.any() for p in P)) else 0.0])
            continue
        best = 0.0
        if P:
            M = np.array([[_iou(p, r) for r in R] for p in P])
            k = min(len(P), len(R))
            for rs in itertools.permutations(range(len(R)), k):
                for ps in itertools.permutations(range(len(P)), k):
                    best = max(best, sum(M[p, r] for p, r in zip(ps, rs)))
        terms.append([best / len(R)] * len(R))
    giou = float(np.mean(ious))
    ciou = sum(inters) / sum(unions) if sum(unions) else 1.0
    flat = [t for ts in terms for t in ts]
    return giou, ciou, float(np.mean(flat))


def _random_masks(rng, k, h, w, p_empty=0.15):
    out = []
    for _ in range(k):
        m = np.zeros((h, w), bool)
        if rng.random() > p_empty:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0 : y0 + rng.integers(1, h), x0 : x0 + rng.integers(1, w)] = True
            m ^= rng.random((h, w)) < 0.05
        out.append(m)
    return out


@pytest.mark.parametrize("n,seed", [(1, 0), (7, 1), (40, 2), (120, 3)])
def test_masks_against_brute_force(n, seed):
    rng = np.random.default_rng(seed)
    h, w = 9, 11
    R = [_random_masks(rng, int(rng.integers(0, 4)), h, w) for _ in range(n)]
    P = [_random_masks(rng, int(rng.integers(0, 5)), h, w) for _ in range(n)]  # often more predictions than refs
    missing = [bool(rng.random() < 0.1) for _ in range(n)]
    ms = mask_scores([[encode(m) for m in r] for r in R], [[encode(m) for m in p] for p in P], missing)
    s = ms.summary(with_miou=True)
    g, c, mi = _brute(R, P, missing, h, w)
    assert s["giou"] == pytest.approx(g, abs=1e-12)
    assert s["ciou"] == pytest.approx(c, abs=1e-12)
    assert s["miou"] == pytest.approx(mi, abs=1e-12)


def test_masks_empty_on_both_sides():
    h, w = 5, 6
    e = encode(np.zeros((h, w), bool))
    ms = mask_scores([[], [e], []], [[], [e], [e, e]], [False, False, False])
    s = ms.summary(with_miou=True)
    assert s["giou"] == 1.0  # union of nothing vs union of empties: IoU 1
    assert s["ciou"] == 1.0  # no pixel anywhere
    assert s["miou"] == 1.0  # empty ref vs empty pred: 1; real images with no / only empty predictions: 1


def test_masks_more_predictions_than_references():
    h, w = 8, 8
    a = np.zeros((h, w), bool)
    a[:4, :4] = True
    b = np.zeros((h, w), bool)
    b[4:, 4:] = True
    c = np.zeros((h, w), bool)
    c[:4, :2] = True
    ms = mask_scores([[encode(a)]], [[encode(c), encode(b), encode(a)]], [False])
    s = ms.summary(with_miou=True)
    assert s["miou"] == 1.0  # a is matched to a; extra predictions do not lower miou
    assert s["giou"] == pytest.approx(16 / 32)  # but the union does
    assert ms.iou[0] == pytest.approx(_iou(a, a | b | c))


def test_missing_real_image_counts_as_wrong():
    ms = mask_scores([[]], [None], [True])
    assert ms.summary(True) == {"giou": 0.0, "ciou": 1.0, "miou": 0.0}


# ------------------------------------------------------------------ bootstrap
def test_bootstrap_auc_equals_sklearn_on_each_resample():
    rng = np.random.default_rng(0)
    n = 60
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 1)  # many ties
    stats = bootstrap_auc(y, s, 40, task_rng(3, "det"))
    for k, idx in enumerate(itertools.chain.from_iterable(draw_indices(n, 40, task_rng(3, "det")))):
        if len(set(y[idx])) < 2:
            assert np.isnan(stats[k])
        else:
            assert stats[k] == pytest.approx(roc_auc_score(y[idx], s[idx]), abs=1e-12)


def test_bootstrap_mean_and_interval_are_seeded():
    v = np.random.default_rng(1).random(300)
    a = bootstrap_mean(v, 500, task_rng(0, "x"))
    b = bootstrap_mean(v, 500, task_rng(0, "x"))
    np.testing.assert_array_equal(a, b)
    idx = np.concatenate(list(draw_indices(300, 500, task_rng(0, "x"))))
    np.testing.assert_allclose(a, v[idx].mean(axis=1))
    lo, hi = interval(a)
    assert lo == pytest.approx(np.percentile(a, 2.5)) and hi == pytest.approx(np.percentile(a, 97.5))
    assert lo < v.mean() < hi
