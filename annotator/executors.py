"""Where the CPU stage of a run executes: local worker processes, or Ray actors.

Both executors hand out :class:`concurrent.futures.Future` objects for
:func:`fifa.annotator.worker.process_rows` (a batch of rows), so the run loop (ordering, durability, LLM stage,
budget) is the same for both. Only CPU work moves; the driver keeps writing the shards, so
resume and exactly-once hold on a cluster as they do locally.

* ``local``: a process pool on this machine, one Segmenter per process.
* ``ray``: one actor per worker on a Ray cluster (``address``: ``None`` starts a local one,
  ``"auto"`` or ``ray://host:10001`` joins an existing one). Image paths in the manifest must
  be readable on every node (a shared filesystem), as with any Ray batch job.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
from dataclasses import replace
from typing import Protocol

from fifa.core.errors import FifaError

from .worker import CpuResult, WorkerConfig, init_worker, process_rows

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")


class ExecutorUnavailable(FifaError, RuntimeError):
    """The chosen executor cannot start here (e.g. Ray is not installed); the message says why."""


class CpuExecutor(Protocol):
    name: str
    workers: int

    def submit(self, rows: list[dict]) -> cf.Future:
        """Process a batch of manifest rows; the future holds their CpuResults, in order."""

    def is_crash(self, exc: BaseException) -> bool:
        """Whether a future's exception means a worker died (the batch is re-run, not failed)."""

    def restart(self) -> None:
        """Replace dead workers (after :meth:`is_crash`); futures of the old ones fail or are cancelled."""

    def shutdown(self) -> None: ...


def usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def make_executor(kind: str, workers: int, config: WorkerConfig, *, ray_address: str | None = None) -> CpuExecutor:
    """Start the workers of ``kind`` (``local`` or ``ray``); ``workers=0`` uses every CPU."""
    if kind == "local":
        return LocalExecutor(workers or usable_cpus(), config)
    if kind == "ray":
        return RayExecutor(workers, config, address=ray_address)
    raise ValueError(f"unknown executor {kind!r} ({'|'.join(EXECUTORS)})")


# ------------------------------------------------------------------ local processes
class LocalExecutor:
    """A forkserver process pool; every worker is started (and its models loaded lazily) up front.

    forkserver, not fork: the parent may already hold MediaPipe/TFLite threads (forking them
    corrupts the child's heap); not spawn: it re-imports the caller's ``__main__``. The server only
    preloads the worker module. Workers watch this process and exit when it is gone (a SIGKILL
    included), after which the fork server exits too (see ``worker.init_worker``).
    """

    name = "local"

    def __init__(self, workers: int, config: WorkerConfig):
        self.workers = workers
        self._config = replace(config, parent_pid=os.getpid())
        self._pool = self._start()

    def _start(self) -> cf.ProcessPoolExecutor:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["fifa.annotator.worker"])
        pool = cf.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=ctx, initializer=init_worker, initargs=(self._config,)
        )
        with no_main_reimport():  # start every worker now, without re-running the caller's script
            starters = [pool.submit(_noop) for _ in range(self.workers)]
        cf.wait(starters)
        return pool

    def submit(self, rows: list[dict]) -> cf.Future:
        return self._pool.submit(process_rows, rows)

    def is_crash(self, exc: BaseException) -> bool:
        return isinstance(exc, cf.process.BrokenProcessPool)

    def restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    time.sleep(0.05)  # keep the worker busy so that each start-up submit spawns a new one


@contextlib.contextmanager
def no_main_reimport():
    """Hide the caller's ``__main__`` while workers start: forkserver/spawn children would otherwise
    re-run an unguarded calling script. Workers only need ``fifa.annotator.worker``."""
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


