"""Classification metrics: ``acc`` and ``macro_f1`` (scikit-learn definitions).

The class set is the bench's classes (unique reference answers of the ``cls``
rows).  Unparseable or missing predictions get their own label ``UNPARSED``,
which is never a class: it counts as wrong for ``acc`` and as a false negative
of the true class for ``macro_f1`` (``f1_score(average="macro",
labels=classes)``, zero_division 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

UNPARSED = "<unparsed>"


def cls_metrics(refs: Sequence[str], preds: Sequence[str | None], classes: Sequence[str]) -> dict:
    p = [UNPARSED if x is None else x for x in preds]
    if not refs:
        return {"acc": None, "macro_f1": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "acc": float(accuracy_score(refs, p)),
            "macro_f1": float(f1_score(refs, p, labels=list(classes), average="macro", zero_division=0)),
        }


def cls_confusion(refs: Sequence[str], preds: Sequence[str | None], classes: Sequence[str]) -> np.ndarray:
    """Rows: reference classes; columns: classes + ``UNPARSED``."""
    p = [UNPARSED if x is None else x for x in preds]
    labels = list(classes) + [UNPARSED]
    return confusion_matrix(list(refs), p, labels=labels)[: len(classes)]
