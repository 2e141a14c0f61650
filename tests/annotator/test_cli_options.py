"""`fifa-annotate run/retry` options are generated from AnnotateConfig: every default written once, in the config."""

from __future__ import annotations

import dataclasses
from enum import Enum

import pytest

from fifa.annotator.cli import RUN_OPTION_SPECS, RUN_OPTIONS, _config, app
from fifa.annotator.run import AnnotateConfig
from fifa.cli_options import CliOption, FieldOption, field_default
from fresh_python import fresh_json

# A changed default in each config class the options reach (AnnotateConfig, DiffConfig, RegionSelectConfig,
# OpenAIConfig), then what `run --help` and the generated parameters show. Run in a fresh interpreter: the
# options are generated when the CLI module is imported.
_CHANGED = r"""
import dataclasses, json
from fifa.annotator.diffmask import DiffConfig
from fifa.annotator.regions import RegionSelectConfig
from fifa.annotator.run import AnnotateConfig
from fifa.core.llm import OpenAIConfig

changes = {
    DiffConfig: {"noise_floor": 0.77, "top_percent": 3.5},
    RegionSelectConfig: {"min_coverage": 0.41, "min_share": 0.11, "parent_fraction": 0.66},
    AnnotateConfig: {"shard_rows": 321, "llm_image_size": 640, "llm_jpeg_quality": 77, "concurrency": 5,
                     "workers": 3, "executor": "ray", "llm": "openai", "progress": False, "limit": 9,
                     "max_cost": 1.5, "ray_address": "auto", "segmenter": "dlib68", "dry_run": True},
    OpenAIConfig: {"model": "changed-model", "timeout": 12.5, "max_retries": 2, "retry_max_wait": 7.0,
                   "price_in_per_mtok": 1.25, "price_out_per_mtok": 4.5, "image_detail": "high",
                   "base_url": "http://x/v1"},
}
for cls, values in changes.items():
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        fields[name].default = value

from typer.testing import CliRunner
from fifa.annotator.cli import RUN_OPTIONS, app

help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"}).output
defaults = {p.name: getattr(p.default, "value", p.default) for p in RUN_OPTIONS}
print(json.dumps({"help": help_text, "defaults": defaults}))
"""


def test_changed_config_defaults_show_up_in_the_cli():
    got = fresh_json(_CHANGED)
    assert got["defaults"] == {
        "llm": "openai",
        "base_url": "http://x/v1",
        "model": "changed-model",
        "api_key_file": None,
        "concurrency": 5,
        "workers": 3,
        "executor": "ray",
        "ray_address": "auto",
        "segmenter": "dlib68",
        "timeout": 12.5,
        "max_retries": 2,
        "retry_max_wait": 7.0,
        "cache_dir": None,
        "no_cache": False,
        "max_cost": 1.5,
        "price_in": 1.25,
        "price_out": 4.5,
        "image_size": 640,
        "jpeg_quality": 77,
        "image_detail": "high",
        "diff_top_percent": 3.5,
        "noise_floor": 0.77,
        "min_coverage": 0.41,
        "min_share": 0.11,
        "parent_fraction": 0.66,
        "data_root": None,
        "allow_outside_root": False,
        "shard_rows": 321,
        "limit": 9,
        "dry_run": True,
        "no_progress": True,  # progress=False
        "verbose": False,
    }
    text = " ".join(got["help"].split())  # wrapped lines joined
    assert "--model <str> Model name for --llm openai. [default: changed-model]" in text
    assert "--shard-rows <int> Rows per output shard. [default: 321]" in text
    assert "never set below this. [default: 0.77]" in text
    assert "--image-detail <low|high|auto> Image detail asked of the LLM. [default: high]" in text


def test_only_the_cli_own_options_have_defaults_written_in_the_cli():
    """Every other option is a config field's: a default repeated in the CLI would be a CliOption here."""
    own = {o.name for o in RUN_OPTION_SPECS if isinstance(o, CliOption)}
    assert own == {"api_key_file", "cache_dir", "no_cache", "verbose"}
    assert [p.name for p in RUN_OPTIONS] == [o.name for o in RUN_OPTION_SPECS]


def test_defaults_are_the_config_fields():
    params = {p.name: p.default for p in RUN_OPTIONS}
    for opt in RUN_OPTION_SPECS:
        if isinstance(opt, FieldOption):
            value = params[opt.name].value if isinstance(params[opt.name], Enum) else params[opt.name]
            assert (not value if opt.invert else value) == field_default(AnnotateConfig, opt.path), opt.name


def _parsed(*args: str) -> dict:
    import typer.main

    cmd = typer.main.get_command(app).commands["run"]
    return cmd.make_context("run", ["--out", "o", *args]).params


def test_parsed_options_land_in_their_config_fields(tmp_path):
    cfg = _config(
        _parsed(
            "--noise-floor",
            "0.9",
            "--min-share",
            "0.2",
            "--price-in",
            "3",
            "--image-detail",
            "auto",
            "--no-progress",
            "--data-root",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "c"),
            "--executor",
            "local",
            "--shard-rows",
            "7",
        )  # fmt: skip
    )
    assert cfg.diff.noise_floor == 0.9 and cfg.diff.top_percent == 5.0
    assert cfg.select.min_share == 0.2 and cfg.select.min_coverage == 0.30
    assert cfg.openai.price_in_per_mtok == 3.0 and cfg.openai.image_detail == "auto"
    assert cfg.openai.cache_dir == str(tmp_path / "c") and cfg.openai.api_key is None
    assert cfg.progress is False and cfg.data_root == str(tmp_path) and cfg.shard_rows == 7
    assert cfg.llm == "offline" and cfg.executor == "local" and cfg.segmenter == "mediapipe"
    assert _config(_parsed("--no-cache")).openai.cache_dir is None
    plain = _config(_parsed())  # no option given: the config's own defaults (and the default cache folder)
    assert plain.openai.cache_dir
    assert plain == dataclasses.replace(
        AnnotateConfig(), openai=dataclasses.replace(AnnotateConfig().openai, cache_dir=plain.openai.cache_dir)
    )


def test_config_is_frozen_and_checks_its_literals():
    cfg = AnnotateConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.llm = "openai"  # type: ignore[misc]
    with pytest.raises(ValueError, match="llm must be one of offline, openai"):
        AnnotateConfig(llm="gpt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="executor must be one of local, ray"):
        AnnotateConfig(executor="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency"):
        AnnotateConfig(concurrency=0)
