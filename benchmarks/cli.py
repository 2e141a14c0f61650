"""``fifa-bench``: score DFA-Bench submissions and compare reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .bench import BenchError
from .submission import SubmissionError

SCORE_EPILOG = """\b
Example:
  fifa-bench score --bench BUILD/bench.parquet --submission preds.jsonl --out runs/tiny
  fifa-bench score --bench bench.parquet --submission preds.parquet --out out --strict --bootstrap 0

\b
Writes OUT/report.json, OUT/report.md and PNG plots (roc.png, confusion.png,
per_method.png). An invalid submission (unreadable file, missing question_id,
duplicate or unknown ids, wrong types, NaN/out-of-range scores, bad masks)
exits with status 2 and a message listing up to 10 offending ids.
"""

COMPARE_EPILOG = """\b
Example:
  fifa-bench compare runs/baseline runs/lora-r16 runs/lora-r64
  fifa-bench compare runs/* --format md > leaderboard.md
"""


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


@click.group(epilog="""\b
Example:
  fifa-bench score --bench bench.parquet --submission preds.jsonl --out report/
  fifa-bench compare report/ other_report/""")
def cli():
    """DFA-Bench scoring: validated submissions, reference-exact metrics, reports."""


@cli.command(epilog=SCORE_EPILOG)
@click.option("--bench", "bench", required=True, type=click.Path(dir_okay=False), help="Bench Parquet file.")
@click.option("--submission", required=True, type=click.Path(dir_okay=False), help="Submission (.parquet or .jsonl).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder for the report.")
@click.option("--strict", is_flag=True, help="Refuse a submission that misses bench questions.")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--bootstrap", default=1000, show_default=True, help="Bootstrap resamples for the CIs (0 disables).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.option("--no-meteor", is_flag=True, help="Skip METEOR (the slowest metric; a warning says so).")
def score(bench, submission, out, strict, seed, bootstrap, no_plots, no_meteor):
    """Score a submission against a bench and write a report."""
    from .bench import load_bench
    from .submission import load_submission

    try:  # validate before the heavier metric imports, so a bad file fails fast
        b = load_bench(bench)
        sub = load_submission(submission, b, strict=strict)
    except (SubmissionError, BenchError) as e:
        _fail(str(e))
    from .scoring import score as run_score

    report = run_score(b, sub, strict=strict, seed=seed, bootstrap=bootstrap, meteor=not no_meteor)
    path = report.write(out, plots=not no_plots)
    for w in report.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(_table({Path(out).name or out: report.to_dict()}, "md", full=True))
    click.echo(f"report: {path}")


def _main_cols(reports: dict[str, dict]) -> list[tuple[str, str]]:
    from .report import _task_key

    cols: dict[tuple[str, str], None] = {}
    for d in reports.values():
        tm = d.get("_meta", {}).get("tasks", {})
        for t in sorted((k for k in d if not k.startswith("_")), key=_task_key):
            cols[(t, tm.get(t, {}).get("main_metric") or next(iter(d[t]), "n"))] = None
    return list(cols)


def _table(reports: dict[str, dict], fmt: str, full: bool = False) -> str:
    from .report import METRIC_ORDER, _task_key

    if full:  # one report: every metric of every task
        d = next(iter(reports.values()))
        cols = [(t, m) for t in sorted((k for k in d if not k.startswith("_")), key=_task_key)
                for m in METRIC_ORDER if m in d[t]]
    else:
        cols = _main_cols(reports)
    header = ["run"] + [f"{t}/{m}" for t, m in cols]
    rows = []
    for name, d in reports.items():
        row = [name]
        for t, m in cols:
            v = d.get(t, {}).get(m)
            row.append("n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
        rows.append(row)
    if fmt == "md" or full:
        if full:  # transpose: one line per metric
            lines = ["| metric | value |", "|---|---:|"]
            lines += [f"| {h} | {v} |" for h, v in zip(header[1:], rows[0][1:])]
            return "\n".join(lines)
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="DFA-Bench leaderboard")
    for k, h in enumerate(header):
        table.add_column(h, justify="left" if k == 0 else "right")
    for r in rows:
        table.add_row(*r)
    console = Console(record=True, width=max(80, 16 * len(header)))
    with console.capture() as cap:
        console.print(table)
    return cap.get()


@cli.command(epilog=COMPARE_EPILOG)
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "md"]), default="table", show_default=True,
              help="Rich table for the terminal or a Markdown table.")
@click.option("--sort", "sort_by", default=None, help="Sort rows by this TASK/METRIC column (descending).")
def compare(dirs, fmt, sort_by):
    """Leaderboard of several reports (folders holding report.json, or report.json files)."""
    reports: dict[str, dict] = {}
    for d in dirs:
        p = Path(d)
        f = p / "report.json" if p.is_dir() else p
        try:
            reports[str(d)] = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            _fail(f"cannot read report {f}: {e}")
    if sort_by:
        t, _, m = sort_by.partition("/")
        def key(kv):
            v = kv[1].get(t, {}).get(m)
            return (v is None, -(v or 0.0))

        reports = dict(sorted(reports.items(), key=key))
    click.echo(_table(reports, fmt))


def main():
    cli()


if __name__ == "__main__":
    main()
