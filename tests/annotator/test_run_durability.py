"""The run loop under stress, with real processes: one run per folder, Ctrl-C keeps every answered row
and nothing is paid twice, a dead worker costs nothing, one bad reply fails one row, the cache cannot
fail a row and never mixes endpoints, paths outside the data root are never opened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from testkit.fake_llm_server import FakeLLMServer

from .conftest import annotate_cmd, read_rows, run_cli

KEY = {"OPENAI_API_KEY": "sk-test-durability"}


def _openai(man: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [
        "run",
        "--manifest",
        str(man),
        "--out",
        str(out),
        "--llm",
        "openai",
        "--base-url",
        url,
        "--model",
        "m",
        "--workers",
        "1",
        "--no-progress",
        "--timeout",
        "5",
        *extra,
    ]


def _popen(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, GLOG_minloglevel="2", **KEY)
    return subprocess.Popen(
        annotate_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )


def _wait_for(cond, timeout: float = 120.0) -> None:
    t = time.time()
    while not cond():
        assert time.time() - t < timeout, "timed out"
        time.sleep(0.05)


def _n_fakes_needing_llm(man: Path) -> int:
    return sum(1 for r in pq.read_table(man).to_pylist() if r["label"] == "fake")


def test_second_run_on_one_folder_is_refused_and_a_dead_holder_is_taken_over(forged, tmp_path):
    out = tmp_path / "out"
    with FakeLLMServer(latency=0.5) as srv:
        a = _popen(_openai(forged, out, srv.url, "--concurrency", "1", "--no-cache"))
        _wait_for(lambda: (out / ".lock").is_file() and (out / ".lock").read_text().strip() != "")
        b = run_cli(*_openai(forged, out, srv.url, "--no-cache"), env=KEY)
        assert b.returncode == 2, b.stderr
        assert "in use by another run" in b.stderr and f"pid {a.pid}" in b.stderr and "Traceback" not in b.stderr
        _wait_for(lambda: len(srv.answered) >= 2)
        os.killpg(a.pid, signal.SIGKILL)  # the holder dies: its lock goes with it
        a.wait(timeout=30)
    c = run_cli("run", "--manifest", str(forged), "--out", str(out), "--workers", "1", "--no-progress")
    assert c.returncode == 0, c.stderr[-2000:]
    ids = [r["sample_id"] for r in read_rows(out)]
    assert len(ids) == len(set(ids)) == pq.read_metadata(forged).num_rows


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_keeps_every_answered_row_and_nothing_is_paid_twice(forged, tmp_path, sig):
    out = tmp_path / "out"
    n_fakes = _n_fakes_needing_llm(forged)
    with FakeLLMServer(latency=0.4) as srv:
        p = _popen(_openai(forged, out, srv.url, "--concurrency", "3", "--no-cache"))
        _wait_for(lambda: len(srv.answered) >= 5)
        os.killpg(p.pid, sig)  # as a terminal's Ctrl-C: the whole process group
        _, err = p.communicate(timeout=60)
        answered_first = list(srv.answered)
        assert p.returncode == 130, err[-2000:]
        assert "Traceback" not in err
        rows = read_rows(out)
        paid = [r for r in rows if r["llm_calls"]]
        assert len(paid) == len(answered_first) and all(r["status"] == "ok" for r in paid)
        assert len(answered_first) < n_fakes  # really stopped early
        run = json.loads((out / "run.json").read_text())
        assert run["invocations"][-1]["stopped"] == "interrupted" and run["pending"] > 0
        # The rerun (no cache to help) asks only for what was never answered.
        p2 = run_cli(*_openai(forged, out, srv.url, "--concurrency", "3", "--no-cache"), env=KEY)
        assert p2.returncode == 0, p2.stderr[-2000:]
        assert len(srv.answered) == len(set(srv.answered)), "an answer was paid twice"
    ids = [r["sample_id"] for r in read_rows(out)]
    assert len(ids) == len(set(ids)) == pq.read_metadata(forged).num_rows


def test_killed_worker_is_replaced_and_every_row_done_once(forged, tmp_path):
    rows = pq.read_table(forged).to_pylist()
    many = [dict(r, sample_id=f"{r['sample_id']}__{c}") for c in range(4) for r in rows]
    man = forged.parent / f"many_{tmp_path.name}.parquet"
    pq.write_table(pa.Table.from_pylist(many), man)
    out = tmp_path / "out"
    p = _popen(
        ["run", "--manifest", str(man), "--out", str(out), "--workers", "2", "--no-progress", "--shard-rows", "5"]
    )
    _wait_for(lambda: (out / "ledger.jsonl").is_file())
    server = next(c for c in psutil.Process(p.pid).children() if "forkserver" in " ".join(c.cmdline()))
    victim = server.children()[0]
    victim.kill()
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    got = read_rows(out)
    ids = [r["sample_id"] for r in got]
    assert len(ids) == len(set(ids)) == len(many)
    assert all(r["status"] == "ok" for r in got), {r["error_code"] for r in got}


def test_a_row_that_kills_its_worker_fails_alone(forged, tmp_path):
    from fifa.annotator.explain_offline import OfflineExplainer
    from fifa.annotator.manifest import read_manifest
    from fifa.annotator.pipeline import Pipeline, PipelineConfig, RowSink
    from fifa.annotator.store import AnnotationStore
    from fifa.annotator.worker import WorkerConfig
    from testkit.crashing import CrashingExecutor

    rows = [r.to_dict() for r in read_manifest(forged)]
    rows[5]["sample_id"] += "__crash"
    for r in rows:
        r.pop("refused")
    ex = CrashingExecutor(2, WorkerConfig())
    store = AnnotationStore(tmp_path / "out")
    try:
        with RowSink(store) as sink:
            pipe = Pipeline(
                executor=ex,
                explainer=OfflineExplainer(),
                offline=OfflineExplainer(),
                sink=sink,
                cfg=PipelineConfig(window=16, concurrency=1, llm_needed=False),
            )
            assert pipe.run([rows[i : i + 4] for i in range(0, len(rows), 4)]) is None
    finally:
        ex.shutdown()
    got = {r["sample_id"]: r for r in read_rows(tmp_path / "out")}
    assert len(got) == len(rows)
    assert got[rows[5]["sample_id"]]["error_code"] == "worker_crashed"
    assert [s for s, r in got.items() if r["status"] != "ok"] == [rows[5]["sample_id"]]
    assert pipe.restarts >= 1


class _Flaky:
    """An explainer (the documented interface) that raises on one sample: a bug, or a full disk."""

    name = "flaky/none/v0"
    needs_images = True

    def __init__(self, bad: str):
        from fifa.annotator.explain_offline import OfflineExplainer

        self.bad, self.inner = bad, OfflineExplainer()

    def explain(self, ctx):
        if ctx.sample_id == self.bad:
            raise OSError(28, "No space left on device")
        return self.inner.explain(ctx)


def test_an_explainer_exception_fails_one_row_not_the_run(forged, tmp_path):
    from fifa.annotator.run import AnnotateConfig, run_annotation

    fakes = [r["sample_id"] for r in pq.read_table(forged).to_pylist() if r["label"] == "fake"]
    summary = run_annotation(
        forged, tmp_path / "out", AnnotateConfig(llm="openai", workers=1, progress=False), explainer=_Flaky(fakes[2])
    )
    got = {r["sample_id"]: r for r in read_rows(tmp_path / "out")}
    assert got[fakes[2]]["status"] == "failed" and got[fakes[2]]["error_code"] == "llm_internal_error"
    assert "No space left" in got[fakes[2]]["error"]
    assert sum(r["status"] == "ok" for r in got.values()) == len(got) - 1 == summary.ok


def test_cache_write_failure_keeps_the_rows(forged, tmp_path):
    cache = tmp_path / "cache"  # every shard folder name is taken by a file: no entry can be written
    cache.mkdir()
    for i in range(256):
        (cache / f"{i:02x}").write_text("not a folder")
    with FakeLLMServer() as srv:
        p = run_cli(*_openai(forged, tmp_path / "out", srv.url, "--cache-dir", str(cache)), env=KEY)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "cannot write the LLM response cache" in p.stderr
    assert all(r["status"] == "ok" for r in read_rows(tmp_path / "out"))


def test_cache_never_mixes_endpoints(forged, tmp_path):
    cache = tmp_path / "cache"
    with FakeLLMServer() as a, FakeLLMServer() as b:
        assert run_cli(*_openai(forged, tmp_path / "o1", a.url, "--cache-dir", str(cache)), env=KEY).returncode == 0
        n_a = a.requests
        assert n_a > 0
        assert run_cli(*_openai(forged, tmp_path / "o2", b.url, "--cache-dir", str(cache)), env=KEY).returncode == 0
        assert b.requests == n_a  # same model name, another server: asked again
        url_variant = a.url.replace("127.0.0.1", "127.0.0.1") + "/"  # trailing slash: the same endpoint
        assert (
            run_cli(*_openai(forged, tmp_path / "o3", url_variant, "--cache-dir", str(cache)), env=KEY).returncode == 0
        )
        assert a.requests == n_a


def test_manifest_copy_follows_an_extended_manifest(forged, tmp_path):
    t = pq.read_table(forged)
    first = forged.parent / f"first_{tmp_path.name}.parquet"
    pq.write_table(t.slice(0, 10), first)
    out = tmp_path / "out"
    assert (
        run_cli("run", "--manifest", str(first), "--out", str(out), "--workers", "1", "--no-progress").returncode == 0
    )
    assert pq.read_metadata(out / "manifest.resolved.parquet").num_rows == 10
    assert (
        run_cli("run", "--manifest", str(forged), "--out", str(out), "--workers", "1", "--no-progress").returncode == 0
    )
    copy = pq.read_table(out / "manifest.resolved.parquet")
    assert sorted(copy.column("sample_id").to_pylist()) == sorted(t.column("sample_id").to_pylist())


def test_paths_outside_the_data_root_are_refused_and_never_opened(forged, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    rows = pq.read_table(forged).to_pylist()
    fake = next(r for r in rows if r["label"] == "fake")
    src = forged.parent / fake["source_path"]
    img = forged.parent / fake["image_path"]
    (data / "ok_fake.png").write_bytes(img.read_bytes())
    (data / "ok_src.png").write_bytes(src.read_bytes())
    (outside / "secret.png").write_bytes(img.read_bytes())
    os.mkfifo(outside / "fifo.png")  # opening it would block the run forever
    (data / "link.png").symlink_to(outside / "fifo.png")
    base = dict(label="fake", method="Blur", category="FE", group="g")
    man_rows = [
        dict(base, sample_id="good", image_path="ok_fake.png", source_path="ok_src.png"),
        dict(base, sample_id="dotdot", image_path="../outside/fifo.png", source_path="ok_src.png"),
        dict(base, sample_id="absolute", image_path=str(outside / "fifo.png"), source_path="ok_src.png"),
        dict(base, sample_id="symlink", image_path="link.png", source_path="ok_src.png"),
        dict(base, sample_id="source_out", image_path="ok_fake.png", source_path="../outside/fifo.png"),
    ]
    man = data / "manifest.csv"
    pq.write_table(pa.Table.from_pylist(man_rows), data / "m.parquet")
    import pyarrow.csv as pcsv

    pcsv.write_csv(pq.read_table(data / "m.parquet"), man)
    p = run_cli(
        "run", "--manifest", str(man), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress", timeout=120
    )
    assert p.returncode == 0, p.stderr[-2000:]
    got = {r["sample_id"]: r for r in read_rows(tmp_path / "out")}
    assert got["good"]["status"] == "ok"
    for sid in ("dotdot", "absolute", "symlink", "source_out"):
        assert got[sid]["status"] == "failed" and got[sid]["error_code"] == "path_outside_root", sid
        assert "--allow-outside-root" in got[sid]["error"]
    assert "symlink" in got["symlink"]["error"]
    # The user's explicit choice lets a path out (a regular file here, not the FIFO).
    (data / "m2.csv").write_text(
        f"sample_id,image_path,source_path,label\nx,{outside / 'secret.png'},ok_src.png,fake\n"
    )
    p = run_cli(
        "run",
        "--manifest",
        str(data / "m2.csv"),
        "--out",
        str(tmp_path / "out2"),
        "--workers",
        "1",
        "--no-progress",
        "--allow-outside-root",
    )
    assert p.returncode == 0 and read_rows(tmp_path / "out2")[0]["status"] == "ok", p.stderr[-2000:]
