"""The scoring queue on both back ends (SQLite, a real PostgreSQL): 50 concurrent uploads from 5 teams
are each scored exactly once; every worker SIGKILLed mid-job is replaced by the server and each job
still finishes once, with the scores of an undisturbed run."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from server_kit import SCORE_ARGS, Server, secret_bench, upload, wait_done, write_sub

from fifa.benchmarks.scoring import score
from fifa.benchmarks.serve.db import add_team, make_engine, scores, submissions


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request, tmp_path_factory):
    """(back end, work folder, a function giving the URL of a new database) per back end."""
    d = tmp_path_factory.mktemp(f"q_{request.param}")
    if request.param == "sqlite":
        return request.param, d, lambda name: f"sqlite:///{d / name}.db"
    return request.param, d, request.getfixturevalue("postgres").database


def _per_id(events: list[dict], ids) -> Counter:
    return Counter(e["id"] for e in events if e["id"] in ids)


def _token(db: str, name: str, daily_limit: int | None = None) -> str:
    engine = make_engine(db)
    try:
        return add_team(engine, name, daily_limit)[1]
    finally:
        engine.dispose()


def test_50_concurrent_uploads_from_5_teams_each_scored_once(backend, tmp_path):
    name, d, new_db = backend
    db = new_db("concurrent")
    tokens = [_token(db, f"{name}-team-{k}") for k in range(5)]
    # det, cls and loc without method/category breakdowns: a job takes tens of ms, 50 score in seconds
    rows, bench = secret_bench(
        tmp_path / "bench.parquet", seed=2, n_det=16, n_cls=8, n_text=0, n_loc=6, n_age=0, breakdowns=False
    )
    files = [write_sub(rows, tmp_path / f"s{k}.jsonl", seed=k) for k in range(50)]
    srv = Server(bench, db, d, *SCORE_ARGS, "--daily-limit", "10")
    try:
        with httpx.Client(limits=httpx.Limits(max_connections=50)) as client, ThreadPoolExecutor(50) as pool:
            futs = [pool.submit(upload, srv.url, tokens[k % 5], files[k], None, client) for k in range(50)]
            res = [f.result() for f in futs]
        assert [r.status_code for r in res] == [202] * 50, [r.text for r in res if r.status_code != 202]
        by_team = {t: [r.json()["id"] for k, r in enumerate(res) if k % 5 == i] for i, t in enumerate(tokens)}
        assert upload(srv.url, tokens[0], files[0]).status_code == 429  # each team used its 10 of the day
        for t, ids in by_team.items():
            done = wait_done(srv.url, t, ids)
            assert {s["status"] for s in done.values()} == {"done"}
        all_ids = {i for ids in by_team.values() for i in ids}
        assert len(all_ids) == 50
        assert _per_id(srv.events("job.started"), all_ids) == Counter(dict.fromkeys(all_ids, 1))
        assert _per_id(srv.events("job.finished"), all_ids) == Counter(dict.fromkeys(all_ids, 1))
        assert not srv.events("job.discarded") and not srv.events("worker.died")
    finally:
        srv.stop()
    engine = make_engine(db, create=False)
    with engine.connect() as c:
        att = dict(c.execute(submissions.select().with_only_columns(submissions.c.id, submissions.c.attempts)).all())
        n_scores = Counter(r[0] for r in c.execute(scores.select().with_only_columns(scores.c.submission_id)))
    engine.dispose()
    assert set(att) == all_ids and set(att.values()) == {1} and {n_scores[i] for i in all_ids} == {3}


@pytest.fixture(scope="module")
def kill_case(tmp_path_factory):
    """A bench of a second or two a job (time to kill the workers mid-job), two submissions, their scores."""
    d = tmp_path_factory.mktemp("kill_case")
    rows, bench = secret_bench(d / "big.parquet", seed=4, n_det=200, n_cls=60, n_text=300, n_loc=60, n_age=60)
    files = [write_sub(rows, d / f"k{k}.jsonl", seed=k) for k in range(2)]
    return bench, files, [score(bench, f, seed=3, bootstrap=200, meteor=False).tasks for f in files]


def test_killed_workers_are_replaced_and_each_job_finishes_once(backend, kill_case):
    name, d, new_db = backend
    db = new_db("kill")
    bench, files, want = kill_case
    token = _token(db, f"{name}-killed")
    srv = Server(bench, db, d, *SCORE_ARGS, "--lease", "300", workers=2)  # recovery must not wait for leases
    try:
        deadline = time.time() + 120
        while len(srv.ready_workers()) < 2:  # then each worker takes one of the two jobs
            assert time.time() < deadline, srv.log_path.read_text()[-2000:]
            time.sleep(0.05)
        ids = [upload(srv.url, token, f).json()["id"] for f in files]
        while httpx.get(srv.url + "/healthz").json()["queue"]["running"] < 2:  # both busy (one snapshot): kill
            assert time.time() < deadline, srv.log_path.read_text()[-2000:]
            time.sleep(0.02)
        first = set(srv.worker_pids())
        assert len(first) == 2
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        done = wait_done(srv.url, token, ids, timeout=90)
        assert {s["status"] for s in done.values()} == {"done"}
        died = srv.events("worker.died")
        assert len(died) == 2 and {e["worker_pid"] for e in died} == first
        assert all(e["returncode"] == -signal.SIGKILL for e in died)
        assert sorted(i for e in died for i in e["requeued"]) == sorted(ids)  # each was killed mid-job
        now = set(srv.worker_pids())
        assert len(now) == 2 and not now & first  # the server started new ones by itself
        assert _per_id(srv.events("job.finished"), ids) == Counter(dict.fromkeys(ids, 1))
        assert _per_id(srv.events("job.started"), ids) == Counter(dict.fromkeys(ids, 2))
        for k, i in enumerate(ids):  # scored again, like an undisturbed run on the same file
            assert {t: v for t, v in done[i]["metrics"].items() if t != "_meta"} == want[k]
        tree = psutil.Process(srv.proc.pid).children(recursive=True)  # workers, their forkserver, ...
        assert len(tree) >= 3
        srv.proc.kill()  # the server itself SIGKILLed: nothing of it is left running
        srv.proc.wait()
        assert not psutil.wait_procs(tree, timeout=20)[1]
    finally:
        srv.stop()
