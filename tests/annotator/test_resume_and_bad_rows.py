"""Durability: SIGKILL at several points then rerun (real processes); bad rows recorded, the rest done."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from .conftest import annotate_cmd, read_rows, run_cli


def _big_manifest(forged: Path, d: Path, copies: int) -> tuple[Path, list[str]]:
    """The forged rows ``copies`` times under new ids, in a manifest beside the forged images (its paths
    stay inside the manifest's folder, the data root)."""
    rows = pq.read_table(forged).to_pylist()
    out = []
    for c in range(copies):
        for r in rows:
            out.append(
                dict(
                    sample_id=f"{r['sample_id']}__{c}",
                    image_path=r["image_path"],
                    source_path=r["source_path"],
                    label=r["label"],
                    method=r["method"],
                    category=r["category"],
                    group=r["group"],
                )
            )
    man = forged.parent / f"big_{d.name}_{copies}.parquet"
    pq.write_table(pa.Table.from_pylist(out), man)
    return man, [r["sample_id"] for r in out]


def _ledger_entries(out: Path) -> int:
    p = out / "ledger.jsonl"
    if not p.is_file():
        return 0
    return sum(1 for line in p.read_text().splitlines() if line.strip())


def _start(man: Path, out: Path, root: Path) -> subprocess.Popen:
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.Popen(
        annotate_cmd(
            "run",
            "--manifest",
            str(man),
            "--out",
            str(out),
            "--workers",
            "2",
            "--shard-rows",
            "3",
            "--data-root",
            str(root),
            "--no-progress",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def test_sigkill_at_several_points_then_resume(forged, tmp_path):
    man, ids = _big_manifest(forged, tmp_path, copies=3)  # 108 rows
    out = tmp_path / "out"
    # Kill points: before anything is written, after 1 shard, after several shards, mid-way.
    plans = [("delay", 0.8), ("ledger", 1), ("ledger", 4), ("ledger", 9)]
    kills = 0
    children: set[int] = set()
    for kind, value in plans:
        proc = _start(man, out, forged.parent)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if kind == "delay" and time.time() - (deadline - 120) >= value:
                break
            if kind == "ledger" and _ledger_entries(out) >= value:
                break
            time.sleep(0.02)
        if proc.poll() is None:
            children.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 3
    rows_mid = read_rows(out)
    assert len(rows_mid) < len(ids)  # really interrupted
    p = run_cli(
        "run",
        "--manifest",
        str(man),
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-progress",
        "--data-root",
        str(forged.parent),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    rows = read_rows(out)
    got = [r["sample_id"] for r in rows]
    assert len(got) == len(set(got)), "a row was written twice"
    assert sorted(got) == sorted(ids), "a row was lost"
    assert all(r["status"] == "ok" for r in rows)
    assert not list((out / "annotations").glob(".tmp-*"))
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"ok": len(ids)}
    # No orphaned worker survives its killed parent.
    assert children
    deadline = time.time() + 10
    while time.time() < deadline and any(
        psutil.pid_exists(c) and psutil.Process(c).status() != "zombie" for c in children
    ):
        time.sleep(0.2)
    alive = [c for c in children if psutil.pid_exists(c) and psutil.Process(c).status() != "zombie"]
    assert not alive, f"orphaned worker processes: {alive}"


def test_bad_rows_are_recorded_and_the_rest_done(forged_copy, tmp_path):
    base = forged_copy.parent
    rows = pq.read_table(forged_copy).to_pylist()
    fakes = [r for r in rows if r["label"] == "fake"]
    good = [dict(r) for r in fakes[:4]] + [dict(r) for r in rows if r["label"] == "real"][:1]
    bad = []
    # missing file
    bad.append(dict(fakes[4], sample_id="bad_missing", image_path="images/fake/nope.png"))
    # corrupt image (not an image at all) and a truncated PNG
    (base / "corrupt.png").write_bytes(b"this is not a png")
    bad.append(dict(fakes[5], sample_id="bad_corrupt", image_path="corrupt.png"))
    data = (base / fakes[6]["image_path"]).read_bytes()
    (base / "truncated.png").write_bytes(data[: len(data) // 3])
    bad.append(dict(fakes[6], sample_id="bad_truncated", image_path="truncated.png"))
    # no face: a flat grey image and its slightly edited copy
    grey = np.full((256, 256, 3), 128, np.uint8)
    Image.fromarray(grey).save(base / "grey.png")
    g2 = grey.copy()
    g2[100:150, 100:150] = 90
    Image.fromarray(g2).save(base / "grey_fake.png")
    bad.append(dict(fakes[7], sample_id="bad_noface", image_path="grey_fake.png", source_path="grey.png"))
    # mismatched pair: source of another aspect ratio
    src = np.asarray(Image.open(base / fakes[8]["source_path"]).convert("RGB"))
    Image.fromarray(src[:, : src.shape[1] // 2]).save(base / "half.png")
    bad.append(dict(fakes[8], sample_id="bad_aspect", source_path="half.png"))
    man = base / "mixed.parquet"
    cols = ["sample_id", "image_path", "source_path", "label", "method", "category", "group"]
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in cols} for r in good + bad]), man)
    out = tmp_path / "out"
    p = run_cli("run", "--manifest", str(man), "--out", str(out), "--workers", "2", "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    by = {r["sample_id"]: r for r in read_rows(out)}
    assert len(by) == len(good) + len(bad)
    expect = {
        "bad_missing": "missing_file",
        "bad_corrupt": "not_an_image",
        "bad_truncated": "truncated",
        "bad_noface": "no_face",
        "bad_aspect": "aspect_mismatch",
    }
    for sid, code in expect.items():
        assert by[sid]["status"] == "failed" and by[sid]["error_code"] == code, (sid, by[sid]["error"])
        assert by[sid]["error"]
    for r in good:
        assert by[r["sample_id"]]["status"] == "ok"
    # Retry after fixing the missing file: that row becomes ok, the others stay failed, nothing doubles.
    (base / "images/fake/nope.png").write_bytes((base / fakes[4]["image_path"]).read_bytes())
    p = run_cli("retry", str(out), "--workers", "1", "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    rows = read_rows(out)
    assert len(rows) == len(good) + len(bad) == len({r["sample_id"] for r in rows})
    by = {r["sample_id"]: r for r in rows}
    assert by["bad_missing"]["status"] == "ok"
    assert by["bad_aspect"]["status"] == "failed"


def test_nothing_succeeded_exits_1_and_bad_manifest_exits_2(tmp_path):
    man = tmp_path / "m.csv"
    man.write_text("sample_id,image_path,source_path,label\na,missing1.png,,fake\nb,missing2.png,,real\n")
    p = run_cli("run", "--manifest", str(man), "--out", str(tmp_path / "o"), "--workers", "1", "--no-progress")
    assert p.returncode == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("sample_id,image_path,label\na,x.png,maybe\n")
    p = run_cli("run", "--manifest", str(bad), "--out", str(tmp_path / "o2"), "--no-progress")
    assert p.returncode == 2 and "error:" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("run", "--manifest", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "o3"))
    assert p.returncode == 2 and "Traceback" not in p.stderr


KILL = [sys.executable, "-m", "testkit.killpoints"]


def _killed_run(target: str, nth: int, when: str, *args: str) -> subprocess.CompletedProcess:
    """The command, SIGKILLed at the kill point. Output goes to a file: the dead run's worker processes
    may hold inherited pipes open for a moment, a file does not make us wait for them."""
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.run(
            [*KILL, target, str(nth), when, "--", "fifa-annotate", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        log.seek(0)
        p.stderr = log.read()
    return p


@pytest.mark.parametrize("nth", [1, 3])
def test_kill_between_shard_rename_and_ledger_write(forged, tmp_path, nth):
    out = tmp_path / "out"
    args = ("run", "--manifest", str(forged), "--out", str(out), "--workers", "1", "--shard-rows", "4", "--no-progress")
    p = _killed_run("fifa.annotator.store:AnnotationStore._append_ledger", nth, "before", *args)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    shards = sorted((out / "annotations").glob("part-*.parquet"))
    assert len(shards) == nth and _ledger_entries(out) == nth - 1  # the last shard is not in the ledger
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr[-2000:]
    ids = [r["sample_id"] for r in read_rows(out)]
    assert sorted(ids) == sorted(pq.read_table(forged).column("sample_id").to_pylist())


@pytest.mark.parametrize(
    "target, nth, when",
    [
        ("fifa.annotator.store:AnnotationStore._finish_commit", 1, "before"),  # journal written, nothing applied
        ("fifa.annotator.store:AnnotationStore._drop_rows", 1, "after"),  # old rows gone, staged not yet adopted
        ("fifa.annotator.store:AnnotationStore._adopt", 1, "after"),  # half the staged shards adopted
    ],
)
def test_kill_inside_a_retry_commit_then_finish(forged, tmp_path, target, nth, when):
    data = tmp_path / "data"
    shutil.copytree(forged.parent, data)
    man = data / "manifest.parquet"
    rows = pq.read_table(man).to_pylist()
    moved = [r for r in rows if r["label"] == "fake"][:5]
    for r in moved:  # these fail first (missing image), and succeed on retry
        (data / r["image_path"]).rename(data / (r["image_path"] + ".away"))
    out = tmp_path / "out"
    base_args = ("--workers", "1", "--shard-rows", "2", "--no-progress")
    assert run_cli("run", "--manifest", str(man), "--out", str(out), *base_args).returncode == 0
    assert sum(r["status"] == "failed" for r in read_rows(out)) == len(moved)
    for r in moved:
        (data / (r["image_path"] + ".away")).rename(data / r["image_path"])
    p = _killed_run(target, nth, when, "retry", str(out), *base_args)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    # Any next open of the folder (here a plain run, which has nothing left to do) finishes the commit.
    p = run_cli("run", "--manifest", str(man), "--out", str(out), *base_args)
    assert p.returncode == 0, p.stderr[-2000:]
    got = read_rows(out)
    ids = [r["sample_id"] for r in got]
    assert len(ids) == len(set(ids)) == len(rows), "a row was lost or doubled"
    assert all(r["status"] == "ok" for r in got)
    assert not (out / ".retry").exists()


def test_a_ten_megabyte_cell_is_a_clear_manifest_error(tmp_path):
    for name, writer in (
        ("m.parquet", lambda p, t: pq.write_table(t, p)),
        ("m.jsonl", lambda p, t: p.write_text("\n".join(json.dumps(r) for r in t.to_pylist()))),
    ):
        t = pa.Table.from_pylist([{"sample_id": "a", "image_path": "x" * (10 << 20), "label": "fake"}])
        writer(tmp_path / name, t)
        p = run_cli("run", "--manifest", str(tmp_path / name), "--out", str(tmp_path / f"o_{name}"))
        assert p.returncode == 2 and "holds 10485760 characters" in p.stderr and "Traceback" not in p.stderr
