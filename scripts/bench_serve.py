#!/usr/bin/env python
"""Speed of `fifa-bench serve` against its targets (docs/server.md):

1. uploads: 50 concurrent uploads (5 teams) of one 2,000-question submission, all accepted (202) in
   <= 5 s (the workers score meanwhile, as in real use);
2. drain: the queue of those 50 drained at >= 0.8x the rate of `fifa-bench score` run back to back
   on the same files (one process after another, as a maintainer would script it);
3. leaderboard: p95 latency of GET /api/leaderboard <= 50 ms with 1,000 stored submissions
   (20 teams; done rows written through the queue's own functions, served by a server with no workers).

The bench and submission come from scripts/bench_score.py's generator (det, cls, every text task,
loc and age masks), scaled to --questions. Both sides score with the same options (--no-meteor
unless --meteor: METEOR starts a JVM per scoring, ~15 s, on both sides).

Usage: python scripts/bench_serve.py [--questions 2000] [--uploads 50] [--cli-runs 4] [--out bench_serve_out]
Prints a table and writes OUT/bench_serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from bench_score import generate  # scripts/bench_score.py
from benchkit import describe, machine
from fifa.benchmarks.serve.db import add_team, make_engine
from fifa.benchmarks.serve.queue import Job, claim, finish, store_submission

BIN = Path(sys.executable).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bench: Path, db: str, log: Path, workers: int, score_args: list[str]) -> tuple[subprocess.Popen, str]:
    port = _port()
    p = subprocess.Popen(
        [
            str(BIN / "fifa-bench"),
            "serve",
            "--bench",
            str(bench),
            "--db",
            db,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--daily-limit",
            "100000",
            *score_args,
        ],
        stdout=open(log, "wb"),  # noqa: SIM115 (open for the server's lifetime)
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return p, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start: {log.read_text()[-2000:]}")


def wait_workers(log: Path, n: int) -> None:
    while log.read_text().count('"worker.ready"') < n:
        time.sleep(0.1)


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    p.wait(60)


def upload_phase(url: str, tokens: list[str], sub: Path, n: int) -> tuple[float, list[tuple[str, str]]]:
    data = sub.read_bytes()

    def one(k: int, client: httpx.Client) -> tuple[str, str]:
        r = client.post(
            url + "/api/submissions",
            headers={"Authorization": f"Bearer {tokens[k % len(tokens)]}"},
            files={"file": (sub.name, data)},
            timeout=120,
        )
        assert r.status_code == 202, r.text
        return tokens[k % len(tokens)], r.json()["id"]

    with httpx.Client(limits=httpx.Limits(max_connections=n)) as client, ThreadPoolExecutor(n) as pool:
        t0 = time.perf_counter()
        ids = list(pool.map(lambda k: one(k, client), range(n)))
        return time.perf_counter() - t0, ids


def drain_phase(url: str, ids: list[tuple[str, str]], t_start: float) -> float:
    left = {sid: tok for tok, sid in ids}
    with httpx.Client(timeout=30) as c:
        while left:
            for sid, tok in list(left.items()):
                r = c.get(f"{url}/api/submissions/{sid}", headers={"Authorization": f"Bearer {tok}"}).json()
                if r["status"] in ("done", "failed"):
                    assert r["status"] == "done", r["error"]
                    del left[sid]
            time.sleep(0.2)
    return time.perf_counter() - t_start


def cli_phase(bench: Path, sub: Path, runs: int, out: Path, score_args: list[str]) -> float:
    t0 = time.perf_counter()
    for k in range(runs):
        subprocess.run(
            [
                str(BIN / "fifa-bench"),
                "score",
                "--bench",
                str(bench),
                "--submission",
                str(sub),
                "--out",
                str(out / f"cli{k}"),
                "--no-plots",
                *score_args,
            ],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - t0


def fill_board(db: str, report: dict, n: int, teams: int, sub: Path, seed: int = 0) -> None:
    """``n`` done submissions over ``teams`` teams, stored and finished through the queue's functions."""
    rng = np.random.default_rng(seed)
    engine = make_engine(db)
    data = sub.read_bytes()
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    ids = [add_team(engine, f"team-{t:02d}")[0].id for t in range(teams)]
    heads = {
        f"{t}/{report['_meta']['tasks'][t]['main_metric']}": report[t][report["_meta"]["tasks"][t]["main_metric"]]
        for t in report
        if not t.startswith("_")
    }
    for k in range(n):
        store_submission(engine, ids[k % teams], data, sub.name, "parquet", sha)
        job = claim(engine, "bench", 60)
        assert isinstance(job, Job)
        finish(
            engine,
            job,
            "bench",
            report,
            {c: float(np.clip((v or 0) + rng.normal(0, 0.05), 0, 1)) for c, v in heads.items()},
        )
    engine.dispose()


