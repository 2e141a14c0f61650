"""`--executor ray`: CPU work on Ray actors of a real local Ray cluster (no mocks)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from .conftest import annotate_cmd, read_rows, run_cli
from .test_resume_and_bad_rows import _big_manifest, _ledger_entries

COMPARED = [
    "sample_id",
    "status",
    "error_code",
    "artifact_mask",
    "artifact_regions",
    "explanation",
    "segments",
    "grounded",
]


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
        annotate_cmd(
            "run",
            "--manifest",
            str(man),
            "--out",
            str(out),
            "--executor",
            "ray",
            "--workers",
            "2",
            "--shard-rows",
            "3",
            "--no-progress",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
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
    p = run_cli(
        "run", "--manifest", str(man), "--out", str(out), "--executor", "ray", "--workers", "2", "--no-progress"
    )
    assert p.returncode == 0, p.stderr[-2000:]
    got = [r["sample_id"] for r in read_rows(out)]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))


def test_ray_missing_is_a_clear_user_error(forged, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; sys.argv = ['fifa-annotate'] + sys.argv[1:];"
        "from fifa.annotator.cli import main; main()"
    )
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            "--manifest",
            str(forged),
            "--out",
            str(tmp_path / "o"),
            "--executor",
            "ray",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert "pip install 'fifa-toolkit[ray]'" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "o" / "annotations").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_joins_a_running_cluster(forged, tmp_path):
    """`--ray-address HOST:PORT` runs on a cluster started apart (`ray start --head`), and leaves it up."""
    port = _free_port()
    # Ray >= 2.5x: token authentication, which an explicit address must opt into (Ray's rule)
    env = dict(
        os.environ,
        RAY_USAGE_STATS_ENABLED="0",
        GLOG_minloglevel="2",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN="fifa-test-" + "0" * 32,
    )
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        out = tmp_path / "out"
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:  # the head needs a few seconds: wait until its GCS port listens
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.5)
        while True:  # the GCS may still be starting: a run before that is a clear user error (exit 2)
            p = run_cli(
                "run",
                "--manifest",
                str(forged),
                "--out",
                str(out),
                "--executor",
                "ray",
                "--ray-address",
                address,
                "--workers",
                "2",
                "--no-progress",
                env=env,
            )
            if p.returncode != 2 or time.time() > deadline:
                break
            assert "cannot start or join the Ray cluster" in p.stderr
            time.sleep(2)
        assert p.returncode == 0, p.stderr[-2000:]
        rows = read_rows(out)
        assert len(rows) == len({r["sample_id"] for r in rows}) > 0
        assert all(r["status"] == "ok" for r in rows)
        assert head.poll() is None  # the cluster the run joined is still up
        # more workers than the cluster's free CPUs: a clear error, not actors waiting forever
        p = run_cli(
            "run",
            "--manifest",
            str(forged),
            "--out",
            str(tmp_path / "out2"),
            "--executor",
            "ray",
            "--ray-address",
            address,
            "--workers",
            "8",
            "--no-progress",
            env=env,
        )
        assert p.returncode == 2 and "--workers 8 but the Ray cluster has 2 free CPU(s)" in p.stderr
        assert head.poll() is None
    finally:
        cluster = {c.pid for c in psutil.Process(head.pid).children(recursive=True)} | {head.pid}
        os.killpg(head.pid, signal.SIGKILL)  # SIGTERM works too, but takes Ray ~30 s
        head.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and _alive(cluster):
            time.sleep(0.2)
        for pid in _alive(cluster):  # agents that left the process group
            os.kill(pid, signal.SIGKILL)
