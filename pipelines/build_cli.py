"""`fifa-data build`: the command (registered on the ``fifa-data`` app by :mod:`fifa.pipelines.cli`); its options
after ``--annotations`` and ``--out`` are generated from :class:`~fifa.pipelines.build.BuildConfig`
(:data:`~fifa.pipelines.build_options.BUILD_OPTIONS`: each default written once, in the config) and mapped onto
it by :func:`~fifa.pipelines.build_options.build_config`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fifa.cli_options import CliOption, option_parameters, with_options
from fifa.cli_utils import setup_logging
from fifa.core.errors import UserError

from .build import BuildConfig
from .build_options import BUILD_PARAMETERS

#: the examples under ``fifa-data build --help``
BUILD_EXAMPLES = (
    "fifa-data build --annotations ann/ --out build/ --seed 0",
    "fifa-data build --annotations ffpp_ann/ --annotations celebdf_ann/ --out build/ --review review.json",
    "fifa-data build --annotations ann/ --out build/ --review ana.json --review ben.json --review-rule majority",
    "fifa-data build --annotations ann/ --out build/ --tasks det,cls,age --split-ratios 0.7,0.1,0.2",
    "fifa-data build --annotations ann/ --out build/ --fc-llm openai --model gpt-4o-mini --fc-max-cost 5",
)

_Annotations = Annotated[
    list[Path],
    typer.Option(
        help="Annotation folder of fifa-annotate run (repeatable: several runs make one dataset).",
        exists=True,
        file_okay=False,
        metavar="DIR",
    ),
]
_Out = Annotated[Path, typer.Option(help="Build folder to write (replaced if it is a build).", file_okay=False)]
#: the command's own options after the generated ones
_OWN = [
    CliOption("progress", bool, True, "Progress bar."),
    CliOption("verbose", bool, False, "Debug logging.", ("-v", "--verbose")),
]


@with_options([*BUILD_PARAMETERS, *option_parameters(BuildConfig, _OWN)])
def build(annotations: _Annotations, out: _Out, **kw: Any) -> int:
    """Instruction data (train/validation), the bench (test) and statistics from annotation folders.

    Writes BUILD/instruct/{train,validation}.parquet, BUILD/bench.parquet, BUILD/annotations/,
    BUILD/stats.json and BUILD/build.json. Exit 1 when fc conversations were left out (budget, failures).
    """
    setup_logging(kw.pop("verbose"))
    progress = kw.pop("progress")
    return _run_build(annotations, out, progress, **kw)


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
