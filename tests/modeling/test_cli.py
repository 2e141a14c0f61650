"""`fifa-train` command lines: help with examples, user mistakes as exit 2 without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _run(*args, timeout=300):
    return subprocess.run([str(BIN / "fifa-train"), *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("cmd", [[], ["run"], ["predict"]])
def test_help_shows_examples(cmd):
    p = _run(*cmd, "--help")
    assert p.returncode == 0 and "Example" in p.stdout and "fifa-train" in p.stdout


def test_user_mistakes_exit_2_with_a_message(small_build, tmp_path, tiny_cfg_path):
    cases = [
        (
            ["run", "--data", str(small_build), "--out", str(tmp_path / "a"), "--set", "train.max_stpes=3"],
            "unknown config key 'train.max_stpes'; did you mean 'train.max_steps'?",
        ),
        (
            [
                "run",
                "--data",
                str(small_build),
                "--out",
                str(tmp_path / "b"),
                "--set",
                f"model.base={tmp_path}/missing",
            ],
            "model path not found",
        ),
        (["run", "--data", str(tmp_path / "nobuild"), "--out", str(tmp_path / "c")], "build folder not found"),
        (
            ["run", "--data", str(small_build), "--out", str(tmp_path / "d"), "--set", "data.tasks.fc=1"],
            "no rows for task(s) fc",
        ),
        (
            [
                "predict",
                "--checkpoint",
                str(tmp_path),
                "--bench",
                str(small_build / "bench.parquet"),
                "--out",
                str(tmp_path / "p.parquet"),
            ],
            "holds no checkpoint",
        ),
    ]
    for args, msg in cases:
        p = _run(*args)
        assert p.returncode == 2, (args, p.stderr[-2000:])
        assert msg in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "d" / "checkpoint-000001").exists()