# ------------------------------------------------------------------ Ray actors
class RowActor:
    """One Ray actor: a worker process with its own Segmenter and source cache."""

    def __init__(self, config: WorkerConfig):
        init_worker(config)

    def process(self, rows: list[dict]) -> list[CpuResult]:
        return process_rows(rows)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """CPU work on Ray actors (one CPU each); each batch goes to the actor with the fewest rows queued."""

    name = "ray"

    def __init__(self, workers: int, config: WorkerConfig, *, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailable(
                "--executor ray needs Ray: pip install 'fifa-toolkit[ray]' (or use --executor local)"
            ) from None
        self._ray = ray
        self._started = False
        self._reaper = None
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a batch job
            kwargs = dict(
                include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True
            )
            if address is None:  # a new local cluster sized to this machine (or to --workers)
                kwargs["num_cpus"] = workers or usable_cpus()
                # Ray >= 2.5x protects a new local cluster with a token by default and warns about it
                # on stderr: keep the protection, drop the warning
                logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            try:
                # "local": a new cluster even when `ray start` left one running here (ray.init()
                # would join that one instead)
                ray.init(address=address or "local", **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ExecutorUnavailable(f"cannot start or join the Ray cluster ({address or 'local'}): {e}") from None
            self._started = True
            if address is None:  # never for a joined cluster: it outlives this run by design
                self._reaper = _start_reaper(_session_name(ray))
        free = int(ray.available_resources().get("CPU", 0))
        if workers > free:  # actors beyond the free CPUs would wait forever
            self.shutdown_cluster()
            raise ExecutorUnavailable(f"--workers {workers} but the Ray cluster has {free} free CPU(s)")
        if free < 1:
            self.shutdown_cluster()
            raise ExecutorUnavailable("the Ray cluster has no free CPU")
        self.workers = workers or free
        self._config = replace(config, parent_pid=None)  # a remote actor has no local parent: it dies with the job
        self._lock = threading.Lock()
        self._start_actors()

    def _start_actors(self) -> None:
        actor_cls = self._ray.remote(num_cpus=1, max_restarts=0)(RowActor)
        self._actors = [actor_cls.remote(self._config) for _ in range(self.workers)]
        self._ray.get([a.pid.remote() for a in self._actors])  # wait until every actor is up
        self._load = [0] * self.workers

    def is_crash(self, exc: BaseException) -> bool:
        return isinstance(exc, self._ray.exceptions.RayActorError)

    def restart(self) -> None:
        for a in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(a)
        self._start_actors()

    def submit(self, rows: list[dict]) -> cf.Future:
        n = len(rows)
        with self._lock:
            load = self._load  # the counters of this generation of actors (a restart replaces them)
            i = min(range(self.workers), key=load.__getitem__)
            load[i] += n
        fut = self._actors[i].process.remote(rows).future()
        fut.add_done_callback(lambda _f, load=load, i=i, n=n: self._done(load, i, n))
        return fut

    def _done(self, load: list[int], i: int, n: int) -> None:
        with self._lock:
            load[i] -= n

    def shutdown(self) -> None:
        for a in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(a)
        self._actors = []
        self.shutdown_cluster()

    def shutdown_cluster(self) -> None:
        """Stop the local cluster this executor started, or leave the joined one (which stays up)."""
        if self._started:
            self._started = False
            self._ray.shutdown()
        if self._reaper is not None:
            self._reaper.kill()
            self._reaper.wait()


# Kills what is left of a local Ray cluster once its driver is gone. ray.shutdown() covers a normal
# exit; after a SIGKILL of the driver, the raylet and GCS follow it but Ray's agent processes
# linger (re-parented to init, renamed "ray::DashboardAgent"...). So a detached watcher keeps a
# list of the driver's descendants (pid + start time, against pid reuse) and, once the driver is
# gone, kills those still alive and any process whose command line names the session.
_REAPER = r"""
import os, signal, sys, time
parent, session = int(sys.argv[1]), sys.argv[2].encode()
me = os.getpid()

def table():
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    st = f.read().rsplit(b")", 1)[1].split()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
                out[int(pid)] = (int(st[1]), st[19], cmd)  # ppid, start time, command line
            except (OSError, IndexError, ValueError):
                pass
    return out

seen = {}
while True:
    t = table()
    kids, todo = set(), [parent]
    while todo:
        p = todo.pop()
        for pid, (ppid, _, _) in t.items():
            if ppid == p and pid not in kids and pid != me:
                kids.add(pid)
                todo.append(pid)
    seen.update({pid: t[pid][1] for pid in kids})
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(1.0)
for pid, (ppid, start, cmd) in table().items():
    if pid != me and (seen.get(pid) == start or (session and session in cmd)):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def _session_name(ray) -> str | None:
    try:  # not a public API: without it the watcher still follows the driver's descendants
        return ray._private.worker._global_node.session_name
    except AttributeError:  # pragma: no cover - a future Ray
        return None


def _start_reaper(session_name: str | None):
    import subprocess

    if not os.path.isdir("/proc"):  # pragma: no cover - non-Linux: `ray stop` cleans up by hand
        return None
    return subprocess.Popen(
        [sys.executable, "-c", _REAPER, str(os.getpid()), session_name or ""],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
