"""The openai explainer against a real HTTP server on 127.0.0.1 with scripted faults.

The fakes get a coloured marker patch in their top-left corner; the server decodes the JPEG it
receives, reads the marker and plays that marker's fault script (one step per request about the
same image). The real `openai` client, the real CLI in a subprocess.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fifa.core import marks
from testkit.fake_llm_server import MARKER_COLOURS, FakeLLMServer

from .conftest import read_rows, run_cli

SECRET = "sk-test-DO-NOT-LEAK-8c1f4e2a9b77"

# marker -> (fault script, expected status, expected error code)
SCRIPTS = {
    "red": (["429", "ok"], "ok", None),
    "green": (["500", "500", "ok"], "ok", None),
    "blue": (["stall"], "failed", "llm_timeout"),
    "yellow": (["malformed", "ok"], "ok", None),
    "magenta": (["schema"], "failed", "llm_invalid"),
    "cyan": (["length"], "failed", "llm_truncated"),
    "white": (["hallucinate"], "failed", "llm_hallucinated_region"),
    "orange": (["hallucinate", "ok"], "ok", None),
    "purple": (["400"], "failed", "llm_http_error"),
    "black": (["inject_marks"], "ok", None),
}


@pytest.fixture(scope="module")
def marked(tmp_path_factory, forged):
    """A manifest of 9 marked fakes, 3 unmarked fakes and 2 real images."""
    d = tmp_path_factory.mktemp("marked")
    rows = pq.read_table(forged).to_pylist()
    base = forged.parent
    fakes = [r for r in rows if r["label"] == "fake" and r["method"] != "Warp"][:12]
    reals = [r for r in rows if r["label"] == "real"][:2]
    assert len(fakes) == 12
    out, expect = [], {}
    markers = list(SCRIPTS)
    for i, r in enumerate(fakes):
        img = np.asarray(Image.open(base / r["image_path"]).convert("RGB")).copy()
        if i < len(markers):
            img[:16, :16] = MARKER_COLOURS[markers[i]]
            expect[r["sample_id"]] = SCRIPTS[markers[i]][1:]
        else:
            expect[r["sample_id"]] = ("ok", None)
        p = d / f"{r['sample_id']}.png"
        Image.fromarray(img).save(p)
        out.append(
            dict(
                sample_id=r["sample_id"],
                image_path=str(p),
                source_path=str(base / r["source_path"]),
                label="fake",
                method=r["method"],
                category=r["category"],
                group=r["group"],
            )
        )
    for r in reals:
        out.append(
            dict(
                sample_id=r["sample_id"],
                image_path=str(base / r["image_path"]),
                source_path=None,
                label="real",
                method=None,
                category="real",
                group=r["group"],
            )
        )
        expect[r["sample_id"]] = ("ok", None)
    man = d / "manifest.parquet"
    pq.write_table(pa.Table.from_pylist(out), man)
    return man, expect


def _args(man, out, url, cache):
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
        "test-vlm",
        "--timeout",
        "0.6",
        "--max-retries",
        "2",
        "--retry-max-wait",
        "3",
        "--cache-dir",
        str(cache),
        "--concurrency",
        "4",
        "--workers",
        "2",
        "--no-progress",
        "-v",
        "--allow-outside-root",
    ]


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_scripted_faults_end_to_end(marked, tmp_path, executor):
    """Every fault of the matrix, with the CPU stage on local processes and on Ray actors."""
    man, expect = marked
    out, cache = tmp_path / "out", tmp_path / "cache"
    srv = FakeLLMServer(markers={k: v[0] for k, v in SCRIPTS.items()}, stall_seconds=3.0, retry_after=1.0).start()
    try:
        p = run_cli(*_args(man, out, srv.url, cache), "--executor", executor, env={"OPENAI_API_KEY": SECRET})
        assert p.returncode == 0, p.stderr[-3000:]
        rows = {r["sample_id"]: r for r in read_rows(out)}
        assert set(rows) == set(expect)
        for sid, (status, code) in expect.items():
            r = rows[sid]
            assert r["status"] == status, (sid, r["error"])
            assert r["error_code"] == code, (sid, r["error"])
            if status == "ok" and r["label"] == "fake":
                assert r["explanation"] and r["segments"], sid
                # the k-th mark of the text has the k-th segment, and marks name chosen regions only:
                # text the model wrote (summary included) cannot smuggle marks in (hallucination guard)
                found = marks.parse(r["explanation"])
                assert [(s["node_id"], s["phrase"]) for s in r["segments"]] == found, sid
                assert {n for n, _ in found} <= set(r["artifact_regions"]), sid
                assert r["explainer"].startswith("openai/test-vlm/")
            if r["label"] == "real":
                assert r["llm_calls"] == 0 and r["artifact_regions"] == []
        # The key reached the server, and only the server.
        assert f"Bearer {SECRET}" in srv.auth_headers
        # 400 is not retried; 429 waited for Retry-After.
        purple = [a for m, a in srv.actions if m == "purple"]
        assert purple == ["400"]
        red_times = [t for (m, a, t) in srv.events if m == "red"]
        assert len(red_times) == 2 and red_times[1] - red_times[0] >= 0.9
        # Transient 5xx were retried (3 requests), persistent invalid answers got one corrective retry.
        assert [a for m, a in srv.actions if m == "green"] == ["500", "500", "ok"]
        assert len([a for m, a in srv.actions if m == "magenta"]) == 2
        run = json.loads((out / "run.json").read_text())
        assert run["counts"] == {"ok": 9, "failed": 5}
        injected = rows[next(sid for sid, r in rows.items() if r["explanation"] and "the chin" in r["explanation"])]
        assert "[the chin](chin)" not in injected["explanation"] and "(forehead)" not in injected["explanation"]
        assert all(n in injected["artifact_regions"] for n in marks.marked_ids(injected["explanation"]))
        assert run["cost_usd_total"] > 0 and run["tokens_total"]["prompt"] > 0
        assert "api_key" not in json.dumps(run["config"])
        # No secret anywhere: output files, cache, stdout/stderr.
        blobs = [p.stdout, p.stderr]
        for f in list(out.rglob("*")) + list(cache.rglob("*")):
            if f.is_file():
                blobs.append(f.read_bytes().decode("latin-1"))
        assert not any(SECRET in b for b in blobs)

        # A second run over the same data (new --out, same cache) makes no call for the ok rows.
        before = srv.requests
        ok_ids = [s for s, (st, _) in expect.items() if st == "ok"]
        sub = tmp_path / "ok_only.parquet"
        t = pq.read_table(man)
        pq.write_table(t.filter(pa.compute.is_in(t["sample_id"], pa.array(ok_ids))), sub)
        p2 = run_cli(*_args(sub, tmp_path / "out2", srv.url, cache), env={"OPENAI_API_KEY": SECRET})
        assert p2.returncode == 0, p2.stderr[-3000:]
        assert srv.requests == before
        rows2 = read_rows(tmp_path / "out2")
        assert all(r["status"] == "ok" for r in rows2)
        assert all(r["cached"] for r in rows2 if r["label"] == "fake")

        # Rerun on the same --out: nothing left to do, no call.
        p3 = run_cli(*_args(man, out, srv.url, cache), env={"OPENAI_API_KEY": SECRET})
        assert p3.returncode == 0
        assert srv.requests == before
        assert len(read_rows(out)) == len(expect)
    finally:
        srv.stop()


def test_retry_reattempts_failed_rows(marked, tmp_path):
    man, expect = marked
    out, cache = tmp_path / "out", tmp_path / "cache"
    # First pass: the magenta and white rows fail for good.
    srv = FakeLLMServer(markers={"magenta": ["schema"], "white": ["hallucinate"]}).start()
    try:
        p = run_cli(*_args(man, out, srv.url, cache), env={"OPENAI_API_KEY": SECRET})
        assert p.returncode == 0, p.stderr[-2000:]
    finally:
        srv.stop()
    failed = {r["sample_id"] for r in read_rows(out) if r["status"] == "failed"}
    assert len(failed) == 2
    # The endpoint is fixed: retry re-attempts only those rows.
    srv = FakeLLMServer().start()
    try:
        args = _args(man, out, srv.url, cache)
        args[0:1] = ["retry"]
        for a in ("--manifest", str(man), "--out", str(out)):
            args.remove(a)
        args.insert(1, str(out))
        p = run_cli(*args, env={"OPENAI_API_KEY": SECRET})
        assert p.returncode == 0, p.stderr[-2000:]
        assert srv.requests == 2
    finally:
        srv.stop()
    rows = read_rows(out)
    ids = [r["sample_id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(expect)
    by = {r["sample_id"]: r for r in rows}
    assert all(by[s]["status"] == "ok" and by[s]["attempt"] == 2 for s in failed)


def test_max_cost_stops_cleanly_and_dry_run(marked, tmp_path):
    man, expect = marked
    out, cache = tmp_path / "out", tmp_path / "cache"
    srv = FakeLLMServer().start()
    try:
        d = run_cli(*_args(man, out, srv.url, cache), "--dry-run", env={"OPENAI_API_KEY": SECRET})
        assert d.returncode == 0
        assert '"requests": 12' in d.stdout and srv.requests == 0
        # A budget for about three requests: the run stops, the rest stays pending (not written).
        p = run_cli(
            *_args(man, out, srv.url, cache),
            "--max-cost",
            "0.012",
            "--concurrency",
            "1",
            env={"OPENAI_API_KEY": SECRET},
        )
        assert p.returncode == 0, p.stderr[-2000:]
        run = json.loads((out / "run.json").read_text())
        assert run["invocations"][-1]["stopped"] == "budget"
        written = read_rows(out)
        llm_rows = [r for r in written if r["llm_calls"]]
        assert 1 <= len(llm_rows) < 12
        assert run["cost_usd_total"] <= 0.012 + 0.005
        assert run["pending"] == len(expect) - len(written) > 0
        # Raising the budget resumes the pending rows only.
        p = run_cli(*_args(man, out, srv.url, cache), env={"OPENAI_API_KEY": SECRET})
        assert p.returncode == 0
        rows = read_rows(out)
        assert sorted(r["sample_id"] for r in rows) == sorted(expect)
    finally:
        srv.stop()
