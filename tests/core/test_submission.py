"""fifa.core.submission: the Submission record, its Arrow/file forms and its one validator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fifa.core.rle import encode
from fifa.core.schemas import PREDICTION_PARTS_SCHEMA, SUBMISSION_SCHEMA
from fifa.core.submission import Submission, SubmissionError

REPO = Path(__file__).resolve().parents[2]


def _mask(h: int = 4, w: int = 5) -> dict:
    m = np.zeros((h, w), bool)
    m[1:3, 2:4] = True
    return dict(encode(m))


def _rows() -> list[dict]:
    return [
        {"question_id": "q1", "answer": "yes", "score": 0.75, "masks": None},
        {"question_id": "q2", "answer": None, "score": None, "masks": [_mask()]},
        {"question_id": "q3", "answer": "the [nose](n1)", "score": None, "masks": None},
    ]


def test_arrow_round_trip_keeps_every_value_and_the_schema():
    table = pa.Table.from_pylist(_rows(), schema=SUBMISSION_SCHEMA)
    sub = Submission.from_arrow(table)
    assert sub.question_id == ("q1", "q2", "q3")
    assert sub.score == (0.75, None, None)
    assert sub.masks[1] == (_mask(),)
    back = sub.to_arrow()
    assert back.schema == SUBMISSION_SCHEMA
    assert back.to_pylist() == _rows()
    assert Submission.from_arrow(back) == sub


def test_record_is_frozen_and_columns_must_align():
    sub = Submission.from_arrow(pa.Table.from_pylist(_rows(), schema=SUBMISSION_SCHEMA))
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.source = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match="one value per question_id"):
        Submission(("a", "b"), ("x",), (None, None), (None, None))


def test_write_parquet_and_jsonl(tmp_path):
    sub = Submission.from_arrow(pa.Table.from_pylist(_rows(), schema=SUBMISSION_SCHEMA))
    sub.write(tmp_path / "s.parquet")
    assert pq.read_table(tmp_path / "s.parquet").to_pylist() == _rows()
    sub.write(tmp_path / "deep" / "s.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "deep" / "s.jsonl").read_text().splitlines()]
    # null values are left out, except answer (a question answered with nothing)
    assert lines == [
        {"question_id": "q1", "answer": "yes", "score": 0.75},
        {"question_id": "q2", "answer": None, "masks": [_mask()]},
        {"question_id": "q3", "answer": "the [nose](n1)"},
    ]


def test_validator_reports_every_problem_in_order():
    cols = {
        "question_id": ["q1", "q1", 2.5, "zz"],
        "answer": ["a", 3, "b", "x" * 11],
        "score": [float("nan"), True, 1.5, None],
        "masks": [None, "m", [{"size": [2, 2], "counts": "zz"}], None],
    }
    with pytest.raises(SubmissionError) as e:
        Submission.from_columns(cols, 4, "f.jsonl", known_ids={"q1", "q2"}, max_answer_chars=10)
    assert e.value.source == "f.jsonl"
    assert e.value.problems == [
        "wrong type: 1 question_id value(s) are not strings or integers: row 2 (2.5)",
        "1 duplicate question_id(s): 'q1'",
        "1 question_id(s) not in the bench: 'zz'",
        "wrong type: 1 answer(s) are not strings: 'q1'",
        "1 answer(s) longer than 10 characters: 'zz'",
        "wrong type: 1 score(s) are not numbers: 'q1'",
        "1 score(s) are NaN: 'q1'",
        "1 score(s) outside [0, 1]: row 2 (1.5)",
        "wrong type: 1 masks value(s) are not lists of RLE objects: 'q1'",
        e.value.problems[-1],
    ]
    assert e.value.problems[-1].startswith("1 answer(s) with masks that do not decode or do not fit the image: row 2")


def test_bench_context_is_optional_and_checks_mask_size():
    cols = {"question_id": ["q9", 7], "masks": [_mask(4, 5), None]}
    sub = Submission.from_columns(cols, 2)  # no bench: ids not checked against one, sizes free
    assert sub.question_id == ("q9", "7") and sub.masks[0] == (_mask(4, 5),)
    assert not sub.has_score and sub.has_masks and sub.answer == (None, None)
    with pytest.raises(SubmissionError, match="differs from image size"):
        Submission.from_columns(cols, 2, image_size=lambda q: [8, 8] if q == "q9" else None)
    with pytest.raises(SubmissionError, match="missing column 'question_id' \\(columns found: answer\\)"):
        Submission.from_columns({"answer": ["x"]}, 1)


def test_prediction_parts_are_a_submission_plus_error():
    assert PREDICTION_PARTS_SCHEMA.remove(PREDICTION_PARTS_SCHEMA.get_field_index("error")) == SUBMISSION_SCHEMA


def test_one_validator():
    """The submission's checks are written once, in fifa/core/submission.py (benchmarks uses that)."""
    needles = ["score(s) are NaN", "score(s) outside [0, 1]", "answer(s) are not strings", "masks of one answer"]
    packages = ["fifa", "concept_tree", "annotator", "pipelines", "benchmarks", "modeling"]
    homes = {
        str(p.relative_to(REPO))
        for pkg in packages
        for p in (REPO / pkg).rglob("*.py")
        if any(n in p.read_text() for n in needles)
    }
    assert homes == {"fifa/core/submission.py"}


def test_predict_writes_its_parts_through_the_record(tmp_path):
    """fifa-train predict assembles its parts into a Submission: written when valid, refused (parts kept) when not."""
    from fifa.modeling.submit import _write

    parts = tmp_path / "out.jsonl.parts"
    parts.mkdir()
    rows = [dict(r, error=None) for r in _rows()]
    rows[1]["error"] = "image unreadable"
    pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTION_PARTS_SCHEMA), parts / "part-00000.parquet")
    assert _write(tmp_path / "out.jsonl", parts) == 1  # the failed question is counted
    assert [json.loads(x)["question_id"] for x in (tmp_path / "out.jsonl").read_text().splitlines()] == [
        "q1",
        "q2",
        "q3",
    ]
    rows[0]["score"] = float("nan")
    pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTION_PARTS_SCHEMA), parts / "part-00000.parquet")
    with pytest.raises(SubmissionError, match="score"):
        _write(tmp_path / "bad.parquet", parts)
    assert not (tmp_path / "bad.parquet").exists() and (parts / "part-00000.parquet").exists()
