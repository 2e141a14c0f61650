"""The library half of `fifa-data build`: command-line values -> BuildConfig, the command's options generated from
BuildConfig (every default written once, in the config), and the report line."""

from __future__ import annotations

import dataclasses

import pytest

from fifa.core.tasks import TASK_IDS
from fifa.pipelines.build import BuildConfig, BuildError, BuildSummary
from fifa.pipelines.build_options import build_config, summary_line
from fresh_python import fresh_json


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


# ------------------------------------------------------------------ the command's defaults are BuildConfig's
def _parsed_defaults(tmp_path) -> dict:
    """What `fifa-data build` parses from its required options only (click, as the command runs)."""
    import typer

    from fifa.pipelines.cli import app

    cmd = typer.main.get_command(app).commands["build"]  # type: ignore[attr-defined]
    ctx = cmd.make_context("build", ["--annotations", str(tmp_path), "--out", str(tmp_path / "b")])
    params = dict(ctx.params)
    for own in ("annotations", "out", "progress", "verbose"):
        params.pop(own)
    return params


def test_every_build_config_default_is_the_command_lines(tmp_path):
    """The config built from the command's parsed defaults is BuildConfig(), field for field, nested fc and
    openai included (the response cache folder aside: the command fills it in)."""
    got = build_config(**_parsed_defaults(tmp_path))
    assert got.fc.openai.cache_dir
    no_cache = dataclasses.replace(got.fc.openai, cache_dir=None)
    assert dataclasses.replace(got, fc=dataclasses.replace(got.fc, openai=no_cache)) == BuildConfig()


# A changed default in each config class the options reach, then what `build --help` and the generated
# parameters show (a fresh interpreter: the options are generated when the modules are imported).
_CHANGED = r"""
import dataclasses, json
from fifa.core.llm import OpenAIConfig
from fifa.pipelines.build import BuildConfig
from fifa.pipelines.conversation import ConversationConfig
from fifa.pipelines.splits import SplitRatios

changes = {
    BuildConfig: {"seed": 7, "rq_queries": 5, "negative_fraction": 0.25, "real_queries": 4, "bench_per_class": None,
                  "bench_cls": "category", "review_rule": "majority", "tasks": ("det", "loc"), "image_root": "imgs",
                  "ratios": SplitRatios(0.6, 0.2, 0.2)},
    ConversationConfig: {"llm": "openai", "concurrency": 3, "max_cost": 2.5,
                         "openai": OpenAIConfig(model="changed-model", base_url="http://x/v1")},
}
for cls, values in changes.items():
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        fields[name].default, fields[name].default_factory = value, dataclasses.MISSING

from typer.testing import CliRunner
from fifa.pipelines.build_options import OPTION_DEFAULTS
from fifa.pipelines.cli import app

help_text = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"}).output
print(json.dumps({"help": help_text, "defaults": OPTION_DEFAULTS}))
"""


def test_changed_config_defaults_show_up_in_the_command_line():
    got = fresh_json(_CHANGED)
    assert got["defaults"] == {
        "seed": 7,
        "tasks": "det,loc",
        "split_ratios": "0.6,0.2,0.2",
        "rq_queries": 5,
        "negative_fraction": 0.25,
        "real_queries": 4,
        "bench_per_class": 0,
        "bench_cls": "category",
        "methods": None,
        "review": None,
        "review_rule": "majority",
        "extra_qa": None,
        "image_root": "imgs",
        "fc_llm": "openai",
        "base_url": "http://x/v1",
        "model": "changed-model",
        "api_key_file": None,
        "fc_concurrency": 3,
        "fc_max_cost": 2.5,
        "cache_dir": None,
    }
    for shown in ("[default: 7]", "[default: det,loc]", "[default: 0.6,0.2,0.2]", "[default: changed-model]"):
        assert shown in got["help"], shown
    assert "Example" in got["help"]
