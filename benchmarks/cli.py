"""``fifa-bench``: score DFA-Bench submissions and compare reports (typer, over the library API)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from fifa.cli_utils import UserError, command, examples, make_app, run_app

app = make_app(
    "DFA-Bench scoring: validated submissions, reference-exact metrics, reports.",
    epilog=examples("fifa-bench score --bench bench.parquet --submission preds.jsonl --out report/",
                    "fifa-bench compare report/ other_report/"),
)


@command(app, "fifa-bench score --bench BUILD/bench.parquet --submission preds.jsonl --out runs/tiny",
         "fifa-bench score --bench bench.parquet --submission preds.parquet --out out --strict --bootstrap 0")
def score(
    bench: Annotated[Path, typer.Option(help="Bench Parquet file.", dir_okay=False)],
    submission: Annotated[Path, typer.Option(help="Submission (.parquet or .jsonl).", dir_okay=False)],
    out: Annotated[Path, typer.Option(help="Output folder for the report.", file_okay=False)],
    strict: Annotated[bool, typer.Option(help="Refuse a submission that misses bench questions.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs (0 disables).")] = 1000,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the PNG plots.")] = False,
    no_meteor: Annotated[bool, typer.Option("--no-meteor",
                                            help="Skip METEOR (the slowest metric; a warning says so).")] = False,
) -> None:
    """Score a submission against a bench and write a report.

    Writes OUT/report.json, OUT/report.md and PNG plots (roc.png, confusion.png, per_method.png).
    An invalid submission (unreadable file, missing question_id, duplicate or unknown ids, wrong
    types, NaN/out-of-range scores, bad masks) exits with status 2 and a message listing up to 10
    offending ids.
    """
    from .bench import BenchError, load_bench
    from .leaderboard import leaderboard
    from .submission import SubmissionError, load_submission

    try:  # validate before the heavier metric imports, so a bad file fails fast
        b = load_bench(bench)
        sub = load_submission(submission, b, strict=strict)
    except (SubmissionError, BenchError) as e:
        raise UserError(str(e)) from None
    from .scoring import score as run_score

    report = run_score(b, sub, strict=strict, seed=seed, bootstrap=bootstrap, meteor=not no_meteor)
    path = report.write(out, plots=not no_plots)
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(leaderboard({out.name or str(out): report.to_dict()}, "md", full=True))
    typer.echo(f"report: {path}")


class TableFormat(str, Enum):
    table = "table"
    md = "md"


@command(app, "fifa-bench compare runs/baseline runs/lora-r16 runs/lora-r64",
         "fifa-bench compare runs/* --format md > leaderboard.md")
def compare(
    dirs: Annotated[list[str], typer.Argument(help="Report folders (holding report.json) or report.json files.")],
    fmt: Annotated[TableFormat, typer.Option("--format", help="Rich table for the terminal or a Markdown table.")]
    = TableFormat.table,
    sort_by: Annotated[Optional[str], typer.Option("--sort", help="Sort rows by this TASK/METRIC column (descending).")]
    = None,
) -> None:
    """Leaderboard of several reports (folders holding report.json, or report.json files)."""
    from .leaderboard import ReportReadError, leaderboard, read_reports, sort_reports

    try:
        reports = read_reports(dirs)
    except ReportReadError as e:
        raise UserError(str(e)) from None
    if sort_by:
        reports = sort_reports(reports, sort_by)
    typer.echo(leaderboard(reports, fmt.value))


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-bench")


if __name__ == "__main__":
    main()
