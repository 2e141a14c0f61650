"""Fault suite (real processes): SIGKILL at seeded random moments of a run and of a retry, a damaged
shard, a full disk. Whatever happens, resuming gives every row exactly once, and the same rows as a
run that was never interrupted."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .conftest import annotate_cmd, read_rows, run_cli

COMPARED = (
    "sample_id",
    "status",
    "error_code",
    "label",
    "artifact_mask",
    "artifact_regions",
    "explanation",
    "segments",
)


def _dataset(forged: Path, dest: Path, n_missing: int = 4) -> tuple[Path, list[Path]]:
    """A private copy of the forged set where ``n_missing`` fakes lack their image (they fail, then
    succeed on retry once the files are back)."""
    shutil.copytree(forged.parent, dest)
    rows = pq.read_table(dest / "manifest.parquet").to_pylist()
    away = []
    for r in [r for r in rows if r["label"] == "fake"][:n_missing]:
        p = dest / r["image_path"]
        p.rename(p.with_suffix(".away"))
        away.append(p)
    return dest / "manifest.parquet", away


def _restore(away: list[Path]) -> None:
    for p in away:
        p.with_suffix(".away").rename(p)


def _args(cmd: str, man: Path, out: Path) -> list[str]:
    common = ["--workers", "2", "--shard-rows", "3", "--no-progress"]
    return ["run", "--manifest", str(man), "--out", str(out), *common] if cmd == "run" else ["retry", str(out), *common]


def _kill_after(args: list[str], seconds: float) -> bool:
    """Start the command, SIGKILL its process group after ``seconds``; True if it was still running."""
    env = dict(os.environ, GLOG_minloglevel="2")
    p = subprocess.Popen(
        annotate_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    try:
        p.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        return True


def _timed(args: list[str]) -> float:
    t = time.perf_counter()
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr[-2000:]
    return time.perf_counter() - t


def _comparable(out: Path) -> dict:
    return {r["sample_id"]: {k: r[k] for k in COMPARED} for r in read_rows(out)}


def test_sigkill_at_ten_random_moments_of_run_and_retry(forged, tmp_path):
    rng = np.random.default_rng(20261127)
    man_ref, away_ref = _dataset(forged, tmp_path / "ref_data")
    ref = tmp_path / "ref"
    t_run = _timed(_args("run", man_ref, ref))
    _restore(away_ref)
    t_retry = _timed(_args("retry", man_ref, ref))
    reference = _comparable(ref)

    man, away = _dataset(forged, tmp_path / "data")
    out = tmp_path / "out"
    kills = 0
    for cmd, span, before in (("run", t_run, None), ("retry", t_retry, lambda: _restore(away))):
        if before:
            before()
        for t in np.sort(rng.uniform(0.2, span, size=5)):  # spread over the whole command
            kills += _kill_after(_args(cmd, man, out), float(t))
            ids = [r["sample_id"] for r in read_rows(out)]
            assert len(ids) == len(set(ids)), f"a row doubled after a kill at {t:.2f}s of {cmd}"
        p = run_cli(*_args(cmd, man, out))  # resume to the end
        assert p.returncode == 0, p.stderr[-2000:]
    assert kills >= 6  # most kill moments fell inside a running command
    assert _comparable(out) == reference
    assert not (out / ".retry").exists()


def test_a_half_written_shard_is_set_aside_and_its_rows_redone(forged, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--manifest", str(forged), "--out", str(out), "--workers", "1", "--shard-rows", "5", "--no-progress"]
    assert run_cli(*args).returncode == 0
    reference = _comparable(out)
    shard = sorted((out / "annotations").glob("part-*.parquet"))[1]
    lost = set(pq.read_table(shard, columns=["sample_id"]).column("sample_id").to_pylist())
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])  # as a copy or a dying disk leaves it
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "damaged" in p.stderr and shard.name in p.stderr
    assert (out / "annotations" / ".damaged" / shard.name).is_file()
    assert _comparable(out) == reference
    assert len(lost) == 5 and sum(r["sample_id"] in lost for r in read_rows(out)) == 5


def _enospc_run(target: str, nth: int, args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.run(
            [sys.executable, "-m", "testkit.killpoints", target, str(nth), "enospc", "--", "fifa-annotate", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        log.seek(0)
        p.stderr = log.read()
    return p


def test_full_disk_is_a_clear_error_and_the_rerun_completes(forged, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--manifest", str(forged), "--out", str(out), "--workers", "1", "--shard-rows", "4", "--no-progress"]
    p = _enospc_run("pyarrow.parquet:write_table", 4, args)  # write 1 is the manifest copy: shards 3.. fail
    assert p.returncode == 1, p.stderr[-3000:]
    assert "no space left on the device" in p.stderr and "Traceback" not in p.stderr
    shards = sorted((out / "annotations").glob("part-*.parquet"))
    assert len(shards) == 2 and not list((out / "annotations").glob(".tmp-*"))
    before = {s.name: hashlib.sha256(s.read_bytes()).hexdigest() for s in shards}
    p = run_cli(*args)  # space is back
    assert p.returncode == 0, p.stderr[-2000:]
    assert all(hashlib.sha256((out / "annotations" / n).read_bytes()).hexdigest() == h for n, h in before.items())
    ids = [r["sample_id"] for r in read_rows(out)]
    assert sorted(ids) == sorted(pq.read_table(forged).column("sample_id").to_pylist())
