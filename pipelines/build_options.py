"""The library half of ``fifa-data build``: its options, a :class:`~fifa.pipelines.build.BuildConfig` from
command-line values, and the line that reports a build.

Each option is bound to a ``BuildConfig`` field (:class:`~fifa.cli_options.FieldOption`): its default and type are
the field's, written once, in the config; ``fifa-data build`` (:mod:`fifa.pipelines.build_cli`) is generated from
:data:`BUILD_OPTIONS`, and :func:`build_config` reads the same list.

    config = build_config(tasks="det,cls", split_ratios="0.8,0.1,0.1", review=["ana.json"], fc_llm="offline")
    summary = build(["ann/"], "build/", config)
    print(summary_line(summary))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fifa.cli_options import CliOption, FieldOption, config_from, option_parameters
from fifa.core.choices import choices_of

from .build import BuildConfig, BuildError, BuildSummary, ChoiceError
from .splits import SplitRatios


def _tasks(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _ratios(text: str) -> SplitRatios:
    try:
        return SplitRatios.parse(text)
    except ValueError as e:
        raise BuildError(str(e)) from None


def _ratios_text(r: SplitRatios) -> str:
    return f"{r.train:g},{r.validation:g},{r.test:g}"


def _path(p: Any) -> str | None:
    return str(p) if p else None


def _paths(ps: Any) -> tuple[str, ...] | None:
    return tuple(str(p) for p in ps) if ps else None


_FILE = {"exists": True, "dir_okay": False, "metavar": "FILE"}
_CHOICES = {name: " | ".join(values) for name, values in choices_of(BuildConfig).items()}

#: the options of ``fifa-data build`` after ``--annotations`` and ``--out``, in ``--help`` order
BUILD_OPTIONS: list[FieldOption | CliOption] = [
    FieldOption("seed", "seed", "Seed of every choice (templates, queries, splits)."),
    FieldOption("tasks", "tasks", "Comma-separated tasks.", annotation=str, from_config=",".join, to_config=_tasks),
    FieldOption(
        "split_ratios",
        "ratios",
        "train,validation,test shares of the split units (groups linked by identities; from 3 units on each split "
        "gets one).",
        annotation=str,
        from_config=_ratios_text,
        to_config=_ratios,
    ),
    FieldOption("rq_queries", "rq_queries", "Positive region queries per fake and rq task (at most)."),
    FieldOption("negative_fraction", "negative_fraction", "Share of negative region queries of a fake."),
    FieldOption("real_queries", "real_queries", "Negative region queries per real image and rq task."),
    FieldOption(
        "bench_per_class",
        "bench_per_class",
        "At most this many bench questions per task and class (0: no cap).",
        annotation=int,
        from_config=lambda n: n or 0,
        to_config=lambda n: n or None,
    ),
    # the two choices stay text: BuildConfig checks them (one place) and the error names the option
    FieldOption("bench_cls", "bench_cls", f"The cls question the bench asks: {_CHOICES['bench_cls']}.", annotation=str),
    FieldOption(
        "methods",
        "methods",
        "Extra methods YAML (definitions for cls answers).",
        annotation=Path | None,
        to_config=_path,
        typer_kw={"exists": True, "dir_okay": False},
    ),
    FieldOption(
        "review",
        "review",
        "Review file of fifa-data view (repeatable: one per reviewer): rejected annotations are left out.",
        annotation=list[Path] | None,
        to_config=_paths,
        typer_kw=_FILE,
    ),
    FieldOption(
        "review_rule",
        "review_rule",
        f"How several reviewers' decisions combine ({_CHOICES['review_rule']}): all (kept only if every reviewer who "
        "decided accepted), majority (more accepts than rejects), any (one accept).",
        annotation=str,
    ),
    FieldOption(
        "extra_qa",
        "extra_qa",
        "<manifest stem>.qa.parquet of an importer (repeatable).",
        annotation=list[Path] | None,
        from_config=lambda v: list(v) or None,
        to_config=lambda v: _paths(v) or (),
        typer_kw=_FILE,
    ),
    FieldOption(
        "image_root",
        "image_root",
        "Folder image paths are stored relative to (default: the common folder of all images).",
        annotation=Path | None,
        to_config=_path,
    ),
    FieldOption("fc_llm", "fc.llm", "fc conversations: offline | openai."),
    FieldOption("base_url", "fc.openai.base_url", "OpenAI-compatible endpoint (fc)."),
    FieldOption("model", "fc.openai.model", "Model name (fc)."),
    CliOption(
        "api_key_file",
        Path | None,
        None,
        "File holding the API key (else $OPENAI_API_KEY).",
        typer_kw={"exists": True, "dir_okay": False},
    ),
    FieldOption("fc_concurrency", "fc.concurrency", "Requests in flight (fc)."),
    FieldOption("fc_max_cost", "fc.max_cost", "Budget in USD for fc requests."),
    CliOption("cache_dir", Path | None, None, "Response cache (default $FIFA_CACHE_DIR/llm)."),
]
#: the generated parameters of the options (typer's); their defaults are the command line's, from BuildConfig
BUILD_PARAMETERS = option_parameters(BuildConfig, BUILD_OPTIONS)
OPTION_DEFAULTS: dict[str, Any] = {p.name: p.default for p in BUILD_PARAMETERS}


def build_config(**values: Any) -> BuildConfig:
    """The build's settings as the command line gives them, by option name (:data:`BUILD_OPTIONS`; the others at
    their defaults, BuildConfig's): ``tasks`` comma-separated, ``split_ratios`` ``"train,validation,test"``,
    ``bench_per_class`` 0 for no cap, paths as paths; the fc conversations' OpenAI settings (the key is read from
    ``api_key_file``, else ``$OPENAI_API_KEY``, only for ``fc_llm="openai"``; ``cache_dir`` default
    ``$FIFA_CACHE_DIR/llm``). Raises :class:`~fifa.pipelines.build.BuildError` for bad split ratios or a choice
    outside its choices (named as the command line names it)."""
    from fifa.core.llm import read_api_key
    from fifa.core.llm_cache import default_cache_dir

    unknown = sorted(values.keys() - OPTION_DEFAULTS.keys())
    if unknown:
        raise TypeError(f"build_config() got unknown option(s) {', '.join(unknown)}")
    kw = {**OPTION_DEFAULTS, **values}
    fc_llm = getattr(kw["fc_llm"], "value", kw["fc_llm"])
    try:
        return config_from(
            BuildConfig,
            BUILD_OPTIONS,
            kw,
            fc__openai__api_key=read_api_key(kw["api_key_file"]) if fc_llm == "openai" else None,
            fc__openai__cache_dir=str(kw["cache_dir"] or default_cache_dir()),
        )
    except ChoiceError as e:  # named as the command line names it
        option = "--" + e.field.replace("_", "-")
        raise BuildError(f"{option} must be one of {', '.join(e.choices)}, got {e.value!r}") from None


def summary_line(s: BuildSummary) -> str:
    """What a build wrote, in one line (rows per split, bench questions, annotations kept, left out)."""
    return (
        f"wrote {s.out}: {s.rows.get('train', 0)} train, {s.rows.get('validation', 0)} validation rows, "
        f"{s.bench} bench questions from {s.annotations['kept']} of {s.annotations['read']} annotations"
        + (f"; left out: {s.left_out}" if s.left_out else "")
    )
