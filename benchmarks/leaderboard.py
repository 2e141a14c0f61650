"""Leaderboards over several `report.json` files (`fifa-bench compare`), as text."""

from __future__ import annotations

import json
from pathlib import Path

from fifa.core.errors import FifaError
from fifa.core.tasks import task_order

from .report import METRIC_ORDER


class ReportReadError(FifaError, ValueError):
    """A report folder or file that cannot be read."""


def read_reports(paths: list[str]) -> dict[str, dict]:
    """``{name: report dict}`` for folders holding report.json, or report.json files."""
    reports: dict[str, dict] = {}
    for d in paths:
        p = Path(d)
        f = p / "report.json" if p.is_dir() else p
        try:
            reports[str(d)] = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ReportReadError(f"cannot read report {f}: {e}") from None
    return reports


def sort_reports(reports: dict[str, dict], column: str) -> dict[str, dict]:
    """Sort by a ``TASK/METRIC`` column, descending, missing values last."""
    t, _, m = column.partition("/")

    def key(kv):
        v = kv[1].get(t, {}).get(m)
        return (v is None, -(v or 0.0))

    return dict(sorted(reports.items(), key=key))


def _main_cols(reports: dict[str, dict]) -> list[tuple[str, str]]:
    cols: dict[tuple[str, str], None] = {}
    for d in reports.values():
        tm = d.get("_meta", {}).get("tasks", {})
        for t in sorted((k for k in d if not k.startswith("_")), key=task_order):
            cols[(t, tm.get(t, {}).get("main_metric") or next(iter(d[t]), "n"))] = None
    return list(cols)


def leaderboard(reports: dict[str, dict], fmt: str = "table", full: bool = False) -> str:
    """A Markdown or rich-rendered table: main metric per task (``full``: every metric of one report)."""
    if full:  # one report: every metric of every task
        d = next(iter(reports.values()))
        cols = [
            (t, m)
            for t in sorted((k for k in d if not k.startswith("_")), key=task_order)
            for m in METRIC_ORDER
            if m in d[t]
        ]
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
