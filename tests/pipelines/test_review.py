"""Review files (`fifa-data view` downloads them, `fifa-data build --review FILE` reads them)."""

from __future__ import annotations

import json

import pytest

from fifa.core.errors import UserError
from fifa.pipelines.review import Decision, ReviewError, dump_review, load_review, parse_review, summarize


def _write(tmp_path, obj, name="review.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj), "utf-8")
    return p


def _entry(sid, decision="accepted", note="", at="2025-03-01T10:00:00.000Z"):
    return {"sample_id": sid, "decision": decision, "note": note, "at": at}


def test_reads_decisions_and_the_later_entry_wins(tmp_path):
    p = _write(
        tmp_path,
        {
            "version": 1,
            "reviewer": "ana",
            "decisions": [
                _entry("a", "rejected", "mask misses the lip"),
                _entry("b"),
                _entry("a", "accepted", "on second look fine", at="2025-03-01T10:05:00+00:00"),
            ],
        },
    )
    got = load_review(p)
    assert list(got) == ["b", "a"]
    assert got["a"] == Decision("a", "accepted", "on second look fine", "2025-03-01T10:05:00+00:00", "ana")
    assert got["b"].decision == "accepted" and not got["b"].rejected
    assert got["a"].reviewer == "ana"


def test_null_reviewer_null_note_and_unknown_keys_are_accepted(tmp_path):
    p = _write(
        tmp_path,
        {
            "version": 1,
            "reviewer": None,
            "extra": 1,
            "decisions": [{**_entry("x", "rejected"), "note": None, "by": "later field"}],
        },
    )
    d = load_review(p)["x"]
    assert d.rejected and d.note == "" and d.reviewer is None


@pytest.mark.parametrize(
    "obj, words",
    [
        ("{not json", "not valid JSON"),
        ([], "expected a JSON object"),
        ({"decisions": []}, "unsupported version None"),
        ({"version": 2, "decisions": []}, "unsupported version 2"),
        ({"version": 1, "decisions": {}}, "'decisions' must be a list"),
        ({"version": 1, "reviewer": 3, "decisions": []}, "'reviewer' must be a string or null"),
        ({"version": 1, "decisions": ["a"]}, "decisions[0]: expected an object"),
        ({"version": 1, "decisions": [_entry("")]}, "decisions[0]: 'sample_id' must be a non-empty string"),
        (
            {"version": 1, "decisions": [_entry("a"), _entry("b", "maybe")]},
            "decisions[1] ('b'): 'decision' must be one of",
        ),
        ({"version": 1, "decisions": [_entry("a", note=5)]}, "'note' must be a string"),
        ({"version": 1, "decisions": [_entry("a", at="yesterday")]}, "'at' must be an ISO-8601 time, got 'yesterday'"),
        ({"version": 1, "decisions": [{"sample_id": "a", "decision": "accepted"}]}, "'at' must be an ISO-8601 time"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, obj, words):
    p = _write(tmp_path, obj)
    with pytest.raises(ReviewError) as e:
        load_review(p)
    assert words in str(e.value)
    assert isinstance(e.value, UserError)  # the CLI prints it and exits 2


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(ReviewError, match="review file not found"):
        load_review(tmp_path / "nope.json")
    p = tmp_path / "bin.json"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ReviewError, match="not UTF-8"):
        load_review(p)


def test_json_error_names_line_and_column(tmp_path):
    p = _write(tmp_path, '{"version": 1,\n "decisions": [,]}')
    with pytest.raises(ReviewError, match=r"line 2, column 16"):
        load_review(p)


def test_dump_round_trips_in_time_order_and_summarizes():
    ds = [
        Decision("b", "rejected", "bad <mask>", "2025-03-02T00:00:00Z"),
        Decision("a", "accepted", "", "2025-03-01T00:00:00.123Z"),
    ]
    obj = dump_review(ds, reviewer="ana")
    assert [e["sample_id"] for e in obj["decisions"]] == ["a", "b"]
    assert set(obj["decisions"][0]) == {"sample_id", "decision", "note", "at"}
    back = parse_review(json.loads(json.dumps(obj)))
    assert back["b"] == Decision("b", "rejected", "bad <mask>", "2025-03-02T00:00:00Z", "ana")
    s = summarize(back)
    assert s == {
        "accepted": 1,
        "rejected": 1,
        "reviewers": ["ana"],
        "first": "2025-03-01T00:00:00.123000+00:00",
        "last": "2025-03-02T00:00:00+00:00",
    }
    assert summarize({})["first"] is None
