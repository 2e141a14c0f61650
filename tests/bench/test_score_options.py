"""`fifa-bench score` options are generated from ScoreConfig and JudgeConfig: every default written once, in the
configs, and read from them by the library's `score`, `score_to_folder`, `judge_config` and `validate_inputs`."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
import typer.main
from typer.testing import CliRunner

from fifa.benchmarks import score_run, scoring
from fifa.benchmarks.cli import (
    JUDGE_OPTION_SPECS,
    SCORE_OPTION_SPECS,
    SCORE_OPTIONS,
    app,
    judge_config_from,
    score_config_from,
)
from fifa.benchmarks.judge import JudgeConfig
from fifa.benchmarks.score_config import ScoreConfig
from fifa.cli_options import CliOption, FieldOption, field_default
from fifa.core.errors import UserError
from fresh_python import fresh_json

from .bench_helpers import make_bench, make_submission, write_bench, write_jsonl

_SPECS = [(ScoreConfig, o) for o in SCORE_OPTION_SPECS] + [(JudgeConfig, o) for o in JUDGE_OPTION_SPECS]


def test_every_cli_default_is_the_configs():
    params = {p.name: p.default for p in SCORE_OPTIONS}
    assert list(params) == [o.name for _, o in _SPECS]
    assert {o.name for _, o in _SPECS if isinstance(o, CliOption)} == {"judge_model"}  # the rest: config fields
    for root, opt in _SPECS:
        if isinstance(opt, FieldOption):
            value = params[opt.name]
            assert (not value if opt.invert else value) == field_default(root, opt.path), opt.name


def _defaults(func) -> dict:
    return {n: p.default for n, p in inspect.signature(func).parameters.items() if p.default is not p.empty}


def test_the_library_reads_its_defaults_from_the_configs():
    score_fields = {f.name: f.default for f in dataclasses.fields(ScoreConfig)}
    assert _defaults(score_run.score_to_folder) == {**score_fields, "judge": None}
    assert _defaults(score_run.validate_inputs) == {"strict": score_fields["strict"]}
    want = {k: score_fields[k] for k in ("strict", "seed", "bootstrap", "meteor")}
    assert _defaults(scoring.score) == {**want, "use_java": None, "judge": None}
    judge = JudgeConfig(model="m")
    assert _defaults(score_run.judge_config) == {
        "base_url": judge.base_url,
        "max_cost": judge.max_cost,
        "concurrency": judge.concurrency,
        "images": judge.images,
        "price_in": judge.price_in_per_mtok,
        "price_out": judge.price_out_per_mtok,
        "cache_dir": judge.cache_dir,
    }
    assert score_run.judge_config("m") == judge and score_run.judge_config(None) is None


def test_the_server_scores_with_the_same_defaults():
    """`fifa-bench serve` scores every upload as `fifa-bench score` would: its options default to ScoreConfig's."""
    from fifa.benchmarks.cli import serve
    from fifa.benchmarks.serve import ScoreOptions

    cfg = ScoreConfig()
    assert ScoreOptions() == ScoreOptions(strict=cfg.strict, seed=cfg.seed, bootstrap=cfg.bootstrap, meteor=cfg.meteor)
    d = _defaults(serve)
    assert (d["strict"], d["seed"], d["bootstrap"], not d["no_meteor"]) == (
        cfg.strict,
        cfg.seed,
        cfg.bootstrap,
        cfg.meteor,
    )


def test_the_defaults_are_the_published_ones():
    """Behaviour unchanged: the values `fifa-bench score` had before they moved into the configs."""
    assert ScoreConfig() == ScoreConfig(strict=False, seed=0, bootstrap=1000, plots=True, meteor=True)
    j = JudgeConfig(model="m")
    assert (j.base_url, j.max_cost, j.concurrency, j.cache_dir, j.images) == (None, None, 8, None, True)
    assert (j.price_in_per_mtok, j.price_out_per_mtok) == (2.50, 10.00)
    with pytest.raises(dataclasses.FrozenInstanceError):
        j.concurrency = 2  # type: ignore[misc]


# A changed default in each config the options reach, then what `score --help` and the generated parameters show.
# Run in a fresh interpreter: the options are generated when the CLI module is imported.
_CHANGED = r"""
import dataclasses, json
from fifa.benchmarks.judge import JudgeConfig
from fifa.benchmarks.score_config import ScoreConfig

changes = {
    ScoreConfig: {"strict": True, "seed": 7, "bootstrap": 321, "plots": False, "meteor": False},
    JudgeConfig: {"base_url": "http://x/v1", "max_cost": 1.5, "concurrency": 3, "images": False,
                  "price_in_per_mtok": 1.25, "price_out_per_mtok": 4.5, "cache_dir": "/tmp/judge-cache"},
}
for cls, values in changes.items():
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        fields[name].default = value

from typer.testing import CliRunner
from fifa.benchmarks.cli import SCORE_OPTIONS, app

help_text = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"}).output
defaults = {p.name: p.default for p in SCORE_OPTIONS}
print(json.dumps({"help": help_text, "defaults": defaults}))
"""


