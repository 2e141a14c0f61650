"""What the heads learn from a build's training rows, read once before training: the classification head's
classes and the words each class's answers open with, the mark head's region vocabulary and its targets per
sample (the marks of the ``age`` answers)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from fifa.core.errors import UserError
from fifa.core.marks import parse as parse_marks

from .config import TrainConfig
from .data import InstructData
from .examples import class_value


def classes_of(data: InstructData, cfg: TrainConfig) -> list[str]:
    if not cfg.heads.cls_head:
        return []
    try:
        vals = data.rows.column(cfg.heads.cls_field)
    except KeyError:
        raise UserError(f"heads.cls_field={cfg.heads.cls_field!r} is not a column of the build") from None
    labels = data.rows.column("label")
    vals = [class_value({cfg.heads.cls_field: v, "label": lb}, cfg.heads.cls_field) for v, lb in zip(vals, labels)]
    return sorted({v for v in vals if v is not None})


def _age_marks(data: InstructData) -> dict[str, list[tuple[str, str]]]:
    """(phrase, node id) of every mark of each sample's ``age`` answers (the marks of the answer text, DESIGN.md
    "Grounded text"; ``artifact`` left out)."""
    rows = np.flatnonzero(data.tasks == "age").tolist()
    messages, samples = data.rows.column("messages"), data.rows.column("sample_id")
    out: dict[str, list[tuple[str, str]]] = {}
    for i in rows:
        marks = [m for turn in messages[i] or [] if turn["role"] == "assistant" for m in parse_marks(turn["content"])]
        out.setdefault(str(samples[i]), []).extend((ph, n) for n, ph in marks if n != "artifact")
    return out


def mark_vocabulary(data: InstructData, size: int) -> list[dict]:
    """The mark head's regions: the ``size`` nodes most often marked in the training ``age`` answers, each with
    the phrase those answers most often name it by."""
    count: Counter = Counter()
    named: dict[str, Counter] = {}
    for marks in _age_marks(data).values():
        for phrase, node in marks:
            count[node] += 1
            named.setdefault(node, Counter())[phrase] += 1
    # ties broken by id and phrase, not by the rows' order (a build's row order may vary between runs)
    top = sorted(count, key=lambda n: (-count[n], n))[: max(size, 0)]
    return [{"id": n, "phrase": min(named[n], key=lambda ph: (-named[n][ph], ph))} for n in top]


def sample_marks(data: InstructData, regions: list[dict]) -> dict[str, list[int]]:
    """Per sample with an ``age`` row, the vocabulary indices of the regions its answers mark (empty: a real
    image, or only regions outside the vocabulary): the mark head's targets for every row of that sample."""
    index = {r["id"]: k for k, r in enumerate(regions)}
    return {s: sorted({index[n] for _, n in marks if n in index}) for s, marks in _age_marks(data).items()}


def class_openings(data: InstructData, field: str, classes: list[str], sample: int = 4000) -> dict[str, str]:
    """Per class, the most common opening (the text before the first ``:`` / ``.``) of the training ``cls``
    answers of that class that names the class itself ("IrisRecolour" of "IrisRecolour: A change of iris
    colour ...", "Real" of "Real. The face is authentic ..."): a guided ``cls`` answer starts with it."""
    from fifa.benchmarks.parsing import parse_cls

    rows = np.flatnonzero(data.tasks == "cls")[:sample]
    seen: dict[str, Counter] = {c: Counter() for c in classes}
    for i in rows.tolist():
        row = data.rows.row(i)
        cls = class_value(row, field)
        answer = next((m["content"] for m in row.get("messages") or [] if m["role"] == "assistant"), "")
        opening = re.split(r"[:.]", answer or "", maxsplit=1)[0].strip()
        if cls in seen and opening and parse_cls(opening, classes) == cls:
            seen[cls][opening] += 1
    return {c: min(n, key=lambda o: (-n[o], o)) for c, n in seen.items() if n}  # ties: by text, not row order
