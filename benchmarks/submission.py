"""Loading a submission and validating it against a bench before anything is scored.

A submission is Parquet or JSONL (one JSON object per line) with ``question_id``, ``answer`` and optional
``score`` and ``masks``. This module reads the file (with size limits, so a huge or hostile file is refused
before it is parsed); the record and its one validator are :class:`fifa.core.submission.Submission`, given the
bench's question ids and image sizes. Every problem found becomes one line of a :class:`SubmissionError` that
lists up to ten offending ids; nothing is scored unless the whole file is valid. :class:`AlignedSubmission`
holds the validated answers aligned with the bench's rows, as the scorers read them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.submission import MAX_ANSWER_CHARS, Submission, SubmissionError, list_ids

from .bench import Bench

__all__ = ["AlignedSubmission", "SubmissionError", "SubmissionLimits", "load_submission", "read_columns"]


@dataclass
class AlignedSubmission:
    """A validated submission's answers aligned with the bench rows (``None`` where absent)."""

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
    max_answer_chars: int = MAX_ANSWER_CHARS  # one answer (the PTB tokenizer and METEOR hold it in memory)


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
def load_submission(
    sub: Any, bench: Bench, *, strict: bool = False, limits: SubmissionLimits = SubmissionLimits()
) -> AlignedSubmission:
    """Read ``sub`` and validate it against ``bench``; raises :class:`SubmissionError`."""
    cap = limits.max_rows or max(10 * len(bench), 100_000)
    cols, src = read_columns(sub, limits, max_rows=cap)
    n = len(cols.pop("__n__"))
    if n > cap:
        raise _too_many_rows(n, cap)
    record = Submission.from_columns(
        cols,
        n,
        src,
        known_ids=bench.index,
        image_size=lambda q: bench.image_size(bench.index[q]) if q in bench.index else None,
        max_answer_chars=limits.max_answer_chars,
    )
    return _aligned(bench, record, strict)


def _aligned(bench: Bench, sub: Submission, strict: bool) -> AlignedSubmission:
    """The validated rows aligned with the bench's rows (``--strict``: every question answered)."""
    m = len(bench)
    out = AlignedSubmission([False] * m, [None] * m, [None] * m, [None] * m, sub.has_score, sub.has_masks, sub.source)
    for q, answer, score, masks in zip(sub.question_id, sub.answer, sub.score, sub.masks):
        i = bench.index[q]
        out.present[i] = True
        out.answer[i] = answer
        out.score[i] = score
        out.masks[i] = None if masks is None else [dict(m) for m in masks]
    if strict:
        miss = [bench.question_id[i] for i in range(m) if not out.present[i]]
        if miss:
            raise SubmissionError(
                [f"{len(miss)} bench question(s) have no answer (--strict): {list_ids(miss)}"], sub.source
            )
    return out
