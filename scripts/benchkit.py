"""What every benchmark script shares: the machine, process-tree sampling, timing, the result row.

Scripts run as ``python scripts/NAME.py``, so ``scripts/`` is on ``sys.path`` and ``import benchkit``
works without path edits; tests import it the same way (pytest's ``pythonpath`` lists ``scripts``).

- :func:`machine` / :func:`describe`: the CPU model, cores, Python (+ torch and the GPU on request), one dict
  and one line for every ``machine`` field of the benchmark JSONs.
- :class:`TreeSampler`: the peak summed RSS and the CPU seconds of a process and all its descendants
  (workers, pools), polled by a thread (psutil), for a child launched with ``Popen`` or this process itself.
- :class:`Stopwatch`: wall and CPU seconds of a block.
- :class:`Row` / :func:`markdown_table`: one figure against its same-run baseline and target, as
  ``scripts/bench_all.py`` writes it to ``bench.json`` and ``bench.md``.
- :func:`testkit`: a module of ``tests/testkit`` (fixture builders, the scripted LLM server) imported as
  ``testkit.NAME`` from its file, as pytest imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType

import psutil

ROOT = Path(__file__).resolve().parents[1]
MB = 2**20


# ------------------------------------------------------------------------------------ the machine
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine(gpu: bool = False) -> dict[str, object]:
    """The machine a benchmark ran on: CPU model, cores, architecture, Python, 1-minute load average; with
    ``gpu``, also torch's version and the name of GPU 0 (``None`` without one)."""
    m: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
    if gpu:
        import torch

        m["torch"] = torch.__version__
        m["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return m


def describe(m: dict[str, object]) -> str:
    """One line for a :func:`machine` dict: ``AMD EPYC 7B13, 2 cores, x86_64, Python 3.12.3[, no GPU, torch 2.13]``."""
    line = f"{m['cpu']}, {m['cores']} cores, {m['arch']}, Python {m['python']}"
    if "torch" in m:
        line += f", {m['gpu'] or 'no GPU'}, torch {m['torch']}"
    return line


# ------------------------------------------------------------------------------------ sampling
class TreeSampler:
    """Peak summed RSS (bytes) and CPU seconds (user + system) of process ``pid`` (default: this process) and
    all its descendants, sampled every ``every`` s by a daemon thread. Use as a context manager around the work
    (or :meth:`start` / :meth:`stop`); the last sample is taken at the stop.

    ``cpu_s`` sums the last sample of every process seen (a lower bound: a process that exits between two
    samples keeps its last reading); for this process, the CPU seconds that it and its descendants of the
    moment had used before the start are subtracted (a pool left by earlier work counts only what it does now)."""

    def __init__(self, pid: int | None = None, every: float = 0.1) -> None:
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self.every = every
        self._pid = os.getpid() if pid is None else pid
        self._cpu0 = 0.0
        self._base: dict[int, float] = {}  # CPU seconds before the start, per process (pid=None only)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        try:
            self._root: psutil.Process | None = psutil.Process(self._pid)
            if pid is None:
                t = self._root.cpu_times()
                self._cpu0 = t.user + t.system
                self._base = self._cpu_of(self._root.children(recursive=True))
        except psutil.NoSuchProcess:
            self._root = None

    @property
    def peak_mb(self) -> float:
        return self.peak / MB

    @staticmethod
    def _cpu_of(procs: list[psutil.Process]) -> dict[int, float]:
        out = {}
        for p in procs:
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        return out

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the whole tree since the start (see the class doc)."""
        return sum(v - self._base.get(k, 0.0) for k, v in self.cpu.items()) - self._cpu0

    @property
    def root_cpu_s(self) -> float:
        """CPU seconds of the sampled process alone (its last sample)."""
        return self.cpu.get(self._pid, 0.0) - self._cpu0

    def sample(self) -> None:
        if self._root is None:
            return
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:  # the root has exited
            return
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
                t = p.cpu_times()
                self.cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def __enter__(self) -> TreeSampler:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# ------------------------------------------------------------------------------------ timing
class Stopwatch:
    """Wall seconds and this process's CPU seconds (user + system) of a ``with`` block; read while running too."""

    def __enter__(self) -> Stopwatch:
        self._t0, self._c0 = time.perf_counter(), time.process_time()
        self._t1: float | None = None
        self._c1 = 0.0
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._t1, self._c1 = time.perf_counter(), time.process_time()

    @property
    def wall_s(self) -> float:
        return (time.perf_counter() if self._t1 is None else self._t1) - self._t0

    @property
    def cpu_s(self) -> float:
        return (time.process_time() if self._t1 is None else self._c1) - self._c0


# ------------------------------------------------------------------------------------ the result row
@dataclass
class Row:
    """One figure of ``make bench``: its value, the baseline measured in the same run, the ratio, the target."""

    stage: str
    figure: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None  # value / baseline_value (or as the figure says)
    target: str = ""
    met: bool | None = None

    def markdown(self) -> str:
        base = (
            f"{self.baseline}: {fmt(self.baseline_value)} {self.unit}"
            if self.baseline_value is not None
            else self.baseline
        )
        mark = {True: "✓", False: "✗", None: ""}[self.met]
        ratio = "" if self.ratio is None else f"{self.ratio:g}x"
        cells = [self.stage, self.figure, f"{fmt(self.value)} {self.unit}", base, ratio, self.target, mark]
        return "| " + " | ".join(cells) + " |"


TABLE_HEAD = ["| stage | figure | value | baseline (same run) | ratio | target | |", "|---|---|---:|---|---:|---|---|"]


def fmt(v: float | None) -> str:
    """A figure as the table shows it: thousands separated above 1,000, else ``%g``."""
    return "" if v is None else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}")


def rounded(x: float | None, n: int = 2) -> float | None:
    return None if x is None else round(float(x), n)


def markdown_table(rows: list[Row]) -> list[str]:
    """The lines of the Markdown table of ``rows`` (head included)."""
    return [*TABLE_HEAD, *(r.markdown() for r in rows)]


# ------------------------------------------------------------------------------------ test support
def testkit(name: str) -> ModuleType:
    """``tests/testkit/NAME.py`` imported as ``testkit.NAME`` (the package registered from its folder: no
    ``sys.path`` edit), the same module pytest's ``pythonpath = ["tests"]`` gives the tests."""
    if "testkit" not in sys.modules:
        init = ROOT / "tests" / "testkit" / "__init__.py"
        spec = importlib.util.spec_from_file_location("testkit", init, submodule_search_locations=[str(init.parent)])
        assert spec is not None and spec.loader is not None
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["testkit"] = pkg
        spec.loader.exec_module(pkg)
    return importlib.import_module(f"testkit.{name}")
