"""`fifa-data build`: its options and their mapping onto :func:`~fifa.pipelines.build_options.build_config`
(registered on the ``fifa-data`` app by :mod:`fifa.pipelines.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_utils import setup_logging
from fifa.core.errors import UserError
from fifa.core.tasks import TASK_IDS

#: the examples under ``fifa-data build --help``
BUILD_EXAMPLES = (
    "fifa-data build --annotations ann/ --out build/ --seed 0",
    "fifa-data build --annotations ffpp_ann/ --annotations celebdf_ann/ --out build/ --review review.json",
    "fifa-data build --annotations ann/ --out build/ --review ana.json --review ben.json --review-rule majority",
    "fifa-data build --annotations ann/ --out build/ --tasks det,cls,age --split-ratios 0.7,0.1,0.2",
    "fifa-data build --annotations ann/ --out build/ --fc-llm openai --model gpt-4o-mini --fc-max-cost 5",
)

# the long options of `fifa-data build`
_Annotations = Annotated[
    list[Path],
    typer.Option(
        help="Annotation folder of fifa-annotate run (repeatable: several runs make one dataset).",
        exists=True,
        file_okay=False,
        metavar="DIR",
    ),
]
_SplitRatios = Annotated[
    str,
    typer.Option(
        help="train,validation,test shares of the split units (groups linked by identities; from 3 units on each split "
        "gets one)."
    ),
]
_Review = Annotated[
    list[Path] | None,
    typer.Option(
        help="Review file of fifa-data view (repeatable: one per reviewer): rejected annotations are left out.",
        exists=True,
        dir_okay=False,
        metavar="FILE",
    ),
]
_ReviewRule = Annotated[
    str,
    typer.Option(
        help="How several reviewers' decisions combine: all (kept only if every reviewer who decided accepted), "
        "majority (more accepts than rejects), any (one accept)."
    ),
]
_ExtraQA = Annotated[
    list[Path] | None,
    typer.Option(
        help="<manifest stem>.qa.parquet of an importer (repeatable).", exists=True, dir_okay=False, metavar="FILE"
    ),
]
_BenchPerClass = Annotated[int, typer.Option(help="At most this many bench questions per task and class (0: no cap).")]
_Methods = Annotated[
    Path | None, typer.Option(help="Extra methods YAML (definitions for cls answers).", exists=True, dir_okay=False)
]
_ImageRoot = Annotated[
    Path | None,
    typer.Option(help="Folder image paths are stored relative to (default: the common folder of all images)."),
]
_ApiKeyFile = Annotated[
    Path | None, typer.Option(help="File holding the API key (else $OPENAI_API_KEY).", exists=True, dir_okay=False)
]


def build(
    annotations: _Annotations,
    out: Annotated[Path, typer.Option(help="Build folder to write (replaced if it is a build).", file_okay=False)],
    seed: Annotated[int, typer.Option(help="Seed of every choice (templates, queries, splits).")] = 0,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks.")] = ",".join(TASK_IDS),
    split_ratios: _SplitRatios = "0.8,0.1,0.1",
    rq_queries: Annotated[int, typer.Option(help="Positive region queries per fake and rq task (at most).")] = 3,
    negative_fraction: Annotated[float, typer.Option(help="Share of negative region queries of a fake.")] = 1 / 3,
    real_queries: Annotated[int, typer.Option(help="Negative region queries per real image and rq task.")] = 2,
    bench_per_class: _BenchPerClass = 500,
    bench_cls: Annotated[str, typer.Option(help="cls bench question: method | category.")] = "method",
    methods: _Methods = None,
    review: _Review = None,
    review_rule: _ReviewRule = "all",
    extra_qa: _ExtraQA = None,
    image_root: _ImageRoot = None,
    fc_llm: Annotated[str, typer.Option(help="fc conversations: offline | openai.")] = "offline",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (fc).")] = None,
    model: Annotated[str, typer.Option(help="Model name (fc).")] = "gpt-4o-mini",
    api_key_file: _ApiKeyFile = None,
    fc_concurrency: Annotated[int, typer.Option(help="Requests in flight (fc).")] = 8,
    fc_max_cost: Annotated[float | None, typer.Option(help="Budget in USD for fc requests.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Response cache (default $FIFA_CACHE_DIR/llm).")] = None,
    progress: Annotated[bool, typer.Option(help="Progress bar.")] = True,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> int:
    """Instruction data (train/validation), the bench (test) and statistics from annotation folders.

    Writes BUILD/instruct/{train,validation}.parquet, BUILD/bench.parquet, BUILD/annotations/,
    BUILD/stats.json and BUILD/build.json. Exit 1 when fc conversations were left out (budget, failures).
    """
    setup_logging(verbose)
    return _run_build(
        annotations,
        out,
        progress,
        seed=seed,
        tasks=tasks,
        split_ratios=split_ratios,
        rq_queries=rq_queries,
        negative_fraction=negative_fraction,
        real_queries=real_queries,
        bench_per_class=bench_per_class,
        bench_cls=bench_cls,
        methods=methods,
        review=review,
        review_rule=review_rule,
        extra_qa=extra_qa,
        image_root=image_root,
        fc_llm=fc_llm,
        base_url=base_url,
        model=model,
        api_key_file=api_key_file,
        fc_concurrency=fc_concurrency,
        fc_max_cost=fc_max_cost,
        cache_dir=cache_dir,
    )


def _run_build(annotations: list[Path], out: Path, progress: bool, **options) -> int:
    """Build with the settings ``options`` (:func:`~fifa.pipelines.build_options.build_config`'s), print the
    warnings and the summary line; exit code 1 when fc conversations were left out."""
    from .build import BuildError
    from .build import build as run_build
    from .build_options import build_config, summary_line

    try:
        s = run_build([str(a) for a in annotations], out, build_config(**options), progress=progress)
    except BuildError as e:
        raise UserError(str(e)) from None
    for w in s.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(summary_line(s))
    return 0 if s.complete else 1
