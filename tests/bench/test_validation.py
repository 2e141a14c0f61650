"""Every submission validation error: API (SubmissionError) and CLI (exit 2, message, no traceback)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bench_helpers import make_bench, make_submission, write_bench, write_jsonl

from fifa.benchmarks.bench import load_bench
from fifa.benchmarks.submission import SubmissionError, load_submission
from fifa.core.rle import encode

FIFA_BENCH = Path(sys.executable).parent / "fifa-bench"


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("vbench")
    rows = make_bench(seed=3, n_det=12, n_cls=6, n_text=2, n_loc=4, n_age=2, size=(24, 32))
    return rows, write_bench(rows, d / "bench.parquet")


@pytest.fixture(scope="module")
def good(bench):
    return make_submission(bench[0], seed=2)


def _write(tmp_path, rows, name="sub.jsonl"):
    p = tmp_path / name
    with open(p, "w") as f:
        for r in rows:
            f.write(json.dumps(r, allow_nan=True) + "\n")
    return p


def _cli(*args):
    return subprocess.run([str(FIFA_BENCH), *map(str, args)], capture_output=True, text=True, timeout=300)


def _expect_error(bench_path, sub, tmp_path, *needles, strict=False):
    b = load_bench(bench_path)
    with pytest.raises(SubmissionError) as ei:
        load_submission(sub, b, strict=strict)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, msg
    if isinstance(sub, Path):
        r = _cli(
            "score",
            "--bench",
            bench_path,
            "--submission",
            sub,
            "--out",
            tmp_path / "out",
            *(["--strict"] if strict else []),
            "--bootstrap",
            "0",
            "--no-plots",
        )
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        for n in needles:
            assert n in r.stderr, r.stderr
        assert not (tmp_path / "out" / "report.json").exists()
    return msg


def real_loc_qid(rows):
    return next(r["question_id"] for r in rows if r["task"] == "loc" and not r["masks"])


def fake_loc_qid(rows):
    return next(r["question_id"] for r in rows if r["task"] == "loc" and r["masks"])


def test_good_submission_is_accepted(bench, good):
    sub = load_submission(good, load_bench(bench[1]))
    assert all(sub.present)


def test_unreadable_files(bench, tmp_path):
    bad = tmp_path / "garbage.jsonl"
    bad.write_bytes(b'\x00\x01 this is not json\n{"question_id": "det-0"}\n')
    _expect_error(bench[1], bad, tmp_path, "unreadable file", "line")
    pq_bad = tmp_path / "broken.parquet"
    pq_bad.write_bytes(b"PAR1 definitely not parquet")
    _expect_error(bench[1], pq_bad, tmp_path, "unreadable file", "Parquet")
    _expect_error(bench[1], tmp_path / "nope.jsonl", tmp_path, "unreadable file", "does not exist")


def test_missing_question_id_column(bench, tmp_path):
    p = _write(tmp_path, [{"id": "det-0", "answer": "yes"}])
    _expect_error(bench[1], p, tmp_path, "missing column 'question_id'")


def test_duplicate_ids(bench, good, tmp_path):
    rows = good + [dict(good[0]), dict(good[1]), dict(good[1])]
    p = _write(tmp_path, rows)
    _expect_error(bench[1], p, tmp_path, "2 duplicate question_id(s)", repr(good[0]["question_id"]))


def test_unknown_ids_listed_up_to_ten(bench, good, tmp_path):
    rows = good + [{"question_id": f"zz-{k}", "answer": "yes"} for k in range(13)]
    p = _write(tmp_path, rows)
    msg = _expect_error(bench[1], p, tmp_path, "13 question_id(s) not in the bench", "'zz-0'", "and 3 more")
    assert msg.count("'zz-") == 10


def test_wrong_types(bench, good, tmp_path):
    rows = [dict(r) for r in good]
    rows[0]["answer"] = 7
    rows[1]["score"] = "0.5"
    rows.append({"question_id": 1.5, "answer": "yes"})
    loc = next(r for r in rows if r["question_id"] == fake_loc_qid(bench[0]))
    loc["masks"] = "not a list of masks"
    p = _write(tmp_path, rows)
    _expect_error(
        bench[1],
        p,
        tmp_path,
        "answer(s) are not strings",
        "score(s) are not numbers",
        "question_id value(s) are not strings or integers",
        "masks value(s) are not lists",
    )


def test_nan_and_out_of_range_scores(bench, good, tmp_path):
    rows = [dict(r) for r in good]
    dets = [r for r in rows if r["question_id"].startswith("det-")]
    dets[0]["score"] = math.nan
    dets[1]["score"] = 1.5
    dets[2]["score"] = -0.1
    dets[3]["score"] = math.inf
    p = _write(tmp_path, rows)
    _expect_error(
        bench[1], p, tmp_path, "1 score(s) are NaN", "3 score(s) outside [0, 1]", repr(dets[0]["question_id"])
    )


def test_parquet_null_score_is_fine_but_nan_is_not(bench, good, tmp_path):
    b = load_bench(bench[1])
    qids = [r["question_id"] for r in good]
    scores = [None] * len(qids)
    t = pa.table(
        {"question_id": qids, "answer": [r.get("answer") for r in good], "score": pa.array(scores, type=pa.float64())}
    )
    pq.write_table(t, tmp_path / "ok.parquet")
    sub = load_submission(tmp_path / "ok.parquet", b)
    assert all(s is None for s in sub.score)
    scores[0] = float("nan")
    t = pa.table(
        {"question_id": qids, "answer": [r.get("answer") for r in good], "score": pa.array(scores, type=pa.float64())}
    )
    pq.write_table(t, tmp_path / "nan.parquet")
    _expect_error(bench[1], tmp_path / "nan.parquet", tmp_path, "score(s) are NaN", repr(qids[0]))


def test_masks_that_do_not_decode_or_do_not_fit(bench, good, tmp_path):
    rows = [dict(r) for r in good]
    by = {r["question_id"]: r for r in rows}
    fake = fake_loc_qid(bench[0])
    real = real_loc_qid(bench[0])
    by[fake]["masks"] = [{"size": [24, 32], "counts": "0"}]
    by[real]["masks"] = [encode(np.ones((10, 10), bool))]  # image is 24x32 (read from the PNG header)
    p = _write(tmp_path, rows)
    msg = _expect_error(
        bench[1], p, tmp_path, "2 answer(s) with masks", repr(fake), repr(real), "differs from image size"
    )
    assert "counts sum to" in msg


def test_missing_questions_counted_or_refused_with_strict(bench, good, tmp_path):
    rows = good[3:]
    p = _write(tmp_path, rows)
    b = load_bench(bench[1])
    sub = load_submission(p, b)
    assert sum(not x for x in sub.present) == 3
    _expect_error(
        bench[1],
        p,
        tmp_path,
        "3 bench question(s) have no answer (--strict)",
        repr(good[0]["question_id"]),
        strict=True,
    )


def test_several_problems_reported_together(bench, good, tmp_path):
    rows = good + [dict(good[0]), {"question_id": "nope", "answer": "x"}]
    p = _write(tmp_path, rows)
    msg = _expect_error(bench[1], p, tmp_path, "duplicate", "not in the bench")
    assert msg.count("\n  - ") == 2


MALFORMED_SCRIPT = r"""
import sys
from fifa.benchmarks.scoring import score
from fifa.benchmarks.submission import SubmissionError
for path in sys.argv[2:]:
    try:
        score(sys.argv[1], path, bootstrap=0, use_java=False)
    except SubmissionError as e:
        print("REFUSED", e, flush=True)
        continue
    print("SCORED", path, flush=True)
    sys.exit(1)
