"""Detection metrics: ``acc``, ``auc``, ``ap``, ``eer`` (label 1 = fake).

* ``acc``: parsed answer vs label; unparseable or missing answers are wrong.
* ``auc`` / ``ap``: scikit-learn ``roc_auc_score`` / ``average_precision_score``
  on the ranking score: the submitted ``score`` where a row has one, else the
  parsed answer (fake 1.0, real 0.0) and, for unparseable or missing answers,
  the wrong side (``1 - label``), so they count as wrong here too.
* ``eer``: DeepfakeBench's definition: ``fpr, tpr, _ = roc_curve(y, s)``;
  ``eer = fpr[nanargmin(|(1 - tpr) - fpr|)]``.
* With one class only, ``auc`` and ``eer`` (and ``ap`` when there is no fake)
  are undefined: they are ``None`` and a warning says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def ranking_scores(labels: np.ndarray, parsed: Sequence[int | None], scores: Sequence[float | None]) -> np.ndarray:
    out = np.empty(len(labels), dtype=float)
    for k, (y, p, s) in enumerate(zip(labels, parsed, scores)):
        if s is not None:
            out[k] = s
        elif p is not None:
            out[k] = float(p)
        else:
            out[k] = 1.0 - float(y)
    return out


def eer(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores, pos_label=1)
    fnr = 1 - tpr
    return float(fpr[np.nanargmin(np.absolute(fnr - fpr))])


def det_metrics(labels: np.ndarray, parsed: Sequence[int | None], scores: np.ndarray) -> tuple[dict, list[str]]:
    """Metrics and warnings; ``labels`` 0/1, ``parsed`` 0/1/None, ``scores`` from :func:`ranking_scores`."""
    y = np.asarray(labels, dtype=int)
    warn: list[str] = []
    n = len(y)
    correct = np.array([p is not None and p == t for p, t in zip(parsed, y)], dtype=bool)
    out: dict = {"acc": float(correct.mean()) if n else None}
    both = n > 0 and 0 < y.sum() < n
    if both:
        out["auc"] = float(roc_auc_score(y, scores))
        out["ap"] = float(average_precision_score(y, scores))
        out["eer"] = eer(y, scores)
    else:
        only = "no samples" if n == 0 else ("fake" if y.sum() == n else "real")
        out["auc"] = None
        out["eer"] = None
        if n and y.sum() == n:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out["ap"] = float(average_precision_score(y, scores))
            warn.append(f"auc undefined: one class only ({only}); eer undefined")
        else:
            out["ap"] = None
            warn.append(f"auc undefined: one class only ({only}); ap and eer undefined")
    return out, warn
