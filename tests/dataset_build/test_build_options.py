"""The library half of `fifa-data build`: command-line values -> BuildConfig, and the report line."""

from __future__ import annotations

import pytest

from fifa.core.tasks import TASK_IDS
from fifa.pipelines.build import BuildConfig, BuildError, BuildSummary
from fifa.pipelines.build_options import build_config, summary_line


def test_build_config_reads_command_line_values(tmp_path):
    review = tmp_path / "ana.json"
    c = build_config(
        tasks=" det, cls ,",
        split_ratios="0.6,0.2,0.2",
        bench_per_class=0,
        review=[review],
        extra_qa=[tmp_path / "x.qa.parquet"],
        methods=tmp_path / "m.yaml",
        cache_dir=tmp_path,
    )
    assert c.tasks == ("det", "cls")
    assert (c.ratios.train, c.ratios.validation, c.ratios.test) == (0.6, 0.2, 0.2)
    assert c.bench_per_class is None  # 0: no cap
    assert c.review == (str(review),) and c.extra_qa == (str(tmp_path / "x.qa.parquet"),)
    assert c.methods == str(tmp_path / "m.yaml") and c.image_root is None
    assert c.fc.llm == "offline" and c.fc.openai.api_key is None and c.fc.openai.cache_dir == str(tmp_path)


def test_build_config_defaults_are_the_library_defaults(tmp_path):
    c = build_config(cache_dir=tmp_path)
    d = BuildConfig()
    assert c.tasks == TASK_IDS
    assert (
        c.seed,
        c.rq_queries,
        c.negative_fraction,
        c.real_queries,
        c.bench_per_class,
        c.bench_cls,
        c.review_rule,
    ) == (d.seed, d.rq_queries, d.negative_fraction, d.real_queries, d.bench_per_class, d.bench_cls, d.review_rule)
    assert c.ratios == d.ratios


def test_bad_split_ratios_are_a_build_error():
    with pytest.raises(BuildError, match="split ratios"):
        build_config(split_ratios="1,2")


def test_summary_line():
    s = BuildSummary("b", {"train": 5, "validation": 1}, 3, {"read": 10, "kept": 9}, {"failed": 1}, [])
    assert summary_line(s) == (
        "wrote b: 5 train, 1 validation rows, 3 bench questions from 9 of 10 annotations; left out: {'failed': 1}"
    )
    s.left_out = {}
    assert summary_line(s).endswith("from 9 of 10 annotations")
