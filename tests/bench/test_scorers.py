"""The registry of task scorers (fifa.benchmarks.scorers) and the library behind ``fifa-bench score``
(fifa.benchmarks.score_run): real Parquet benches and JSONL submissions from bench_helpers."""

from __future__ import annotations

import dataclasses
import json
from typing import get_args

import pytest
from bench_helpers import make_bench, make_submission, write_bench, write_jsonl

from fifa.benchmarks.bench import load_bench
from fifa.benchmarks.score_run import judge_config, score_to_folder, validate_inputs
from fifa.benchmarks.scorers import (
    SCORERS,
    SCORERS_BY_ANSWER,
    ScoreContext,
    ScoreState,
    score_grounding,
    score_judge,
    score_masks,
    score_text,
    score_yes_no,
    scorer_tasks,
)
from fifa.benchmarks.scoring import score
from fifa.benchmarks.submission import load_submission
from fifa.core.errors import UserError
from fifa.core.tasks import TASKS, AnswerKind


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A bench without text tasks (no JVM, no tokenizer) and a submission to it."""
    d = tmp_path_factory.mktemp("scorers")
    rows = make_bench(n_det=20, n_cls=12, n_text=0, n_age=0, n_loc=8)
    return write_bench(rows, d / "bench.parquet"), write_jsonl(make_submission(rows, p_drop=0.1), d / "sub.jsonl")


def test_every_answer_kind_goes_through_registered_scorers():
    assert set(SCORERS_BY_ANSWER) == set(get_args(AnswerKind))
    assert all(name in SCORERS for names in SCORERS_BY_ANSWER.values() for name in names)
    assert {t.answer for t in TASKS.values()} <= set(SCORERS_BY_ANSWER)


def test_scorer_tasks_run_order_and_task_order():
    plan = scorer_tasks(["age", "det", "fc", "loc", "zz"])  # the bench's order; unknown tasks skipped
    assert plan == [
        (score_yes_no, ["det"]),
        (score_text, ["age", "fc"]),
        (score_judge, ["age", "fc"]),
        (score_masks, ["age", "loc"]),
        (score_grounding, ["age"]),
    ]
    assert scorer_tasks(["zz"]) == []


def test_a_scorer_fills_the_state_as_score_does(files):
    b = load_bench(files[0])
    ctx = ScoreContext(b, load_submission(files[1], b), seed=3, resamples=50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.seed = 4  # type: ignore[misc]
    state = ScoreState()
    score_masks(ctx, ["loc"], state)
    rep = score(files[0], files[1], seed=3, bootstrap=50)
    assert state.tasks["loc"] == rep.tasks["loc"]
    assert state.tmeta["loc"] == rep.meta["tasks"]["loc"]
    assert set(state.tasks) == {"loc"} and state.tmeta["loc"]["main_metric"] == "giou"


def test_score_to_folder_writes_what_score_reports(files, tmp_path):
    b, sub = validate_inputs(*files)
    report, path = score_to_folder(b, sub, tmp_path / "out", seed=1, bootstrap=20, plots=False)
    assert path == tmp_path / "out" / "report.json"
    written = json.loads(path.read_text())
    ref = score(files[0], files[1], seed=1, bootstrap=20).to_dict()
    written["_meta"].pop("created"), ref["_meta"].pop("created")
    assert written == json.loads(json.dumps(ref)) and set(written) == {"det", "cls", "loc", "_meta"}
    assert (tmp_path / "out" / "report.md").is_file() and not (tmp_path / "out" / "roc.png").exists()


def test_validate_inputs_turns_bad_files_into_user_errors(files, tmp_path):
    with pytest.raises(UserError, match="not in the bench"):
        validate_inputs(files[0], write_jsonl([{"question_id": "nope", "answer": "yes"}], tmp_path / "s.jsonl"))
    with pytest.raises(UserError, match="bench not found"):
        validate_inputs(tmp_path / "missing.parquet", files[1])
    with pytest.raises(UserError, match="--strict"):
        validate_inputs(
            files[0], write_jsonl([{"question_id": "det-0", "answer": "yes"}], tmp_path / "t.jsonl"), strict=True
        )


def test_judge_config_from_options(tmp_path):
    assert judge_config(None, max_cost=2.0) is None
    cfg = judge_config(
        "m",
        base_url="http://127.0.0.1:9/v1",
        max_cost=2.0,
        concurrency=3,
        images=False,
        price_in=1.0,
        price_out=4.0,
        cache_dir=tmp_path,
    )
    assert (cfg.model, cfg.base_url, cfg.max_cost, cfg.concurrency, cfg.images) == (
        "m",
        "http://127.0.0.1:9/v1",
        2.0,
        3,
        False,
    )
    assert (cfg.price_in_per_mtok, cfg.price_out_per_mtok, cfg.cache_dir) == (1.0, 4.0, str(tmp_path))
