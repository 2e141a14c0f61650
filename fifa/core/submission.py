"""A submission (DESIGN.md "Submission"): a model's answers to a bench, the record and its one validator.

Data shapes:

* :class:`Submission`: one row per answered question, as columns (tuples of equal length):
  ``question_id`` (str), ``answer`` (str or None), ``score`` (float in [0, 1] or None), ``masks``
  (a tuple of :class:`~fifa.core.rle.RLE` of one size, or None); ``has_score`` / ``has_masks`` say whether
  the file had those columns at all. ``fifa-train predict`` produces it, ``fifa-bench score`` (and the
  evaluation server's workers) read files into it;
* on disk: Parquet with :data:`~fifa.core.schemas.SUBMISSION_SCHEMA` (:meth:`Submission.to_arrow`), or JSONL
  with the same keys (a key whose value is null is left out, except ``answer``);
* :class:`SubmissionError`: an invalid submission, ``problems`` holding one message per kind of problem
  (each naming up to ten offending ids, :func:`list_ids`).

:meth:`Submission.from_columns` (and :meth:`Submission.from_arrow`) is the validator: every problem of the
whole file is collected before anything is refused. Given the bench's question ids and image sizes it also
refuses unknown ids and masks that do not fit the image; masks are checked with
:func:`fifa.core.rle.check_rle` before pycocotools ever sees them.
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from .atomic import atomic_open, write_table_atomic
from .errors import FifaError
from .rle import RLE, InvalidRLE, check_rle
from .schemas import SUBMISSION_SCHEMA

__all__ = ["MAX_ANSWER_CHARS", "Submission", "SubmissionError", "list_ids"]

#: The longest answer accepted (characters): the PTB tokenizer and METEOR hold an answer in memory.
MAX_ANSWER_CHARS = 200_000

#: The image size ``[height, width]`` of a question's bench row, by question id (None: unknown).
ImageSizeOf = Callable[[str], Sequence[int] | None]


def list_ids(ids: Iterable[object], limit: int = 10, quote: bool = True) -> str:
    """Up to ``limit`` ids, comma-separated, then "... and N more"."""
    names = [str(i) for i in ids]
    head = ", ".join(repr(i) if quote else i for i in names[:limit])
    return head + (f" ... and {len(names) - limit} more" if len(names) > limit else "")


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


@dataclass(frozen=True, slots=True)
class Submission:
    """A model's answers, one row per question (see the module docstring); built by :meth:`from_columns`."""

    question_id: tuple[str, ...]
    answer: tuple[str | None, ...]
    score: tuple[float | None, ...]
    masks: tuple[tuple[RLE, ...] | None, ...]
    has_score: bool = True
    has_masks: bool = True
    source: str = "submission"

    def __post_init__(self) -> None:
        n = len(self.question_id)
        if not len(self.answer) == len(self.score) == len(self.masks) == n:
            raise ValueError("a submission's columns must have one value per question_id")

    def __len__(self) -> int:
        return len(self.question_id)

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Sequence[object]],
        n_rows: int,
        source: str = "submission",
        *,
        known_ids: Container[str] | None = None,
        image_size: ImageSizeOf | None = None,
        max_answer_chars: int = MAX_ANSWER_CHARS,
    ) -> Submission:
        """Validate a submission's columns (``n_rows`` values each; a missing ``answer``, ``score`` or
        ``masks`` column means no value); raises :class:`SubmissionError` listing every problem.

        ``known_ids``: the bench's question ids (others are refused); ``image_size``: a question's image
        size, which its masks must have. Without them only the submission itself is checked."""
        if "question_id" not in columns:
            found = ", ".join(sorted(columns)) or "none"
            raise SubmissionError([f"missing column 'question_id' (columns found: {found})"], source)
        problems: list[str] = []
        qids = _check_ids(columns["question_id"], known_ids, problems)

        def label(k: int) -> str:
            q = qids[k]
            return repr(q) if q is not None else f"row {k}"

        absent: Sequence[object] = [None] * n_rows
        answers = _check_answers(columns.get("answer", absent), label, max_answer_chars, problems)
        scores = _check_scores(columns.get("score", absent), label, problems)
        masks = _check_masks(columns.get("masks", absent), qids, image_size, label, problems)
        if problems:
            raise SubmissionError(problems, source)
        ids = tuple(q for q in qids if q is not None)  # all of them: a None id is a problem above
        return cls(ids, answers, scores, masks, "score" in columns, "masks" in columns, source)

    @classmethod
    def from_arrow(
        cls,
        table: pa.Table,
        source: str = "table",
        *,
        known_ids: Container[str] | None = None,
        image_size: ImageSizeOf | None = None,
        max_answer_chars: int = MAX_ANSWER_CHARS,
    ) -> Submission:
        """:meth:`from_columns` of an Arrow table (any column order; extra columns are ignored)."""
        return cls.from_columns(
            table.to_pydict(),
            table.num_rows,
            source,
            known_ids=known_ids,
            image_size=image_size,
            max_answer_chars=max_answer_chars,
        )

    def to_arrow(self) -> pa.Table:
        """The submission as a table of :data:`~fifa.core.schemas.SUBMISSION_SCHEMA`."""
        masks = [None if ms is None else [dict(m) for m in ms] for ms in self.masks]
        columns = [list(self.question_id), list(self.answer), list(self.score), masks]
        return pa.Table.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(columns, SUBMISSION_SCHEMA)], schema=SUBMISSION_SCHEMA
        )

    def write(self, path: Path) -> None:
        """Write atomically: JSONL when ``path`` ends in ``.jsonl`` (null values left out, except ``answer``),
        else Parquet."""
        table = self.to_arrow()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix != ".jsonl":
            write_table_atomic(table, path)
            return
        with atomic_open(path, "w") as f:
            for r in table.to_pylist():
                f.write(json.dumps({k: v for k, v in r.items() if v is not None or k == "answer"}) + "\n")


