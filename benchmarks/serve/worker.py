"""A scoring worker: claims queued submissions from the database and scores them, one at a time.

Forked by the server's supervisor (:func:`worker_entry`), or run alone on a machine that only scores
as ``python -m fifa.benchmarks.serve.worker`` with the settings as JSON in the ``FIFA_SERVE_CONFIG``
environment variable (a database password never shows on a command line). Scoring is
:func:`fifa.benchmarks.scoring.score` with the options of ``fifa-bench score``; the validator's message
(:class:`~fifa.benchmarks.submission.SubmissionError`) becomes the failure reason, with the uploaded file's
name in place of the worker's temporary path. A worker exits when its parent (the supervisor) is gone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .config import ScoreOptions, ServeConfig
from .db import make_engine
from .logs import log_event, setup_logging
from .queue import Job, claim, fail, finish, has_queued, reap_expired, renew

log = logging.getLogger("fifa.serve.worker")
CONFIG_ENV = "FIFA_SERVE_CONFIG"
INTERNAL_ERROR = "internal error while scoring this submission; the server's log has the details"


def config_from_json(text: str) -> ServeConfig:
    d = json.loads(text)
    d["bench"] = Path(d["bench"])
    d["scoring"] = ScoreOptions(**d["scoring"])
    return ServeConfig(**d)


class _Heartbeat(threading.Thread):
    """Renews a job's lease while it is scored (a silent worker's jobs expire and are claimed again)."""

    def __init__(self, engine, job: Job, worker: str, lease_s: float):
        super().__init__(daemon=True)
        self.engine, self.job, self.worker, self.lease_s = engine, job, worker, lease_s
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.lease_s / 4):
            try:
                renew(self.engine, self.job.id, self.worker, self.lease_s)
            except Exception:  # noqa: BLE001 - a missed renewal only shortens the lease
                log_event(log, "lease.renew_failed", logging.WARNING, id=self.job.id)


def report_for_api(report, cfg: ServeConfig, filename: str) -> dict:
    """``report.json`` as the API returns it: no server paths (the bench's name, the upload's name)."""
    d = report.to_dict()
    d["_meta"] = {**d["_meta"], "bench": cfg.display_name, "submission": filename}
    return d


def score_job(bench, cfg: ServeConfig, job: Job, tmp: Path) -> tuple[dict | None, dict, str | None]:
    """(report, headline metrics, None) for a valid submission, (None, {}, message) for an invalid one."""
    from ..scoring import score
    from ..submission import SubmissionError, load_submission

    path = tmp / f"submission.{job.fmt}"
    path.write_bytes(job.data)
    opts = cfg.scoring
    try:
        sub = load_submission(path, bench, strict=opts.strict)
    except SubmissionError as e:
        e.source = job.filename
        return None, {}, str(e)
    sub.source = job.filename
    report = score(bench, sub, strict=opts.strict, seed=opts.seed, bootstrap=opts.bootstrap, meteor=opts.meteor)
    return report_for_api(report, cfg, job.filename), report.main_metrics(), None


def process(engine, bench, cfg: ServeConfig, job: Job, worker: str) -> None:
    t0 = time.perf_counter()
    log_event(log, "job.started", id=job.id, attempt=job.attempts, worker=worker)
    hb = _Heartbeat(engine, job, worker, cfg.lease_s)
    hb.start()
    try:
        with tempfile.TemporaryDirectory(prefix="fifa-serve-") as d:
            report, headline, error = score_job(bench, cfg, job, Path(d))
    except Exception:  # noqa: BLE001 - a bug: logged with its traceback, the submission fails
        log_event(log, "job.error", logging.ERROR, exc_info=True, id=job.id)
        report, headline, error = None, {}, INTERNAL_ERROR
    finally:
        hb.done.set()
    if error is None:
        kept = finish(engine, job, worker, report, headline)
        status = "done"
    else:
        kept = fail(engine, job, worker, error)
        status = "failed"
    log_event(
        log,
        "job.finished" if kept else "job.discarded",
        id=job.id,
        status=status,
        worker=worker,
        attempt=job.attempts,
        ms=round(1000 * (time.perf_counter() - t0), 1),
    )


def _process_identity(pid: int) -> tuple[int, float | None]:
    """(pid, start time): a pid reused by another process after the server died does not match."""
    import psutil

    try:
        return pid, psutil.Process(pid).create_time()
    except psutil.Error:
        return pid, None


def run_worker(cfg: ServeConfig, worker: str, server_pid: int | None = None) -> None:
    """Claim and score jobs until SIGTERM/SIGINT or until the server process (default: the parent) is gone."""
    from ..bench import load_bench
    from ..scoring import score  # noqa: F401 - imported before the first job, not during it

    engine = make_engine(cfg.db, create=False)
    bench = load_bench(cfg.bench)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = _process_identity(server_pid or os.getppid())
    log_event(log, "worker.ready", worker=worker)
    last_reap = 0.0
    while not stop.is_set() and _process_identity(server[0]) == server:
        if time.time() - last_reap > cfg.lease_s / 4:
            for sid in reap_expired(engine):
                log_event(log, "job.requeued", logging.WARNING, id=sid, reason="lease expired")
            last_reap = time.time()
        job = claim(engine, worker, cfg.lease_s) if has_queued(engine) else None
        if job is None:
            stop.wait(cfg.poll_s)
            continue
        process(engine, bench, cfg, job, worker)
    log_event(log, "worker.stopped", worker=worker)
    engine.dispose()


def worker_entry(config_json: str, worker: str, server_pid: int | None = None) -> None:
    """The worker process's entry point (forked by the supervisor, which passes its own pid: the forkserver
    in between keeps running while any worker does, so a worker watches the server itself)."""
    setup_logging()
    run_worker(config_from_json(config_json), worker, server_pid)


def main() -> int:
    worker = sys.argv[1] if len(sys.argv) > 1 else f"{os.uname().nodename}:{os.getpid()}"
    worker_entry(os.environ[CONFIG_ENV], worker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
