"""Helpers of the pipelines tests (importable thanks to tests/pipelines/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
SEED = 3
RATIOS = (0.6, 0.2, 0.2)


def build_config(**kw):
    from fifa.pipelines.build import BuildConfig
    from fifa.pipelines.splits import SplitRatios

    kw.setdefault("seed", SEED)
    kw.setdefault("ratios", SplitRatios(*RATIOS))
    kw.setdefault("bench_per_class", None)
    return BuildConfig(**kw)


def run_data(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([str(BIN / "fifa-data"), *args], capture_output=True, text=True, env=env, timeout=timeout)
