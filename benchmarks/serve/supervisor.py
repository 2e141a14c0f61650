"""The server process: scoring workers kept alive beside the web app (uvicorn).

:class:`Supervisor` starts ``workers`` scoring processes and checks them every ``check_s`` seconds; when
one has exited (crashed, killed, out of memory) its running jobs go back to the queue at once and a new
worker takes its place. Workers are forked from a multiprocessing *forkserver* that has imported the
scorer once, so a replacement is scoring within milliseconds instead of re-importing for seconds.
:func:`run_server` runs the supervisor and the web app until SIGTERM/SIGINT,
then stops the workers (their unfinished jobs go back to the queue for the next start).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import uuid

from .config import ServeConfig
from .db import make_engine, redact
from .logs import log_event, setup_logging
from .queue import requeue_worker
from .worker import worker_entry

#: imported once by the forkserver, inherited by every worker it forks
PRELOAD = ["fifa.benchmarks.serve.worker", "fifa.benchmarks.scoring", "fifa.benchmarks.submission", "sqlalchemy"]

log = logging.getLogger("fifa.serve.supervisor")


class Supervisor(threading.Thread):
    """Keeps ``cfg.workers`` scoring processes running; requeues the jobs of those that die."""

    def __init__(self, cfg: ServeConfig, check_s: float = 0.25):
        super().__init__(daemon=True, name="fifa-serve-supervisor")
        self.cfg, self.check_s = cfg, check_s
        self.engine = make_engine(cfg.db, create=False)
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(PRELOAD)
        self.procs: dict[str, mp.process.BaseProcess] = {}
        self.stopping = threading.Event()
        self.started_total = 0
        self._prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()

    def _spawn(self) -> None:
        self.started_total += 1
        wid = f"{self._prefix}:w{self.started_total}"
        p = self.ctx.Process(
            target=worker_entry, args=(json.dumps(self.cfg.to_dict()), wid, os.getpid()), name=wid, daemon=True
        )
        p.start()
        self.procs[wid] = p
        log_event(log, "worker.started", worker=wid, worker_pid=p.pid)

    def run(self) -> None:
        with self._lock:
            for _ in range(self.cfg.workers):
                self._spawn()
        quick_deaths = 0
        while not self.stopping.wait(self.check_s):
            with self._lock:
                if self.stopping.is_set():
                    break
                for wid, p in list(self.procs.items()):
                    rc = p.exitcode
                    if rc is None:
                        continue
                    del self.procs[wid]
                    ids = requeue_worker(self.engine, wid)
                    log_event(
                        log, "worker.died", logging.WARNING, worker=wid, worker_pid=p.pid, returncode=rc, requeued=ids
                    )
                    quick_deaths = quick_deaths + 1 if rc not in (0, -9) else 0
                    if quick_deaths > 5:  # a worker that cannot start (bad bench, database gone): slow down
                        time.sleep(min(30.0, 0.5 * quick_deaths))
                    self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers (SIGTERM, then SIGKILL) and put their unfinished jobs back in the queue."""
        self.stopping.set()
        with self._lock:
            for p in self.procs.values():
                if p.exitcode is None:
                    p.terminate()
            deadline = time.time() + timeout
            for wid, p in self.procs.items():
                p.join(max(0.1, deadline - time.time()))
                if p.exitcode is None:
                    p.kill()
                    p.join()
                requeue_worker(self.engine, wid)
            self.procs.clear()
        self.engine.dispose()


def _exit_cleanly(signum, _frame) -> None:
    raise SystemExit(0)


def run_server(cfg: ServeConfig) -> None:
    """Serve ``cfg.bench`` until SIGTERM/SIGINT: the web app and ``cfg.workers`` scoring workers."""
    import uvicorn

    from .app import create_app

    setup_logging()
    app = create_app(cfg)  # loads the bench and opens the database: errors surface before anything starts
    sup = Supervisor(cfg)
    log_event(
        log,
        "server.start",
        host=cfg.host,
        port=cfg.port,
        workers=cfg.workers,
        db=redact(cfg.db),
        bench=cfg.display_name,
        root_path=cfg.root_path,
    )
    sup.start()
    # uvicorn re-raises the signal that stopped it once it has shut down: exit through `finally` then
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.Server(
            uvicorn.Config(
                app,
                host=cfg.host,
                port=cfg.port,
                log_config=None,
                access_log=False,
                proxy_headers=True,
                forwarded_allow_ips=cfg.forwarded_allow_ips,
                root_path=cfg.root_path,
                timeout_keep_alive=5,
                server_header=False,
            )
        ).run()
    finally:
        sup.stop()
        log_event(log, "server.stop")
