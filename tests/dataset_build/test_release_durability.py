"""`fifa-data release` over an existing release, SIGKILLed (a real process, a real signal) while the new release
is written and at each step of the folder swap: the old release stays whole until the new one is complete, the
folder is always one complete release, and the next run leaves no temp folder behind.

Before fifa/core/atomic.py the old release was deleted (``shutil.rmtree``) before the new one was moved in:
a kill there left no release, or half of one."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from build_helpers import run_data

TESTS = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _complete(folder: Path) -> str:
    """The release's version, after checking every file its MANIFEST lists (and no other) against its sha256."""
    man = json.loads((folder / "MANIFEST.json").read_text("utf-8"))
    files = {k: v for k, v in _digest(folder).items() if k != "MANIFEST.json"}
    assert files == {k: v["sha256"] for k, v in man["files"].items()}, f"{folder} is not one complete release"
    return man["version"]


def _killed_release(target: str, when: str, *args: str) -> int:
    env = dict(os.environ, PYTHONPATH=str(TESTS), GLOG_minloglevel="2")
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.run(
            [sys.executable, "-m", "testkit.killpoints", target, "1", when, "--", "fifa-data", "release", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    return p.returncode


@pytest.mark.parametrize(
    "target, when, version_after",
    [
        ("fifa.pipelines.release:write_json", "before", "1"),  # half the new release written: the old one whole
        ("fifa.pipelines.release:swap_folder", "before", "1"),  # the new release complete, not swapped in yet
        ("fifa.core.atomic:_remove_tree", "before", "2"),  # swapped in; the old one not yet removed
        ("fifa.core.atomic:_remove_tree", "after", "2"),  # the old one removed (the old code: before the new was in)
    ],
)
def test_a_killed_release_leaves_one_complete_release(built, tmp_path, target, when, version_after):
    out = tmp_path / "rel"
    r = run_data("release", "--build", str(built), "--version", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    old = _digest(out)
    args = ("--build", str(built), "--version", "2", "--out", str(out))
    assert _killed_release(target, when, *args) == -signal.SIGKILL
    if when == "before":  # a temp folder (the new release, or the old one swapped out) is left
        assert list(tmp_path.glob(".rel.*")), "the kill did not happen while the release was being written"
    assert _complete(out) == version_after
    if version_after == "1":
        assert _digest(out) == old, "the old release was touched by the killed one"
    r = run_data(*["release", *args])
    assert r.returncode == 0, r.stderr[-2000:]
    assert _complete(out) == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel"], "a killed release's temp folder was left behind"
