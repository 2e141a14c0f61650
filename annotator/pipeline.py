"""The run loop: rows flow CPU stage -> (LLM stage) -> one writer, with bounded work in flight.

Invariants, each owned by one piece:

* :class:`RowSink` is the only writer. Every row that finished reaches the store, and the store is
  flushed on *any* exit of the loop (normal end, budget, Ctrl-C, a crashed worker, a bug), because
  the sink is a context manager around the loop.
* :class:`Pipeline` keeps at most ``window`` rows in flight and never starts new work once stopped:
  rows not started stay pending for the next run. LLM requests already sent are waited for (they are
  paid) and written, unless the user insists (a second Ctrl-C).
* One bad row never stops the run: an explainer exception fails that row (``llm_internal_error``); a
  worker process that dies is replaced and its rows are re-run one at a time, so the row that kills
  a worker fails alone (``worker_crashed``) and the others succeed.
* :class:`StopSignals` turns SIGINT/SIGTERM into a graceful stop (first), an immediate stop (second)
  and a ``KeyboardInterrupt`` (third, the escape hatch).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import signal
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fifa.core.records import AnnotationRecord, replace

from .explain import ExplainResult
from .worker import CpuResult, failed, finish_row

log = logging.getLogger(__name__)

MAX_EXECUTOR_RESTARTS = 20


@dataclass
class Spend:
    """LLM usage of this invocation."""

    usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cache_hits: int = 0

    def add(self, er: ExplainResult) -> None:
        self.usd += er.cost
        self.prompt_tokens += er.prompt_tokens
        self.completion_tokens += er.completion_tokens
        self.calls += er.calls
        self.cache_hits += int(er.cached)


class RowSink:
    """The one writer: rows go to the store (which flushes by size and age) and every row that
    finished is flushed when the ``with`` block ends, however it ends."""

    def __init__(self, store, progress=None):
        self.store = store
        self.progress = progress
        self.written = 0
        self.errors: Counter = Counter()

    def emit(self, row: AnnotationRecord) -> None:
        self.store.add(row)
        self.written += 1
        if row.status != "ok":
            self.errors[row.error_code or "unknown"] += 1
        if self.progress is not None:
            self.progress.advance(row.status != "ok")

    def __enter__(self) -> RowSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.store.close()
        except Exception as e:
            if exc is None:
                raise
            log.error("%d finished row(s) could not be written (%s); the next run redoes them", self.store.buffered, e)


class StopSignals:
    """SIGINT / SIGTERM while the loop runs: 1st graceful, 2nd immediate, 3rd KeyboardInterrupt."""

    def __init__(self):
        self.count = 0
        self.name: str | None = None
        self._old: dict = {}

    @property
    def requested(self) -> bool:
        return self.count >= 1

    @property
    def immediate(self) -> bool:
        return self.count >= 2

    def _handle(self, signum, frame) -> None:
        self.count += 1
        self.name = signal.Signals(signum).name
        if self.count == 1:
            log.warning("%s: stopping after the requests in flight (again to stop now)", self.name)
        elif self.count >= 3:
            raise KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def safe_explain(explainer, ctx) -> ExplainResult:
    """``explainer.explain`` that fails the row instead of the run on any exception (a bug, a full disk)."""
    try:
        return explainer.explain(ctx)
    except Exception as e:  # noqa: BLE001 - one bad reply (or bug) fails one row
        log.debug("explainer raised on %s", ctx.sample_id, exc_info=True)
        return ExplainResult(ok=False, error_code="llm_internal_error", error=f"{type(e).__name__}: {e}")


@dataclass
class PipelineConfig:
    window: int  # rows in flight (CPU + LLM)
    concurrency: int  # LLM requests in flight
    llm_needed: bool
    max_cost: float | None = None
    est_row_cost: float = 0.0


@dataclass
class _Batch:
    rows: list[dict]
    generation: int  # executor generation it was submitted to
    suspect: bool = False  # re-run alone after a worker crash


@dataclass
class Pipeline:
    """Drives batches of manifest rows through the executor and the explainer into the sink."""

    executor: object  # CpuExecutor (see executors.py)
    explainer: object
    offline: object  # offline explainer: rows with nothing to ask a model
    sink: RowSink
    cfg: PipelineConfig
    signals: StopSignals = field(default_factory=StopSignals)
    on_cost: Callable[[float], None] | None = None
    spend: Spend = field(default_factory=Spend)
    stopped: str | None = None
    restarts: int = 0

    def run(self, batches: list[list[dict]]) -> str | None:
        """Process every batch (or stop early); returns why it stopped early, else None."""
        self._pending = deque(_Batch(b, 0) for b in batches)
        self._cpu: dict[cf.Future, _Batch] = {}
        self._llm: dict[cf.Future, CpuResult] = {}
        self._llm_queue: deque[CpuResult] = deque()
        self._generation = 0
        threads = cf.ThreadPoolExecutor(max_workers=max(1, self.cfg.concurrency)) if self.cfg.llm_needed else None
        try:
            while not self.signals.immediate:
                if self.signals.requested and self.stopped is None:
                    self.stopped = "interrupted"
                self._submit_cpu()
                self._submit_llm(threads)
                if self.stopped:
                    self._drop_unstarted()
                if not (self._cpu or self._llm):
                    if not (self._pending or self._llm_queue):
                        break
                    continue
                done, _ = cf.wait(set(self._cpu) | set(self._llm), timeout=0.5, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    self._collect_cpu(f) if f in self._cpu else self._collect_llm(f)
            if self.signals.immediate:
                self.stopped = "interrupted"
        finally:
            for f in self._cpu:
                f.cancel()
            if threads is not None:
                threads.shutdown(wait=not self.signals.immediate, cancel_futures=True)
        return self.stopped

    # ------------------------------------------------------------------ dispatch
    def _in_flight(self) -> int:
        return sum(len(b.rows) for b in self._cpu.values()) + len(self._llm) + len(self._llm_queue)

    def _submit_cpu(self) -> None:
        while self._pending and self.stopped is None and self._in_flight() < self.cfg.window:
            if any(b.suspect for b in self._cpu.values()):
                return  # a suspect row runs alone, so a crash names it
            if self._pending[0].suspect and self._cpu:
                return
            batch = self._pending.popleft()
            try:
                fut = self.executor.submit(batch.rows)
            except Exception as e:  # noqa: BLE001 - a pool found broken before its futures say so
                if not self.executor.is_crash(e):
                    raise
                self._pending.appendleft(batch)
                self._restart(self._generation)
                return
            batch.generation = self._generation
            self._cpu[fut] = batch

    def _submit_llm(self, threads) -> None:
        while self._llm_queue and len(self._llm) < self.cfg.concurrency and self.stopped is None:
            if self.cfg.max_cost is not None:
                committed = self.spend.usd + self.cfg.est_row_cost * len(self._llm)
                if committed + self.cfg.est_row_cost > self.cfg.max_cost + 1e-12:
                    self.stopped = "budget"
                    return
            res = self._llm_queue.popleft()
            self._llm[threads.submit(safe_explain, self.explainer, res.ctx)] = res

    def _drop_unstarted(self) -> None:
        """After a stop: rows not started stay pending (not written, so the next run does them)."""
        self._pending.clear()
        self._llm_queue.clear()
        for f in [f for f in self._cpu if f.cancel()]:
            del self._cpu[f]

    # ------------------------------------------------------------------ results
    def _collect_cpu(self, f: cf.Future) -> None:
        batch = self._cpu.pop(f)
        try:
            results: list[CpuResult] = f.result()
        except cf.CancelledError:  # cancelled by a worker restart, not by a stop: run it again
            if self.stopped is None:
                self._pending.appendleft(batch)
            return
        except Exception as e:  # noqa: BLE001
            if self.executor.is_crash(e):
                self._on_crash(batch)
            else:  # process_rows never raises for a row: this is a bug; fail the batch, go on
                for r in batch.rows:
                    self._fail(r, "internal_error", f"{type(e).__name__}: {e}")
            return
        for res in results:
            self._route(res)

    def _route(self, res: CpuResult) -> None:
        row, ctx = res.row, res.ctx
        if row.status != "ok" or row.explanation is not None:
            self.sink.emit(row)  # failed, or finished in the worker (offline)
        elif not self.cfg.llm_needed or ctx is None or ctx.label == "real" or (ctx.grounded and not ctx.regions):
            er = self.offline.explain(ctx)  # nothing to ask a model: offline text, this run's explainer name
            self.sink.emit(finish_row(res, er.text, self.explainer.name, er.region_ids, er.visible))
        elif self.stopped is None:
            self._llm_queue.append(res)
        # else: stopped before its request was sent: it stays pending

    def _collect_llm(self, f: cf.Future) -> None:
        res = self._llm.pop(f)
        er: ExplainResult = f.result()  # safe_explain never raises
        self.spend.add(er)
        if self.on_cost is not None:
            self.on_cost(self.spend.usd)
        res.row = replace(
            res.row,
            prompt_tokens=er.prompt_tokens,
            completion_tokens=er.completion_tokens,
            cost_usd=er.cost,
            llm_calls=er.calls,
            cached=er.cached,
            time_llm_s=er.latency_s,
        )
        if er.ok:
            self.sink.emit(finish_row(res, er.text, self.explainer.name, er.region_ids, er.visible))
        else:
            row = replace(res.row, explainer=self.explainer.name)
            self.sink.emit(failed(row, er.error_code or "llm_error", er.error or ""))

    def _fail(self, row_in: dict, code: str, message: str) -> None:
        from .worker import base_row

        self.sink.emit(failed(base_row(row_in), code, message))

    # ------------------------------------------------------------------ crashes
    def _on_crash(self, batch: _Batch) -> None:
        if batch.suspect:  # it ran alone and the worker died: this row kills workers
            self._fail(batch.rows[0], "worker_crashed", "the worker process died on this row (crash or killed)")
        else:  # re-run each row alone so that only a guilty one fails
            self._pending.extendleft(_Batch([r], 0, suspect=True) for r in reversed(batch.rows))
        self._restart(batch.generation)

    def _restart(self, generation: int) -> None:
        """Replace the workers once per broken generation (its other futures fail too)."""
        if generation != self._generation:
            return
        self.restarts += 1
        if self.restarts > MAX_EXECUTOR_RESTARTS:
            raise RuntimeError(f"worker processes died {self.restarts} times; stopping (finished rows are saved)")
        log.warning("a worker process died; restarting the workers (%d)", self.restarts)
        self.executor.restart()
        self._generation += 1