def latency(url: str, path: str, n: int) -> dict:
    out = []
    with httpx.Client(timeout=30) as c:
        for _ in range(10):
            c.get(url + path)
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.get(url + path)
            out.append(1000 * (time.perf_counter() - t0))
            assert r.status_code == 200
    a = np.asarray(out)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--cli-runs", type=int, default=4)
    ap.add_argument("--board", type=int, default=1000, help="stored submissions for the leaderboard latency")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--meteor", action="store_true")
    ap.add_argument("--out", default="bench_serve_out")
    a = ap.parse_args()
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    generate(out, a.questions / 130_000)
    bench, sub = out / "bench.parquet", out / "submission.parquet"
    score_args = [] if a.meteor else ["--no-meteor"]
    res: dict = {
        "questions": a.questions,
        "submission_bytes": sub.stat().st_size,
        "uploads": a.uploads,
        "workers": a.workers,
        "meteor": a.meteor,
        "machine": describe(machine()),
        "load_before": os.getloadavg()[0],
    }

    db = f"sqlite:///{out / 'serve.db'}"
    engine = make_engine(db)
    tokens = [add_team(engine, f"upload-team-{k}")[1] for k in range(5)]
    engine.dispose()
    srv, url = start_server(bench, db, out / "serve.log", a.workers, score_args)
    try:
        wait_workers(out / "serve.log", a.workers)
        t_start = time.perf_counter()
        res["upload_s"], ids = upload_phase(url, tokens, sub, a.uploads)
        res["drain_s"] = drain_phase(url, ids, t_start)
        with httpx.Client() as c:
            report = c.get(
                f"{url}/api/submissions/{ids[0][1]}", headers={"Authorization": f"Bearer {ids[0][0]}"}
            ).json()["metrics"]
    finally:
        stop(srv)
    res["server_rate_per_s"] = a.uploads / res["drain_s"]
    res["cli_s"] = cli_phase(bench, sub, a.cli_runs, out, score_args)
    res["cli_rate_per_s"] = a.cli_runs / res["cli_s"]
    res["drain_ratio"] = res["server_rate_per_s"] / res["cli_rate_per_s"]

    db2 = f"sqlite:///{out / 'board.db'}"
    fill_board(db2, report, a.board, 20, sub)
    srv, url = start_server(bench, db2, out / "board.log", 0, score_args)
    try:
        res["leaderboard"] = latency(url, "/api/leaderboard", 300)
        res["page"] = latency(url, "/", 100)
    finally:
        stop(srv)
    res["load_after"] = os.getloadavg()[0]
    (out / "bench_serve.json").write_text(json.dumps(res, indent=2))
    print(
        f"| measure | value | target |\n|---|---:|---|\n"
        f"| {a.uploads} concurrent uploads of a {a.questions}-question submission ({res['submission_bytes']} B) "
        f"accepted | {res['upload_s']:.2f} s | <= 5 s |\n"
        f"| queue drained ({a.workers} workers) | {res['drain_s']:.1f} s, {res['server_rate_per_s']:.2f}/s | |\n"
        f"| `fifa-bench score` back to back ({a.cli_runs} runs) | {res['cli_s']:.1f} s, "
        f"{res['cli_rate_per_s']:.2f}/s | |\n"
        f"| drain rate / CLI rate | {res['drain_ratio']:.2f}x | >= 0.8x |\n"
        f"| GET /api/leaderboard, {a.board} stored submissions | p50 {res['leaderboard']['p50_ms']:.1f} ms, "
        f"p95 {res['leaderboard']['p95_ms']:.1f} ms | p95 <= 50 ms |\n"
        f"| GET / (the page) | p50 {res['page']['p50_ms']:.1f} ms, p95 {res['page']['p95_ms']:.1f} ms | |\n"
        f"load average before/after: {res['load_before']:.1f} / {res['load_after']:.1f}"
    )


if __name__ == "__main__":
    main()
