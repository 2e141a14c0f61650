"""Loading and validating a submission before anything is scored.

A submission is Parquet or JSONL (one JSON object per line) with
``question_id``, ``answer`` and optional ``score`` and ``masks``.  Every
problem found becomes one line of a :class:`SubmissionError` that lists up to
ten offending ids; nothing is scored unless the whole file is valid.
Submission masks are checked with :func:`fifa.core.rle.check_rle`
(counts parsed in Python, non-negative, summing to height*width) and against
the image size of the bench row before pycocotools ever sees them.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.errors import FifaError
from fifa.core.rle import InvalidRLE, check_rle

from .bench import Bench, list_ids


class SubmissionError(FifaError, ValueError):
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
@dataclass(frozen=True)
class SubmissionLimits:
    """Sizes a submission may not exceed (read before anything is parsed, so a huge or hostile file
    is refused with a message instead of exhausting memory)."""

    max_bytes: int = 8 << 30  # the file
    max_line_bytes: int = 64 << 20  # one JSONL line
    max_rows: int | None = None  # default: 10x the bench's questions (at least 100,000): beyond that
    # no diagnosis (duplicates, unknown ids) is worth reading the file
    max_answer_chars: int = 200_000  # one answer (the PTB tokenizer and METEOR hold it in memory)


def _too_many_rows(n: int, limit: int) -> SubmissionError:
    return SubmissionError(
        [
            f"too many rows: the submission has {n} row(s) or more, at most {limit} are read "
            "(the bench's questions, with room for mistakes)"
        ],
        "submission",
    )


def _read_jsonl(path: Path, limits: SubmissionLimits, max_rows: int) -> dict[str, list]:
    rows: list[dict] = []
    bad: list[str] = []
    with open(path, "rb") as f:
        for ln, raw in enumerate(iter(lambda: f.readline(limits.max_line_bytes + 1), b""), 1):
            if len(raw) > limits.max_line_bytes:
                raise SubmissionError([f"line {ln} is longer than {limits.max_line_bytes} bytes"], str(path))
            line = raw.strip()
            if not line:
                continue
            if len(rows) >= max_rows:
                raise _too_many_rows(len(rows) + 1, max_rows)
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
        raise SubmissionError(
            [f"unreadable file: {len(bad)} line(s) are not JSON objects (lines {list_ids(bad, quote=False)})"],
            str(path),
        )
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


def read_columns(
    sub: Any, limits: SubmissionLimits = SubmissionLimits(), max_rows: int | None = None
) -> tuple[dict[str, list], str]:
    """Columns of a submission given as a path, a DataFrame, a pyarrow Table or a list of dicts."""
    max_rows = limits.max_rows or max_rows or (1 << 62)
    if isinstance(sub, (str, os.PathLike)):
        path = Path(sub)
        src = str(path)
        if not path.is_file():
            raise SubmissionError([f"unreadable file: {path} does not exist or is not a file"], src)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise SubmissionError([f"file too large: {size} bytes, the limit is {limits.max_bytes}"], src)
        with open(path, "rb") as f:
            head = f.read(4)
        suffix = path.suffix.lower()
        if head == b"PAR1" or suffix in (".parquet", ".pq"):
            try:
                n = pq.read_metadata(path).num_rows
                if n > max_rows:
                    raise _too_many_rows(n, max_rows)
                return _read_table(pq.read_table(path)), src
            except SubmissionError:
                raise
            except Exception as e:  # noqa: BLE001
                raise SubmissionError([f"unreadable file: not a valid Parquet file ({e})"], src) from None
        return _read_jsonl(path, limits, max_rows), src
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


def load_submission(
    sub: Any, bench: Bench, *, strict: bool = False, limits: SubmissionLimits = SubmissionLimits()
) -> Submission:
    """Read and validate ``sub`` against ``bench``; raises :class:`SubmissionError`."""
    cap = limits.max_rows or max(10 * len(bench), 100_000)
    cols, src = read_columns(sub, limits, max_rows=cap)
    n = len(cols["__n__"])
    if n > cap:
        raise _too_many_rows(n, cap)
    if "question_id" not in cols:
        found = sorted(k for k in cols if k != "__n__")
        raise SubmissionError([f"missing column 'question_id' (columns found: {', '.join(found) or 'none'})"], src)
    problems: list[str] = []
    qids = _check_ids(cols["question_id"], bench, problems)
    label = lambda k: repr(qids[k]) if qids[k] is not None else f"row {k}"  # noqa: E731
    answers = cols.get("answer", [None] * n)
    _check_answers(answers, label, limits, problems)
    scores = cols.get("score", [None] * n)
    _check_scores(scores, label, problems)
    masks = _check_masks(cols.get("masks", [None] * n), qids, bench, label, problems)
    if problems:
        raise SubmissionError(problems, src)
    return _aligned(bench, qids, answers, scores, masks, "score" in cols, "masks" in cols, src, strict)


def _check_ids(raw_ids: list, bench: Bench, problems: list[str]) -> list[str | None]:
    """The question ids as strings (None where not a string or an integer); problems: types, dups, unknown."""
    qids = [_qid(v) for v in raw_ids]
    bad_id_rows = [f"row {k} ({raw_ids[k]!r})" for k in range(len(qids)) if qids[k] is None]
    if bad_id_rows:
        problems.append(
            f"wrong type: {len(bad_id_rows)} question_id value(s) are not strings or integers: "
            f"{list_ids(bad_id_rows, quote=False)}"
        )
    counts = Counter(q for q in qids if q is not None)
    dups = [q for q, c in counts.items() if c > 1]
    if dups:
        problems.append(f"{len(dups)} duplicate question_id(s): {list_ids(dups)}")
    unknown = [q for q in counts if q not in bench.index]
    if unknown:
        problems.append(f"{len(unknown)} question_id(s) not in the bench: {list_ids(unknown)}")
    return qids


def _check_answers(answers: list, label: Callable[[int], str], limits: SubmissionLimits, problems: list[str]) -> None:
    bad = [label(k) for k, a in enumerate(answers) if a is not None and not isinstance(a, str)]
    if bad:
        problems.append(f"wrong type: {len(bad)} answer(s) are not strings: {list_ids(bad, quote=False)}")
    long = [label(k) for k, a in enumerate(answers) if isinstance(a, str) and len(a) > limits.max_answer_chars]
    if long:
        problems.append(
            f"{len(long)} answer(s) longer than {limits.max_answer_chars} characters: {list_ids(long, quote=False)}"
        )


def _check_scores(scores: list, label: Callable[[int], str], problems: list[str]) -> None:
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


def _check_masks(
    raw_masks: list, qids: list[str | None], bench: Bench, label: Callable[[int], str], problems: list[str]
) -> list[list[dict] | None]:
    """Each row's masks checked against its bench image's size (a single mask: a list of one)."""
    masks: list[list[dict] | None] = [None] * len(raw_masks)
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
        problems.append(
            f"wrong type: {len(wrong_m)} masks value(s) are not lists of RLE objects: {list_ids(wrong_m, quote=False)}"
        )
    if bad_m:
        problems.append(
            f"{len(bad_m)} answer(s) with masks that do not decode or do not fit the image: "
            f"{list_ids(bad_m, quote=False)}"
        )
    return masks


def _aligned(
    bench: Bench,
    qids: list,
    answers: list,
    scores: list,
    masks: list,
    has_score: bool,
    has_masks: bool,
    src: str,
    strict: bool,
) -> Submission:
    """The validated rows aligned with the bench's rows (``--strict``: every question answered)."""
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
            raise SubmissionError([f"{len(miss)} bench question(s) have no answer (--strict): {list_ids(miss)}"], src)
    return out