def test_changed_config_defaults_show_up_in_the_cli():
    got = fresh_json(_CHANGED)
    assert got["defaults"] == {
        "strict": True,
        "seed": 7,
        "bootstrap": 321,
        "no_plots": True,
        "no_meteor": True,
        "judge_model": None,
        "judge_base_url": "http://x/v1",
        "judge_max_cost": 1.5,
        "judge_concurrency": 3,
        "judge_cache_dir": "/tmp/judge-cache",
        "judge_images": False,
        "judge_price_in": 1.25,
        "judge_price_out": 4.5,
    }
    text = " ".join(got["help"].split())  # wrapped lines joined
    assert "--bootstrap <int> Bootstrap resamples for the CIs (0 disables). [default: 321]" in text
    assert "[default: strict]" in text and "[default: no-judge-images]" in text
    assert "Judge requests in flight. [default: 3; x>=1]" in text


def _parsed(*args: str) -> dict:
    cmd = typer.main.get_command(app).commands["score"]
    return cmd.make_context("score", ["--bench", "b.parquet", "--submission", "s.jsonl", "--out", "o", *args]).params


def test_parsed_options_land_in_their_config_fields(tmp_path):
    kw = _parsed("--strict", "--seed", "3", "--no-plots", "--judge-model", "jm", "--judge-concurrency", "2")
    assert score_config_from(kw) == ScoreConfig(strict=True, seed=3, plots=False)
    assert judge_config_from(kw) == JudgeConfig(model="jm", concurrency=2)
    kw = _parsed(
        "--no-meteor", "--judge-model", "jm", "--judge-cache-dir", str(tmp_path), "--no-judge-images",
        "--judge-price-in", "1", "--judge-price-out", "2", "--judge-base-url", "http://h/v1", "--judge-max-cost", "3",
    )  # fmt: skip
    assert score_config_from(kw) == ScoreConfig(meteor=False)
    assert judge_config_from(kw) == JudgeConfig(
        model="jm",
        cache_dir=str(tmp_path),
        images=False,
        price_in_per_mtok=1.0,
        price_out_per_mtok=2.0,
        base_url="http://h/v1",
        max_cost=3.0,
    )
    plain = _parsed()  # no option given: the configs' own defaults, and no judge
    assert score_config_from(plain) == ScoreConfig() and judge_config_from(plain) is None
    with pytest.raises(UserError, match="need --judge-model"):
        judge_config_from(_parsed("--judge-max-cost", "1"))


def test_the_cli_with_its_defaults_scores_as_the_library_did(tmp_path):
    """Same report for the same inputs: the command with no option = `score` with the old literal defaults."""
    rows = make_bench(seed=5, n_det=30, n_cls=20, n_text=0, n_loc=8, n_age=0)
    bench = write_bench(rows, tmp_path / "bench.parquet")
    sub = write_jsonl(make_submission(rows, seed=2), tmp_path / "sub.jsonl")
    r = CliRunner().invoke(
        app, ["score", "--bench", str(bench), "--submission", str(sub), "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o" / "report.json").read_text())
    want = scoring.score(bench, sub, strict=False, seed=0, bootstrap=1000, meteor=True).to_dict()
    for t in ("det", "cls", "loc"):
        assert got[t] == json.loads(json.dumps(want[t])), t
        assert got["_meta"]["tasks"][t] == json.loads(json.dumps(want["_meta"]["tasks"][t])), t
    assert (tmp_path / "o" / "roc.png").is_file()  # plots: on by default
    # and each option reaches the scorer
    args = ["--out", str(tmp_path / "o2"), "--seed", "3", "--bootstrap", "50", "--no-plots", "--strict"]
    r = CliRunner().invoke(app, ["score", "--bench", str(bench), "--submission", str(sub), *args])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "o2" / "report.json").read_text())
    want = scoring.score(bench, sub, strict=True, seed=3, bootstrap=50).to_dict()
    assert got["_meta"]["tasks"]["det"] == json.loads(json.dumps(want["_meta"]["tasks"]["det"]))
    assert (
        got["_meta"]["tasks"]["det"]
        != json.loads(json.dumps(scoring.score(bench, sub).to_dict()))["_meta"]["tasks"]["det"]
    )
    assert not (tmp_path / "o2" / "roc.png").exists()
