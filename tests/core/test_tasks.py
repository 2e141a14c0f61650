"""The task registry (fifa.core.tasks): the nine tasks of DESIGN.md, and the stages that read it agree with it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from fifa.core.tasks import (
    GROUNDING_METRICS,
    MASK_TASKS,
    REGION_QUERY_TASKS,
    TASK_IDS,
    TASKS,
    TEXT_METRICS,
    TEXT_TASKS,
    Task,
    task_order,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_nine_tasks_of_design_in_report_order():
    assert TASK_IDS == ("det", "cls", "toe", "age", "loc", "rq_name", "rq_mask", "rq_box", "fc")
    assert TEXT_TASKS == ("toe", "age", "rq_name", "rq_mask", "rq_box", "fc")
    assert MASK_TASKS == ("age", "loc") and REGION_QUERY_TASKS == ("rq_name", "rq_mask", "rq_box")
    assert {t.id: t.answer for t in TASKS.values()} == {
        "det": "yes_no",
        "cls": "class",
        "toe": "text",
        "age": "grounded_text",
        "loc": "mask",
        "rq_name": "text",
        "rq_mask": "text",
        "rq_box": "text",
        "fc": "text",
    }
    assert [TASKS[t].region_query for t in REGION_QUERY_TASKS] == ["name", "mask", "box"]
    assert {t: TASKS[t].main_metric for t in TASK_IDS} == {
        "det": "auc",
        "cls": "acc",
        "loc": "giou",
        "age": "giou",
        **{t: "rouge_l" for t in TEXT_TASKS if t != "age"},
    }
    assert set(GROUNDING_METRICS) < set(TASKS["age"].metrics) and "miou" in TASKS["age"].metrics


def test_order_and_checks():
    assert sorted(["fc", "zz", "det", "age", "aa"], key=task_order) == ["det", "age", "fc", "aa", "zz"]
    with pytest.raises(ValueError, match="main metric"):
        Task("x", "x", "text", TEXT_METRICS, "giou", text=True)
    with pytest.raises(ValueError, match="disagrees"):
        Task("x", "x", "mask", ("giou",), "giou", text=True)


def test_question_sets_are_the_templates_the_build_requires():
    from fifa.pipelines.templates import REQUIRED_SETS

    questions = yaml.safe_load((ROOT / "pipelines" / "templates" / "questions.yaml").read_text("utf-8"))
    sets = [s for t in TASKS.values() for s in t.question_sets]
    assert REQUIRED_SETS == ("det", "cls_method", "cls_category", "toe", "age", "loc", "rq_name", "rq_mask", "rq_box")
    assert tuple(sets) == REQUIRED_SETS and all(s in questions for s in sets)


def test_build_default_tasks_cli_and_card_read_the_registry():
    from fifa.pipelines.build import BuildConfig
    from fifa.pipelines.card import _stats_tables

    assert BuildConfig().tasks == TASK_IDS
    bt = {t: {"train": 1} for t in ("loc", "zz")}
    table = _stats_tables(
        {
            "rows": {"by_task_split": bt},
            "annotations": {"by_split_method": {}, "by_split_category": {}},
            "bench": {"by_task_class": {}},
        }
    )
    assert f"| `loc` | {TASKS['loc'].title} | 1 | 0 | 0 |" in table and "| `zz` |  | 1 | 0 | 0 |" in table


def test_the_scorer_reports_each_task_as_the_registry_says(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "bench"))
    from bench_helpers import make_bench, make_submission, write_bench, write_jsonl

    from fifa.benchmarks.scoring import score

    bench = make_bench(n_det=12, n_cls=8, n_text=4, n_loc=4, n_age=4)
    for task in REGION_QUERY_TASKS:  # the helper's bench has no region queries: text rows under their ids
        bench += [dict(r, task=task, question_id=f"{task}-{r['question_id']}") for r in bench if r["task"] == "toe"]
    rep = score(
        write_bench(bench, tmp_path / "bench.parquet"),
        write_jsonl(make_submission(bench), tmp_path / "s.jsonl"),
        bootstrap=0,
        use_java=False,
        meteor=False,
    ).to_dict()
    assert sorted(k for k in rep if k != "_meta") == sorted(TASK_IDS)
    assert list(rep)[:-1] == list(TASK_IDS)  # report order
    for t in TASK_IDS:
        expected = set(TASKS[t].metrics) - {"meteor"} - (set(GROUNDING_METRICS) if t == "age" else set())
        assert set(rep[t]) - {"n"} == expected, t  # no Java: no METEOR; no mask_node_ids: no grounding
        assert rep["_meta"]["tasks"][t]["main_metric"] == TASKS[t].main_metric, t
