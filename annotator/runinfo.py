"""What a run records besides its rows: ``run.json``, the resolved manifest copy, the dry-run
estimate, and the progress bar."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fifa.core.atomic import write_json_atomic

from .manifest import ManifestRow

if TYPE_CHECKING:  # pragma: no cover
    from .run import AnnotateConfig, RunSummary

RESOLVED_MANIFEST = "manifest.resolved.parquet"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def save_manifest_copy(out: Path, rows: list[ManifestRow]) -> None:
    """Keep the resolved manifest so `retry DIR` and `show DIR` need nothing else.

    A run continued with an extended (or changed) manifest updates the copy: rows of this
    manifest replace those with the same sample_id, rows only in the old copy are kept (their
    annotations are still in the folder).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fifa.core.atomic import write_table_atomic

    from .manifest import MANIFEST_SCHEMA

    schema = MANIFEST_SCHEMA.append(pa.field("refused", pa.string()))
    table = pa.Table.from_pylist([{n: getattr(r, n) for n in schema.names} for r in rows], schema=schema)
    p = out / RESOLVED_MANIFEST
    if p.is_file():
        old = pq.read_table(p)
        old = old.select([n for n in old.column_names if n in schema.names])
        for f in schema:
            if f.name not in old.column_names:
                old = old.append_column(f, pa.nulls(old.num_rows, f.type))
        import pyarrow.compute as pc

        old = old.select(schema.names).cast(schema)
        replaced = pc.is_in(old.column("sample_id"), value_set=table.column("sample_id"))
        merged = pa.concat_tables([old.filter(pc.invert(replaced)), table])
        if merged.equals(old):
            return
        table = merged
    write_table_atomic(table, p)


def load_manifest_copy(out: Path, allow_outside_root: bool = False) -> list[ManifestRow]:
    """The rows of the folder's resolved manifest copy: paths as vetted when the run read the
    original manifest (refusals kept, unless ``allow_outside_root``)."""
    import pyarrow.parquet as pq

    rows = []
    for d in pq.read_table(out / RESOLVED_MANIFEST).to_pylist():
        row = ManifestRow(**{k: v for k, v in d.items() if k in ManifestRow.__dataclass_fields__})
        if allow_outside_root:
            row.refused = None
        rows.append(row)
    return rows


def row_cost_estimate(config: AnnotateConfig) -> float:
    from .explain_openai import estimate_tokens

    pt, ct = estimate_tokens(2, 3, config.openai)
    return (pt * config.openai.price_in_per_mtok + ct * config.openai.price_out_per_mtok) / 1e6


def estimate(todo: list[ManifestRow], config: AnnotateConfig) -> dict:
    """Dry-run estimate: requests, tokens and cost of the rows still to do."""
    from .explain_openai import estimate_tokens

    fakes = [r for r in todo if r.label == "fake"]
    if config.llm == "offline":
        return {"rows": len(todo), "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    pt = ct = 0
    for r in fakes:
        p, c = estimate_tokens(2 if r.source_path else 1, 3, config.openai)
        pt, ct = pt + p, ct + c
    cost = (pt * config.openai.price_in_per_mtok + ct * config.openai.price_out_per_mtok) / 1e6
    return {
        "rows": len(todo),
        "requests": len(fakes),
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "cost_usd": round(cost, 4),
        "note": "upper-bound-ish: cached responses cost nothing",
    }


def write_run_json(
    out: Path, config: AnnotateConfig, summary: RunSummary, explainer, state: str, started: str | None = None
) -> None:
    p = out / "run.json"
    prev = {}
    if p.is_file():
        try:
            prev = json.loads(p.read_text("utf-8"))
        except ValueError:
            prev = {}
    runs = prev.get("invocations", [])
    inv = {
        "state": state,
        "at": now(),
        "processed": summary.processed,
        "errors": summary.errors,
        "elapsed_s": round(summary.elapsed_s, 3),
        "rows_per_s": round(summary.rows_per_s, 3),
        "cost_usd": round(summary.cost_usd, 6),
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "llm_calls": summary.llm_calls,
        "cache_hits": summary.cache_hits,
        "stopped": summary.stopped,
    }
    if state == "running":
        runs.append({"state": "running", "started": started})
    elif runs and runs[-1].get("state") == "running":
        runs[-1].update(inv)
    else:
        runs.append(inv)
    total_cost = sum(float(r.get("cost_usd") or 0) for r in runs)
    doc = {
        "tool": "fifa-annotate",
        "version": _version(),
        "explainer": getattr(explainer, "name", config.llm),
        "config": config.to_dict(),
        "manifest_rows": summary.total,
        "counts": summary.counts,
        "pending": summary.pending,
        "cost_usd_total": round(total_cost, 6),
        "tokens_total": {
            "prompt": sum(int(r.get("prompt_tokens") or 0) for r in runs),
            "completion": sum(int(r.get("completion_tokens") or 0) for r in runs),
        },
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "invocations": runs,
    }
    write_json_atomic(doc, p)


def _version() -> str:
    try:
        from fifa import __version__

        return __version__
    except Exception:  # pragma: no cover
        return "?"


class Progress:
    """A rich progress bar (rate, ETA, failures, cost) on stderr; silent when disabled."""

    def __init__(self, total: int, enabled: bool, console=None):
        self.total = total
        self.enabled = enabled and total > 0
        self.console = console
        self.failures = 0
        self.cost = 0.0
        self._p = None
        self._task = None

    def start(self) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = self.console or Console(stderr=True)
        self._p = Progress(
            TextColumn("[bold]annotate"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("{task.fields[cost]}"),
            console=console,
            transient=False,
            refresh_per_second=4,
        )
        self._p.start()
        self._t0 = time.perf_counter()
        self._task = self._p.add_task("annotate", total=self.total, rate="-", failed=0, cost="")

    def advance(self, failed: bool) -> None:
        if failed:
            self.failures += 1
        if self._p is None:
            return
        done = self._p.tasks[0].completed + 1
        el = time.perf_counter() - self._t0
        self._p.update(
            self._task,
            advance=1,
            failed=self.failures,
            rate=f"{done / el:.1f}" if el > 0 else "-",
            cost=f"${self.cost:.4f}" if self.cost else "",
        )

    def set_cost(self, usd: float) -> None:
        self.cost = usd

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None
