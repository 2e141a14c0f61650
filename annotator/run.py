"""`run_annotation`: manifest -> annotation shards, resumable, with bounded memory.

CPU work (decode, artifact mask, segmentation, regions, RLE, offline text) runs in worker
processes (local, or Ray actors: see executors.py), each holding one Segmenter; LLM calls run in a thread pool bounded by
``concurrency``. At most a fixed window of rows is in flight, and rows are flushed to
shards as they finish, so memory does not grow with the manifest.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import json
import logging
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .diffmask import DiffConfig
from .executors import make_executor
from .explain_openai import OpenAIConfig
from .manifest import ManifestRow, read_manifest
from .regions import RegionSelectConfig
from .store import AnnotationStore, write_json_atomic
from .worker import CpuResult, WorkerConfig, finish_row

log = logging.getLogger(__name__)


@dataclass
class AnnotateConfig:
    llm: str = "offline"  # offline | openai
    workers: int = 0  # 0: every core (local) or every free CPU of the cluster (ray)
    executor: str = "local"  # local | ray (see executors.py)
    ray_address: str | None = None  # ray: None starts a local cluster; "auto" or ray://... joins one
    concurrency: int = 8  # LLM requests in flight
    diff: DiffConfig = field(default_factory=DiffConfig)
    select: RegionSelectConfig = field(default_factory=RegionSelectConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    llm_image_size: int = 512
    llm_jpeg_quality: int = 85
    shard_rows: int = 500
    flush_seconds: float = 20.0
    max_cost: float | None = None
    dry_run: bool = False
    progress: bool = True
    limit: int | None = None
    only_ids: frozenset[str] | None = None  # retry: the failed ids
    segment_cache: int = 16
    segmenter: str = "mediapipe"  # landmark backend of the regions (fifa.concept_tree.segment.BACKENDS)
    batch_rows: int = 8  # rows per worker task; rows sharing a source go in one task (see source_batches)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["openai"] = self.openai.to_dict()  # no api_key
        d.pop("only_ids", None)
        return d


@dataclass
class RunSummary:
    out_dir: str
    total: int = 0  # manifest rows
    processed: int = 0  # rows written by this invocation
    counts: dict = field(default_factory=dict)  # over the whole output folder
    errors: dict = field(default_factory=dict)  # error_code -> count (this invocation)
    pending: int = 0  # rows neither done nor failed (budget stop, limit)
    skipped_done: int = 0
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    cache_hits: int = 0
    elapsed_s: float = 0.0
    rows_per_s: float = 0.0
    stopped: str | None = None  # "budget" when --max-cost ended the run
    estimate: dict | None = None  # dry run

    @property
    def ok(self) -> int:
        return int(self.counts.get("ok", 0))

    @property
    def failed(self) -> int:
        return int(self.counts.get("failed", 0))


def make_explainer(config: AnnotateConfig):
    if config.llm == "offline":
        from .explain_offline import OfflineExplainer

        return OfflineExplainer()
    if config.llm == "openai":
        from .explain_openai import OpenAIExplainer

        return OpenAIExplainer(config.openai)
    raise ValueError(f"unknown explainer {config.llm!r} (offline|openai)")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def run_annotation(
    manifest: str | Path | list[ManifestRow],
    out: str | Path,
    config: AnnotateConfig = AnnotateConfig(),
    *,
    retry: bool = False,
    console=None,
) -> RunSummary:
    """Annotate every row of ``manifest`` not yet done in ``out`` (resume), or, with ``retry``,
    re-attempt the rows that failed."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_manifest(manifest) if not isinstance(manifest, list) else manifest
    main_store = AnnotationStore(out, shard_rows=config.shard_rows, flush_seconds=config.flush_seconds)
    if retry:
        failed = main_store.failed_ids()
        store = main_store.retry_store(config.shard_rows)
        todo = [r for r in rows if r.sample_id in failed and r.sample_id not in store.done_ids]
        attempt_of = _attempts(main_store, failed)
    else:
        store = main_store
        todo = [r for r in rows if r.sample_id not in store.done_ids]
        attempt_of = {}
    if config.only_ids is not None:
        todo = [r for r in todo if r.sample_id in config.only_ids]
    skipped = len(rows) - len(todo)
    if config.limit is not None:
        todo = todo[: config.limit]
    summary = RunSummary(out_dir=str(out), total=len(rows), skipped_done=skipped)
    if config.dry_run:
        summary.estimate = estimate(todo, config)
        summary.pending = len(todo)
        summary.counts = main_store.status_counts()
        return summary
    _save_manifest_copy(out, rows)
    explainer = make_explainer(config)
    from .explain_offline import OfflineExplainer

    offline = OfflineExplainer()
    wcfg = WorkerConfig(
        diff=config.diff, select=config.select, explainer=config.llm, llm_image_size=config.llm_image_size,
        llm_jpeg_quality=config.llm_jpeg_quality, segment_cache=config.segment_cache, segmenter=config.segmenter,
    )
    _write_run_json(out, config, summary, explainer, state="running", started=_now())
    errors: Counter = Counter()
    cost = {"usd": 0.0, "pt": 0, "ct": 0, "calls": 0, "hits": 0}
    stopped = None
    llm_needed = config.llm != "offline"
    progress = _Progress(len(todo), config.progress, console)
    pending_rows = list(reversed(source_batches(todo, config.batch_rows)))  # batches, popped from the end
    for r in todo:
        if r.sample_id in attempt_of:
            r.__dict__["attempt"] = attempt_of[r.sample_id] + 1

    def emit(row: dict) -> None:
        store.add(row)
        summary.processed += 1
        if row["status"] != "ok":
            errors[row.get("error_code") or "unknown"] += 1
        progress.advance(row["status"] != "ok")

    if not todo:  # nothing to do (a finished run resumed): no workers to start
        if retry:
            main_store.commit_retry()
        summary.counts = main_store.status_counts()
        summary.pending = max(0, summary.total - sum(summary.counts.values()))
        summary.elapsed_s = time.perf_counter() - t_start
        _write_run_json(out, config, summary, explainer, state="finished")
        if hasattr(explainer, "close"):
            explainer.close()
        return summary
    try:
        pool = make_executor(config.executor, config.workers, wcfg, ray_address=config.ray_address)
    except Exception:
        _write_run_json(out, config, summary, explainer, state="failed:executor")
        raise
    # rows in flight: two batches per worker keep every worker busy while results come back
    window = pool.workers * 2 * max(1, config.batch_rows) + (config.concurrency if llm_needed else 0)
    threads = cf.ThreadPoolExecutor(max_workers=max(1, config.concurrency)) if llm_needed else None
    cpu_futs: dict = {}  # future -> rows in it
    llm_futs: dict = {}
    llm_queue: list[CpuResult] = []
    est_row_cost = _row_cost_estimate(config) if llm_needed else 0.0
    try:
        progress.start()
        while pending_rows or cpu_futs or llm_futs or llm_queue:
            while (pending_rows and sum(cpu_futs.values()) + len(llm_futs) + len(llm_queue) < window
                   and stopped is None):
                batch = pending_rows.pop()
                dicts = []
                for r in batch:
                    d = r.to_dict()
                    d["attempt"] = r.__dict__.get("attempt", 1)
                    dicts.append(d)
                cpu_futs[pool.submit(dicts)] = len(dicts)
            # Dispatch LLM work under the concurrency and budget limits.
            while llm_queue and len(llm_futs) < config.concurrency:
                if config.max_cost is not None:
                    committed = cost["usd"] + est_row_cost * len(llm_futs)
                    if committed + est_row_cost > config.max_cost + 1e-12:
                        stopped = "budget"
                        break
                res = llm_queue.pop(0)
                llm_futs[threads.submit(explainer.explain, res.ctx)] = res
            if stopped == "budget":
                llm_queue.clear()  # not started: stays pending
                pending_rows.clear()
            waitset = set(cpu_futs) | set(llm_futs)
            if not waitset:
                continue
            done, _ = cf.wait(waitset, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for f in done:
                if f in cpu_futs:
                    del cpu_futs[f]
                    try:
                        results: list[CpuResult] = f.result()
                    except Exception as e:  # a crashed worker
                        raise RuntimeError(f"worker failed: {e}") from e
                    for res in results:
                        if res.row["status"] != "ok" or res.row.get("explanation") is not None:
                            emit(res.row)  # failed, or finished in the worker (offline)
                        elif not llm_needed or res.ctx is None or res.ctx.label == "real" or (
                            res.ctx.grounded and not res.ctx.regions
                        ):
                            # nothing to ask a model: the offline text, under this run's explainer name
                            er = offline.explain(res.ctx)
                            emit(finish_row(res, er.text, explainer.name, er.region_ids))
                        elif stopped != "budget":  # after a budget stop it stays pending
                            llm_queue.append(res)
                else:
                    res = llm_futs.pop(f)
                    er = f.result()
                    cost["usd"] += er.cost
                    cost["pt"] += er.prompt_tokens
                    cost["ct"] += er.completion_tokens
                    cost["calls"] += er.calls
                    cost["hits"] += int(er.cached)
                    row = res.row
                    row.update(prompt_tokens=er.prompt_tokens, completion_tokens=er.completion_tokens,
                               cost_usd=er.cost, llm_calls=er.calls, cached=er.cached, time_llm_s=er.latency_s)
                    if not er.ok:
                        from .worker import failed as fail_row

                        row["explainer"] = explainer.name
                        emit(fail_row(row, er.error_code or "llm_error", er.error or ""))
                    else:
                        emit(finish_row(res, er.text, explainer.name, er.region_ids))
                    progress.set_cost(cost["usd"])
        store.close()
    finally:
        progress.stop()
        for f in list(cpu_futs):
            f.cancel()
        pool.shutdown()
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        if hasattr(explainer, "close"):
            explainer.close()
    if retry:
        main_store.commit_retry()
    summary.counts = main_store.status_counts()
    summary.errors = dict(errors)
    summary.cost_usd = cost["usd"]
    summary.prompt_tokens = cost["pt"]
    summary.completion_tokens = cost["ct"]
    summary.llm_calls = cost["calls"]
    summary.cache_hits = cost["hits"]
    summary.stopped = stopped
    summary.pending = max(0, summary.total - sum(summary.counts.values()))
    summary.elapsed_s = time.perf_counter() - t_start
    summary.rows_per_s = summary.processed / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    _write_run_json(out, config, summary, explainer, state="finished" if stopped is None else f"stopped:{stopped}")
    return summary


def source_batches(rows: list[ManifestRow], size: int) -> list[list[ManifestRow]]:
    """Worker tasks of at most ``size`` rows, rows that share a source kept in one task.

    A worker segments each source once and reuses it for every fake made from it (FF++-like
    datasets have 4-5 fakes per source, usually far apart in the manifest). Groups keep the order
    of their first row; small groups are packed together; a group larger than ``size`` is split.
    """
    size = max(1, int(size))
    groups: dict[str, list[ManifestRow]] = {}
    for r in rows:
        key = r.source_path if r.source_path and r.label == "fake" else f"\0{r.sample_id}"
        groups.setdefault(key, []).append(r)
    out: list[list[ManifestRow]] = []
    cur: list[ManifestRow] = []
    for g in groups.values():
        for i in range(0, len(g), size):
            part = g[i:i + size]
            if len(cur) + len(part) > size:
                out.append(cur)
                cur = []
            cur.extend(part)
    if cur:
        out.append(cur)
    return out


def _attempts(store: AnnotationStore, ids: set[str]) -> dict[str, int]:
    out = {}
    t = store.read(columns=["sample_id", "attempt"])
    for sid, a in zip(t.column("sample_id").to_pylist(), t.column("attempt").to_pylist()):
        if sid in ids:
            out[sid] = int(a or 1)
    return out


def _save_manifest_copy(out: Path, rows: list[ManifestRow]) -> None:
    """Keep the resolved manifest so `retry DIR` and `show DIR` need nothing else."""
    p = out / "manifest.resolved.parquet"
    if p.is_file():
        return
    import pyarrow as pa

    from .manifest import MANIFEST_SCHEMA
    from .store import write_table_atomic

    cols = {n: [getattr(r, n) for r in rows] for n in MANIFEST_SCHEMA.names}
    write_table_atomic(pa.Table.from_pydict(cols, schema=MANIFEST_SCHEMA), p)


def _row_cost_estimate(config: AnnotateConfig) -> float:
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
    return {"rows": len(todo), "requests": len(fakes), "prompt_tokens": pt, "completion_tokens": ct,
            "cost_usd": round(cost, 4), "note": "upper-bound-ish: cached responses cost nothing"}


def _write_run_json(out: Path, config: AnnotateConfig, summary: RunSummary, explainer, state: str, started: str | None = None) -> None:
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
        "at": _now(),
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


class _Progress:
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
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        console = self.console or Console(stderr=True)
        self._p = Progress(
            TextColumn("[bold]annotate"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"), TextColumn("ETA"), TimeRemainingColumn(),
            TimeElapsedColumn(), TextColumn("[red]{task.fields[failed]} failed"), TextColumn("{task.fields[cost]}"),
            console=console, transient=False, refresh_per_second=4,
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
        self._p.update(self._task, advance=1, failed=self.failures, rate=f"{done / el:.1f}" if el > 0 else "-",
                       cost=f"${self.cost:.4f}" if self.cost else "")

    def set_cost(self, usd: float) -> None:
        self.cost = usd

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None