# ---------------------------------------------------------------- validation
def _qid(v: object) -> str | None:
    """A question id as a string: strings, integers and integral floats; None for anything else."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return None


def _check_ids(raw_ids: Sequence[object], known_ids: Container[str] | None, problems: list[str]) -> list[str | None]:
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
    unknown = [] if known_ids is None else [q for q in counts if q not in known_ids]
    if unknown:
        problems.append(f"{len(unknown)} question_id(s) not in the bench: {list_ids(unknown)}")
    return qids


def _check_answers(
    answers: Sequence[object], label: Callable[[int], str], max_chars: int, problems: list[str]
) -> tuple[str | None, ...]:
    bad = [label(k) for k, a in enumerate(answers) if a is not None and not isinstance(a, str)]
    if bad:
        problems.append(f"wrong type: {len(bad)} answer(s) are not strings: {list_ids(bad, quote=False)}")
    long = [label(k) for k, a in enumerate(answers) if isinstance(a, str) and len(a) > max_chars]
    if long:
        problems.append(f"{len(long)} answer(s) longer than {max_chars} characters: {list_ids(long, quote=False)}")
    return tuple(a if isinstance(a, str) else None for a in answers)


def _check_scores(
    scores: Sequence[object], label: Callable[[int], str], problems: list[str]
) -> tuple[float | None, ...]:
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
    return tuple(float(s) if isinstance(s, numbers.Real) else None for s in scores)  # bools: refused above


def _check_masks(
    raw_masks: Sequence[object],
    qids: list[str | None],
    image_size: ImageSizeOf | None,
    label: Callable[[int], str],
    problems: list[str],
) -> tuple[tuple[RLE, ...] | None, ...]:
    """Each row's masks checked against its bench image's size (a single mask: a list of one)."""
    masks: list[tuple[RLE, ...] | None] = [None] * len(raw_masks)
    wrong_m, bad_m = [], []
    for k, ms in enumerate(raw_masks):
        if ms is None:
            continue
        if isinstance(ms, Mapping):  # a single mask is accepted as a list of one
            ms = [ms]
        if not isinstance(ms, (list, tuple)) or not all(isinstance(m, Mapping) for m in ms):
            wrong_m.append(label(k))
            continue
        q = qids[k]
        size = image_size(q) if image_size is not None and q is not None else None
        try:
            checked = tuple(check_rle(m, expect_size=size) for m in ms)
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
    return tuple(masks)
