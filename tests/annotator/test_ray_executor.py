"""`--executor ray`: CPU work on Ray actors of a real local Ray cluster (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from .conftest import annotate_cmd, read_rows, run_cli
from .test_resume_and_bad_rows import _big_manifest, _ledger_entries


COMPARED = ["sample_id", "status", "error_code", "artifact_mask", "artifact_regions", "explanation", "segments",
            "grounded"]


def test_ray_executor_gives_the_same_rows_as_local(forged, tmp_path):
    from fifa.annotator.run import AnnotateConfig, run_annotation

    local = run_annotation(forged, tmp_path / "local", AnnotateConfig(progress=False, workers=2))
    ray_run = run_annotation(forged, tmp_path / "ray", AnnotateConfig(progress=False, workers=2, executor="ray"))
    assert ray_run.processed == local.processed > 0
    assert ray_run.counts == local.counts

    def table(d):
        return sorted(({k: r[k] for k in COMPARED} for r in read_rows(d)), key=lambda r: r["sample_id"])

    assert table(tmp_path / "ray") == table(tmp_path / "local")
    import ray

    assert not ray.is_initialized()  # the local cluster it started is shut down again


def _alive(pids: set[int]) -> list[int]:
    out = []
    for p in pids:
        try:
            if psutil.Process(p).status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_ray_sigkill_leaves_no_process_and_resumes_exactly_once(forged, tmp_path):
    man, ids = _big_manifest(forged, tmp_path, copies=2)
    out = tmp_path / "out"
    env = dict(os.environ, GLOG_minloglevel="2")
    proc = subprocess.Popen(
        annotate_cmd("run", "--manifest", str(man), "--out", str(out), "--executor", "ray", "--workers", "2",
                     "--shard-rows", "3", "--no-progress"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and _ledger_entries(out) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    cluster = {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
    assert len(cluster) >= 3  # GCS, raylet, actors (and the reaper)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and _alive(cluster):
        time.sleep(0.2)
    assert not _alive(cluster), "processes of the killed run's Ray cluster survived it"
    assert 0 < len(read_rows(out)) < len(ids)
    p = run_cli("run", "--manifest", str(man), "--out", str(out), "--executor", "ray", "--workers", "2",
                "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    got = [r["sample_id"] for r in read_rows(out)]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))


def test_ray_missing_is_a_clear_user_error(forged, tmp_path):
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['fifa-annotate'] + sys.argv[1:];"
            "from fifa.annotator.cli import main; main()")
    p = subprocess.run([sys.executable, "-c", code, "run", "--manifest", str(forged), "--out", str(tmp_path / "o"),
                        "--executor", "ray"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "pip install 'fifa-toolkit[ray]'" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "o" / "annotations").exists()
