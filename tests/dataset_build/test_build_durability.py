"""`fifa-data build` killed half-way (real SIGKILL inside pass 2): the previous build stays whole, no
half build appears, and the rerun gives the same bytes as a build that was never interrupted."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
TESTS = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _build(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "fifa-data"), "build", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def _killed_build(target: str, nth: int, *args) -> int:
    env = dict(os.environ, PYTHONPATH=str(TESTS), GLOG_minloglevel="2")
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "testkit.killpoints",
                target,
                str(nth),
                "before",
                "--",
                "fifa-data",
                "build",
                *map(str, args),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    return p.returncode


def test_killed_build_keeps_the_old_build_and_the_rerun_is_identical(annotated, tmp_path):
    args = ("--annotations", annotated["ann"], "--seed", "3")
    ref = tmp_path / "ref"
    assert _build(*args, "--out", ref).returncode == 0
    out = tmp_path / "b"
    assert _build(*args, "--out", out).returncode == 0
    assert _digest(out) == _digest(ref)  # same inputs, same bytes
    assert _killed_build("fifa.pipelines.build_rows:_write_records", 1, *args, "--out", out) == -signal.SIGKILL
    assert _digest(out) == _digest(ref), "the previous build was damaged by the killed one"
    assert list(tmp_path.glob(".b.tmp-*")), "the kill happened before the build started writing"
    p = _build(*args, "--out", out)
    assert p.returncode == 0, p.stderr[-2000:]
    assert _digest(out) == _digest(ref)
    assert not list(tmp_path.glob(".b.*")), "a killed build's temp folder was left behind"
