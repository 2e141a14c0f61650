"""Exact resume after SIGKILL, refusal of another config, and 2-process DDP (gloo) with batches without [SEG]."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from micro_config import MICRO

from fifa.modeling.logs import read_metrics

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cmd(build, out, *extra):
    return [
        str(BIN / "fifa-train"),
        "run",
        "--data",
        str(build),
        "--out",
        str(out),
        "--no-progress",
        *[x for s in (*MICRO, *extra) for x in ("--set", s)],
    ]


def _losses(out) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out) if "loss" in r}


def test_resume_after_sigkill_continues_exactly(small_build, tmp_path):
    extra = ("train.max_steps=10", "train.save_every=3", "data.num_workers=1", "lora.dropout=0.1")
    ref = tmp_path / "ref"
    p = subprocess.run(_cmd(small_build, ref, *extra), env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    full = _losses(ref)
    assert sorted(full) == list(range(1, 11))

    run = tmp_path / "run"
    proc = subprocess.Popen(
        _cmd(small_build, run, *extra), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600
    while time.time() < deadline and not (run / "latest.json").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = json.loads((run / "latest.json").read_text())["step"]
    assert 3 <= saved < 10, "the run was not interrupted in the middle"
    p = subprocess.run(_cmd(small_build, run, *extra), env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    resumed = _losses(run)
    assert sorted(resumed) == list(range(1, 11))
    assert resumed == full  # bit-identical losses, before and after the interruption

    # the same run folder with another config is refused, naming the keys
    p = subprocess.run(
        _cmd(small_build, run, *extra, "train.lr=0.5"), env=ENV, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 2 and "train.lr" in p.stderr and "Traceback" not in p.stderr


def test_ddp_two_cpu_processes_with_batches_without_seg(small_build, tmp_path):
    out = tmp_path / "ddp"
    args = _cmd(
        small_build,
        out,
        "train.max_steps=4",
        "train.batch_size=2",
        "train.save_every=2",
        "data.tasks.det=1",
        "data.tasks.loc=0.3",
        "eval.every=2",
        "eval.max_questions=8",
        "predict.max_new_tokens=6",
    )[1:]
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", "29517", "-m", "fifa.modeling.cli", *args]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    losses = _losses(out)
    assert sorted(losses) == [1, 2, 3, 4]
    evals = [r for r in read_metrics(out) if "eval/det/acc" in r or "eval/loc/giou" in r]
    assert [r["step"] for r in evals] == [2, 4]  # rank 0 evaluates through the scorer, rank 1 waits
    assert (out / "plots" / "loss.png").is_file() and (out / "plots" / "eval.png").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "heads.safetensors").is_file()
