"""Loading and validating a submission before anything is scored.

A submission is Parquet or JSONL (one JSON object per line) with
``question_id``, ``answer`` and optional ``score`` and ``masks``.  Every
problem found becomes one line of a :class:`SubmissionError` that lists up to
ten offending ids; nothing is scored unless the whole file is valid.
Submission masks are checked with :func:`fifa.concept_tree.rle.check_rle`
(counts parsed in Python, non-negative, summing to height*width) and against
the image size of the bench row before pycocotools ever sees them.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.concept_tree.rle import InvalidRLE

from .bench import Bench, list_ids
from fifa.concept_tree.rle import check_rle


class SubmissionError(ValueError):
    """An invalid submission; ``problems`` holds one message per kind of problem."""

    def __init__(self, problems: list[str], source: str = "submission"):
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"invalid submission {self.source}: {self.problems[0]}"
        return f"invalid submission {self.source}:\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass
class Submission:
    """Answers aligned with the bench rows (``None`` where absent)."""

    present: list[bool]
    answer: list[str | None]
    score: list[float | None]
    masks: list[list[dict] | None]
    has_score_column: bool
    has_masks_column: bool
    source: str | None = None

    def missing(self, rows: list[int]) -> list[int]:
        return [i for i in rows if not self.present[i]]


# ------------------------------------------------------------------- reading
def _read_jsonl(path: Path) -> dict[str, list]:
    rows: list[dict] = []
    bad: list[str] = []
    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad.append(str(ln))
                continue
            if not isinstance(obj, dict):
                bad.append(str(ln))
                continue
            rows.append(obj)
    if bad:
        raise SubmissionError([f"unreadable file: {len(bad)} line(s) are not JSON objects (lines {list_ids(bad, quote=False)})"],
                              str(path))
    cols: dict[str, list] = {}
    keys = {k for r in rows for k in r}
    for k in keys:
        cols[k] = [r.get(k) for r in rows]
    cols.setdefault("__n__", [None] * len(rows))
    return cols


def _read_table(table: pa.Table) -> dict[str, list]:
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    cols["__n__"] = [None] * table.num_rows
    return cols


def read_columns(sub: Any) -> tuple[dict[str, list], str]:
    """Columns of a submission given as a path, a DataFrame, a pyarrow Table or a list of dicts."""
    if isinstance(sub, (str, os.PathLike)):
        path = Path(sub)
        src = str(path)
        if not path.is_file():
            raise SubmissionError([f"unreadable file: {path} does not exist or is not a file"], src)
        with open(path, "rb") as f:
            head = f.read(4)
        suffix = path.suffix.lower()
        if head == b"PAR1" or suffix in (".parquet", ".pq"):
            try:
                return _read_table(pq.read_table(path)), src
            except Exception as e:  # noqa: BLE001
                raise SubmissionError([f"unreadable file: not a valid Parquet file ({e})"], src) from None
        return _read_jsonl(path), src
    if isinstance(sub, pa.Table):
        return _read_table(sub), "table"
    if isinstance(sub, list):
        cols: dict[str, list] = {}
        if not all(isinstance(r, Mapping) for r in sub):
            raise SubmissionError(["unreadable: list items must be objects"], "list")
        for k in {k for r in sub for k in r}:
            cols[k] = [r.get(k) for r in sub]
        cols["__n__"] = [None] * len(sub)
        return cols, "list"
    try:
        import pandas as pd

        if isinstance(sub, pd.DataFrame):
            # pandas' NaN in a float column means "no value" here (pyarrow's from_pandas semantics)
            return _read_table(pa.Table.from_pandas(sub, preserve_index=False)), "DataFrame"
    except ImportError:  # pragma: no cover
        pass
    raise SubmissionError([f"unreadable: unsupported submission object {type(sub).__name__}"], "submission")


# ---------------------------------------------------------------- validation
def _qid(v: Any) -> str | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return None


def load_submission(sub: Any, bench: Bench, *, strict: bool = False) -> Submission:
    """Read and validate ``sub`` against ``bench``; raises :class:`SubmissionError`."""
    cols, src = read_columns(sub)
    n = len(cols["__n__"])
    if "question_id" not in cols:
        found = sorted(k for k in cols if k != "__n__")
        raise SubmissionError([f"missing column 'question_id' (columns found: {', '.join(found) or 'none'})"], src)
    problems: list[str] = []
    raw_ids = cols["question_id"]
    qids = [_qid(v) for v in raw_ids]
    bad_id_rows = [f"row {k} ({raw_ids[k]!r})" for k in range(n) if qids[k] is None]
    if bad_id_rows:
        problems.append(f"wrong type: {len(bad_id_rows)} question_id value(s) are not strings or integers: "
                        f"{list_ids(bad_id_rows, quote=False)}")
    counts = Counter(q for q in qids if q is not None)
    dups = [q for q, c in counts.items() if c > 1]
    if dups:
        problems.append(f"{len(dups)} duplicate question_id(s): {list_ids(dups)}")
    unknown = [q for q in counts if q not in bench.index]
    if unknown:
        problems.append(f"{len(unknown)} question_id(s) not in the bench: {list_ids(unknown)}")
    label = lambda k: repr(qids[k]) if qids[k] is not None else f"row {k}"  # noqa: E731

    answers = cols.get("answer", [None] * n)
    bad = [label(k) for k, a in enumerate(answers) if a is not None and not isinstance(a, str)]
    if bad:
        problems.append(f"wrong type: {len(bad)} answer(s) are not strings: {list_ids(bad, quote=False)}")

    has_score = "score" in cols
    scores = cols.get("score", [None] * n)
    wrong, nan, rng = [], [], []
    for k, s in enumerate(scores):
        if s is None:
            continue
        if isinstance(s, bool) or not isinstance(s, numbers.Real):
            wrong.append(label(k))
        elif math.isnan(s):
            nan.append(label(k))
        elif not (0.0 <= float(s) <= 1.0):
            rng.append(f"{label(k)} ({s})")
    if wrong:
        problems.append(f"wrong type: {len(wrong)} score(s) are not numbers: {list_ids(wrong, quote=False)}")
    if nan:
        problems.append(f"{len(nan)} score(s) are NaN: {list_ids(nan, quote=False)}")
    if rng:
        problems.append(f"{len(rng)} score(s) outside [0, 1]: {list_ids(rng, quote=False)}")

    has_masks = "masks" in cols
    raw_masks = cols.get("masks", [None] * n)
    masks: list[list[dict] | None] = [None] * n
    wrong_m, bad_m = [], []
    for k, ms in enumerate(raw_masks):
        if ms is None:
            continue
        if isinstance(ms, Mapping):  # a single mask is accepted as a list of one
            ms = [ms]
        if not isinstance(ms, (list, tuple)) or not all(isinstance(m, Mapping) for m in ms):
            wrong_m.append(label(k))
            continue
        i = bench.index.get(qids[k]) if qids[k] is not None else None
        size = bench.image_size(i) if i is not None else None
        try:
            checked = [check_rle(m, expect_size=size) for m in ms]
            if len({tuple(m["size"]) for m in checked}) > 1:
                raise InvalidRLE("masks of one answer differ in size")
            masks[k] = checked
        except InvalidRLE as e:
            bad_m.append(f"{label(k)} ({e})")
    if wrong_m:
        problems.append(f"wrong type: {len(wrong_m)} masks value(s) are not lists of RLE objects: "
                        f"{list_ids(wrong_m, quote=False)}")
    if bad_m:
        problems.append(f"{len(bad_m)} answer(s) with masks that do not decode or do not fit the image: "
                        f"{list_ids(bad_m, quote=False)}")
    if problems:
        raise SubmissionError(problems, src)

    m = len(bench)
    out = Submission([False] * m, [None] * m, [None] * m, [None] * m, has_score, has_masks, src)
    for k, q in enumerate(qids):
        i = bench.index[q]
        out.present[i] = True
        out.answer[i] = answers[k]
        out.score[i] = None if scores[k] is None else float(scores[k])
        out.masks[i] = masks[k]
    if strict:
        miss = [bench.question_id[i] for i in range(m) if not out.present[i]]
        if miss:
            raise SubmissionError([f"{len(miss)} bench question(s) have no answer (--strict): {list_ids(miss)}"],
                                  src)
    return out