"""

MALFORMED = [
    "0",  # pycocotools reads uninitialised memory
    "",  # idem
    "0O0O",  # parses, but the runs do not sum to h*w
    "PPPPPPPPPPPPPPPPPPPPP",  # a value that never ends
    "\x7f\x7f\x7f",  # characters outside the alphabet
    "]]]]",  # negative run lengths
    "a" * 5000,  # huge runs
    "\u00ff\u00ff",  # non-ASCII
]


@pytest.fixture(scope="module")
def malformed_subs(bench, good, tmp_path_factory):
    d = tmp_path_factory.mktemp("malformed")
    fake = fake_loc_qid(bench[0])
    paths = []
    for k, counts in enumerate(MALFORMED):
        rows = [dict(r) for r in good]
        next(r for r in rows if r["question_id"] == fake)["masks"] = [{"size": [24, 32], "counts": counts}]
        paths.append(write_jsonl(rows, d / f"sub{k}.jsonl"))
    return fake, paths


def test_malformed_rle_never_reaches_pycocotools(bench, malformed_subs):
    # one process scores every malformed submission: a heap corruption or abort would kill it
    fake, paths = malformed_subs
    r = subprocess.run(
        [sys.executable, "-c", MALFORMED_SCRIPT, str(bench[1]), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)  # a crash gives a signal / abort code
    assert r.stdout.count("REFUSED") == len(MALFORMED) and r.stdout.count(repr(fake)) == len(MALFORMED)


@pytest.mark.parametrize("k", range(len(MALFORMED)))
def test_malformed_rle_cli_exit_2(bench, malformed_subs, tmp_path, k):
    fake, paths = malformed_subs
    r = _cli("score", "--bench", bench[1], "--submission", paths[k], "--out", tmp_path / "o", "--bootstrap", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr and repr(fake) in r.stderr, r.stderr
    assert "masks that do not decode" in r.stderr


def test_malformed_rle_in_bench_is_refused(tmp_path):
    rows = make_bench(seed=5, n_det=2, n_cls=0, n_text=0, n_loc=3, n_age=0)
    for r in rows:
        if r["masks"]:
            r["masks"] = [{"size": [24, 32], "counts": "0"}]
            break
    p = write_bench(rows, tmp_path / "bench.parquet")
    s = write_jsonl([{"question_id": "det-0", "answer": "yes"}], tmp_path / "s.jsonl")
    r = _cli("score", "--bench", p, "--submission", s, "--out", tmp_path / "o")
    assert r.returncode == 2 and "invalid reference mask" in r.stderr and "Traceback" not in r.stderr


def test_invalid_query_mask_in_bench_is_refused(tmp_path):
    rows = make_bench(seed=6, n_det=2, n_cls=0, n_text=0, n_loc=0, n_age=0)
    rows[1]["task"] = "rq_mask"
    rows[1]["query_mask"] = {"size": [24, 32], "counts": "garbage counts"}
    p = write_bench(rows, tmp_path / "bench.parquet")
    s = write_jsonl([{"question_id": rows[0]["question_id"], "answer": "yes"}], tmp_path / "s.jsonl")
    r = _cli("score", "--bench", p, "--submission", s, "--out", tmp_path / "o")
    assert r.returncode == 2 and "invalid query_mask" in r.stderr and rows[1]["question_id"] in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_size_limits_are_clear_errors(bench, good, tmp_path):
    from fifa.benchmarks.bench import load_bench
    from fifa.benchmarks.submission import SubmissionError, SubmissionLimits, load_submission

    b = load_bench(bench[1])
    p = write_jsonl(good, tmp_path / "s.jsonl")
    with pytest.raises(SubmissionError, match="file too large"):
        load_submission(p, b, limits=SubmissionLimits(max_bytes=100))
    with pytest.raises(SubmissionError, match="line 1 is longer than"):
        load_submission(p, b, limits=SubmissionLimits(max_line_bytes=10))
    many = good + [dict(good[0], question_id=f"extra-{k}") for k in range(len(b))]
    pq.write_table(
        pa.Table.from_pylist([{"question_id": r["question_id"], "answer": r.get("answer")} for r in many]),
        tmp_path / "many.parquet",
    )
    for path in (write_jsonl(many, tmp_path / "many.jsonl"), tmp_path / "many.parquet"):
        with pytest.raises(SubmissionError, match="too many rows"):
            load_submission(path, b, limits=SubmissionLimits(max_rows=len(b)))
    long = [dict(good[0], answer="x" * 300_000)] + good[1:]
    with pytest.raises(SubmissionError, match="longer than 200000 characters"):
        load_submission(write_jsonl(long, tmp_path / "long.jsonl"), b)
