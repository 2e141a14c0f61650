"""Seeded bootstrap confidence intervals (percentile method).

Resamples are drawn with replacement from the task's questions with
``numpy.random.default_rng([seed, crc32(task)])``: ``B`` rows of ``n`` indices,
generated in chunks by :func:`draw_indices`.  The statistic is recomputed on
every resample from per-question values:

* means of per-question values (``acc``, ``giou``, ``rouge_l``): weighted mean;
* pooled ratios (``grounded_recall``: matched / reference pairs summed over the questions): the
  ratio of the resampled sums; resamples whose denominator is 0 are dropped;
* ``auc``: the Mann-Whitney form of ROC AUC on the resample (ties count 1/2),
  which equals scikit-learn's ``roc_auc_score`` on the resampled rows;
  resamples with one class only are dropped.

The interval is the 2.5th and 97.5th percentile of the resample values.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np

LEVEL = 0.95


def task_rng(seed: int, task: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(task.encode())])


def draw_indices(n: int, resamples: int, rng: np.random.Generator, max_cells: int = 4_000_000) -> Iterator[np.ndarray]:
    """Chunks of resample indices, shape ``(b, n)``, ``resamples`` rows in all."""
    step = max(1, min(resamples, max_cells // max(n, 1)))
    done = 0
    while done < resamples:
        b = min(step, resamples - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    b = idx.shape[0]
    flat = (idx + (np.arange(b)[:, None] * n)).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


def bootstrap_mean(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    n = len(v)
    out = [np.asarray(v[idx].mean(axis=1)) for idx in draw_indices(n, resamples, rng)]
    return np.concatenate(out) if out else np.empty(0)


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = []
    for idx in draw_indices(len(a), resamples, rng):
        s_num, s_den = a[idx].sum(axis=1), b[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(s_den > 0, s_num / np.where(s_den > 0, s_den, 1), np.nan))
    return np.concatenate(out) if out else np.empty(0)


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=float)
    n = len(y)
    _, g = np.unique(s, return_inverse=True)  # score rank group of every question (ties share one)
    ng_ = int(g.max()) + 1 if n else 0
    key0 = g * 2 + y  # (group, class) cell of every question
    res = []
    for idx in draw_indices(n, resamples, rng):
        b = idx.shape[0]
        key = key0[idx] + (np.arange(b)[:, None] * (2 * ng_))
        cnt = np.bincount(key.ravel(), minlength=b * 2 * ng_).reshape(b, ng_, 2).astype(float)
        neg, pos = cnt[:, :, 0], cnt[:, :, 1]
        below = np.cumsum(neg, axis=1) - neg
        num = (pos * (below + 0.5 * neg)).sum(axis=1)
        den = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            res.append(np.where(den > 0, num / np.where(den > 0, den, 1), np.nan))
    return np.concatenate(res) if res else np.empty(0)


def interval(stats: np.ndarray, level: float = LEVEL) -> tuple[float, float] | None:
    s = np.asarray(stats, dtype=float)
    s = s[~np.isnan(s)]
    if not len(s):
        return None
    a = (1 - level) / 2 * 100
    lo, hi = np.percentile(s, [a, 100 - a])
    return float(lo), float(hi)
