"""`run_annotation`: manifest -> annotation shards, resumable, exactly once, with bounded memory.

The run holds a lock on its folder (one run per folder), reads the manifest (rows whose paths
leave the data root fail without being opened), and hands the pending rows to the
:class:`~fifa.annotator.pipeline.Pipeline`: CPU work (decode, artifact mask, segmentation,
regions, RLE, offline text) in worker processes (local, or Ray actors: see executors.py), LLM
calls in a thread pool bounded by ``concurrency``, every finished row to one writer that flushes
on any exit. Rerunning on the same folder resumes; ``retry`` re-attempts the failed rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from fifa.core.choices import bad_choice
from fifa.core.llm import OpenAIConfig

from .diffmask import DiffConfig
from .executors import make_executor
from .explainers import EXPLAINERS, make_explainer
from .manifest import ManifestRow, read_manifest
from .pipeline import Pipeline, PipelineConfig, RowSink, Spend, StopSignals
from .regions import RegionSelectConfig
from .runinfo import Progress, estimate, now, row_cost_estimate, save_manifest_copy, write_run_json
from .runlock import RunLock
from .store import AnnotationStore
from .worker import WorkerConfig, base_row, failed

log = logging.getLogger(__name__)


ExecutorKind = Literal["local", "ray"]  # see executors.py


@dataclass(frozen=True)
class AnnotateConfig:
    """How ``run_annotation`` works; its fields' defaults are also ``fifa-annotate``'s (annotator/cli.py)."""

    llm: str = "offline"  # an explainer's name (fifa.annotator.explainers.EXPLAINERS)
    workers: int = 0  # 0: every core (local) or every free CPU of the cluster (ray)
    executor: ExecutorKind = "local"
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
    segmenter: str = "mediapipe"  # landmark backend of the regions (fifa.concept_tree.segmentation.backends.BACKENDS)
    batch_rows: int = 8  # rows per worker task; rows sharing a source go in one task (see source_batches)
    data_root: str | None = None  # manifest paths must resolve inside it (default: the manifest's folder)
    allow_outside_root: bool = False  # let manifest paths reach outside the data root

    def __post_init__(self) -> None:
        bad = bad_choice(self)
        if bad is not None:
            name, choices, value = bad
            raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        if self.llm not in EXPLAINERS:
            raise ValueError(f"llm must be one of {', '.join(EXPLAINERS)}, not {self.llm!r}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")

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
    stopped: str | None = None  # "budget" (--max-cost) or "interrupted" (Ctrl-C / SIGTERM) ended it early
    estimate: dict | None = None  # dry run

    @property
    def ok(self) -> int:
        return int(self.counts.get("ok", 0))

    @property
    def failed(self) -> int:
        return int(self.counts.get("failed", 0))


def run_annotation(
    manifest: str | Path | list[ManifestRow],
    out: str | Path,
    config: AnnotateConfig | None = None,
    *,
    retry: bool = False,
    console=None,
    explainer=None,
) -> RunSummary:
    """Annotate every row of ``manifest`` not yet done in ``out`` (resume), or, with ``retry``,
    re-attempt the rows that failed (``config``: ``AnnotateConfig()`` by default). ``explainer``: any object
    of the Explainer interface (default: the one ``config.llm`` names). Raises
    :class:`~fifa.annotator.runlock.FolderLocked` when another run holds ``out``."""
    config = config if config is not None else AnnotateConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out), StopSignals() as signals:
        return _run(manifest, out, config, retry, console, explainer, signals)


@dataclass
class _Plan:
    rows: list[ManifestRow]  # the whole manifest
    todo: list[ManifestRow]  # what this invocation annotates
    main: AnnotationStore  # the folder's store
    store: AnnotationStore  # where this invocation writes (main, or retry staging)
    skipped: int  # rows already done
    attempts: dict[str, int] = field(default_factory=dict)  # retry: sample id -> this attempt (default 1)


def _plan(manifest, out: Path, config: AnnotateConfig, retry: bool) -> _Plan:
    rows = (
        manifest
        if isinstance(manifest, list)
        else read_manifest(manifest, data_root=config.data_root, allow_outside_root=config.allow_outside_root)
    )
    main = AnnotationStore(out, shard_rows=config.shard_rows, flush_seconds=config.flush_seconds)
    if retry:
        failed_ids = main.failed_ids()
        store = main.retry_store(config.shard_rows)
        todo = [r for r in rows if r.sample_id in failed_ids and r.sample_id not in store.done_ids]
        prior = _attempts(main, failed_ids)
        attempts = {r.sample_id: prior.get(r.sample_id, 1) + 1 for r in todo}
    else:
        store, attempts = main, {}
        todo = [r for r in rows if r.sample_id not in store.done_ids]
    if config.only_ids is not None:
        todo = [r for r in todo if r.sample_id in config.only_ids]
    skipped = len(rows) - len(todo)
    if config.limit is not None:
        todo = todo[: config.limit]
    return _Plan(rows, todo, main, store, skipped, attempts)


def _run(manifest, out: Path, config: AnnotateConfig, retry: bool, console, explainer, signals) -> RunSummary:
    t_start = time.perf_counter()
    plan = _plan(manifest, out, config, retry)
    summary = RunSummary(out_dir=str(out), total=len(plan.rows), skipped_done=plan.skipped)
    if config.dry_run:
        summary.estimate = estimate(plan.todo, config)
        summary.pending = len(plan.todo)
        summary.counts = plan.main.status_counts()
        return summary
    save_manifest_copy(out, plan.rows)
    explainer = explainer or make_explainer(config)
    write_run_json(out, config, summary, explainer, state="running", started=now())
    progress = Progress(len(plan.todo), config.progress, console)
    sink, spend = RowSink(plan.store, progress), Spend()
    try:
        progress.start()
        with sink:  # every finished row reaches disk, whatever ends the block
            runnable = _fail_refused(plan.todo, plan.attempts, sink)
            if runnable:
                summary.stopped = _execute(runnable, plan.attempts, config, explainer, sink, signals, progress, spend)
    except BaseException as e:
        _finish(summary, plan, sink, spend, t_start)
        state = "failed:executor" if type(e).__name__ == "ExecutorUnavailable" else f"failed:{type(e).__name__}"
        write_run_json(out, config, summary, explainer, state=state)
        raise
    finally:
        progress.stop()
        if hasattr(explainer, "close"):
            explainer.close()
    if retry:
        plan.main.commit_retry()
    _finish(summary, plan, sink, spend, t_start)
    write_run_json(
        out, config, summary, explainer, state="finished" if summary.stopped is None else f"stopped:{summary.stopped}"
    )
    return summary


def _fail_refused(todo: list[ManifestRow], attempts: dict[str, int], sink: RowSink) -> list[ManifestRow]:
    """Rows whose paths leave the data root fail here, their files never opened; returns the rest."""
    runnable = []
    for r in todo:
        if r.refused:
            code, _, message = r.refused.partition(": ")
            sink.emit(failed(base_row(_task_dict(r, attempts)), code, message))
        else:
            runnable.append(r)
    return runnable


def _task_dict(r: ManifestRow, attempts: dict[str, int]) -> dict:
    """What a worker gets of a manifest row: its columns and which attempt this is (1 unless retried)."""
    d = r.to_dict()
    d["attempt"] = attempts.get(r.sample_id, 1)
    d.pop("refused", None)
    return d


def _execute(
    rows: list[ManifestRow],
    attempts: dict[str, int],
    config: AnnotateConfig,
    explainer,
    sink: RowSink,
    signals,
    progress: Progress,
    spend: Spend,
) -> str | None:
    """Start the workers, run the pipeline over ``rows``, stop the workers; returns why it stopped early."""
    from .explain_offline import OfflineExplainer

    wcfg = WorkerConfig(
        diff=config.diff,
        select=config.select,
        explainer=config.llm,
        llm_image_size=config.llm_image_size,
        llm_jpeg_quality=config.llm_jpeg_quality,
        segment_cache=config.segment_cache,
        segmenter=config.segmenter,
    )
    llm_needed = config.llm != "offline"
    pool = make_executor(config.executor, config.workers, wcfg, ray_address=config.ray_address)
    # rows in flight: two batches per worker keep every worker busy while results come back
    window = pool.workers * 2 * max(1, config.batch_rows) + (config.concurrency if llm_needed else 0)
    pipe = Pipeline(
        executor=pool,
        explainer=explainer,
        offline=OfflineExplainer(),
        sink=sink,
        signals=signals,
        cfg=PipelineConfig(
            window=window,
            concurrency=config.concurrency,
            llm_needed=llm_needed,
            max_cost=config.max_cost,
            est_row_cost=row_cost_estimate(config) if llm_needed else 0.0,
        ),
        on_cost=progress.set_cost,
        spend=spend,
    )
    try:
        batches = source_batches(rows, config.batch_rows)
        return pipe.run([[_task_dict(r, attempts) for r in b] for b in batches])
    finally:
        pool.shutdown()


def _finish(summary: RunSummary, plan: _Plan, sink: RowSink, spend: Spend, t_start: float) -> None:
    summary.processed, summary.errors = sink.written, dict(sink.errors)
    summary.counts = plan.main.status_counts()
    summary.cost_usd = spend.usd
    summary.prompt_tokens = spend.prompt_tokens
    summary.completion_tokens = spend.completion_tokens
    summary.llm_calls = spend.calls
    summary.cache_hits = spend.cache_hits
    summary.pending = max(0, summary.total - sum(summary.counts.values()))
    summary.elapsed_s = time.perf_counter() - t_start
    summary.rows_per_s = summary.processed / summary.elapsed_s if summary.elapsed_s > 0 else 0.0


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
            part = g[i : i + size]
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
