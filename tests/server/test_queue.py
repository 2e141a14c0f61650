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
import pytest
from server_kit import SCORE_ARGS, Server, secret_bench, upload, wait_done, write_sub

from fifa.benchmarks.scoring import score
from fifa.benchmarks.serve.db import add_team, make_engine, scores, submissions


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """(back end, database URL, server) per back end: det, cls and loc only (no text metric, so no JVM per
    job: a job takes a few hundred ms and 50 jobs score in seconds)."""
    d = tmp_path_factory.mktemp(f"q_{request.param}")
    db = f"sqlite:///{d / 'queue.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("postgres").database("queue")
    rows, bench = secret_bench(d / "bench.parquet", seed=2, n_det=16, n_cls=8, n_text=0, n_loc=6, n_age=0)
    srv = Server(bench, db, d, *SCORE_ARGS, "--daily-limit", "10", "--lease", "300")  # no recovery by lease
    srv.db, srv.rows, srv.bench, srv.dir = db, rows, bench, d
    yield request.param, srv
    srv.stop()


def _per_id(events: list[dict], ids) -> Counter:
    return Counter(e["id"] for e in events if e["id"] in ids)


def test_50_concurrent_uploads_from_5_teams_each_scored_once(served, tmp_path):
    name, srv = served
    engine = make_engine(srv.db, create=False)
    tokens = [add_team(engine, f"{name}-team-{k}")[1] for k in range(5)]
    files = [write_sub(srv.rows, tmp_path / f"s{k}.jsonl", seed=k) for k in range(50)]
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
    assert _per_id(srv.events("job.started"), all_ids) == Counter({i: 1 for i in all_ids})
    assert _per_id(srv.events("job.finished"), all_ids) == Counter({i: 1 for i in all_ids})
    assert not _per_id(srv.events("job.discarded"), all_ids)
    with engine.connect() as c:
        att = dict(c.execute(submissions.select().with_only_columns(submissions.c.id, submissions.c.attempts)).all())
        n_scores = Counter(r[0] for r in c.execute(scores.select().with_only_columns(scores.c.submission_id)))
    engine.dispose()
    assert {att[i] for i in all_ids} == {1} and {n_scores[i] for i in all_ids} == {3}


def test_killed_workers_are_replaced_and_each_job_finishes_once(served, tmp_path):
    name, srv = served
    engine = make_engine(srv.db, create=False)
    token = add_team(engine, f"{name}-killed", daily_limit=20)[1]
    engine.dispose()
    files = [write_sub(srv.rows, tmp_path / f"k{k}.jsonl", seed=k) for k in range(2)]
    want = [score(srv.bench, f, seed=3, bootstrap=200, meteor=False).tasks for f in files]
    ids = [upload(srv.url, token, files[k % 2]).json()["id"] for k in range(8)]
    first = set(srv.worker_pids())
    assert len(first) == 2
    deadline = time.time() + 60
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as c:  # both workers busy: kill them
        while len([i for i in ids if c.get(f"{srv.url}/api/submissions/{i}").json()["status"] == "running"]) < 2:
            assert time.time() < deadline, srv.log_path.read_text()[-2000:]
            time.sleep(0.01)
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    done = wait_done(srv.url, token, ids, timeout=180)
    assert {s["status"] for s in done.values()} == {"done"}
    died = [e for e in srv.events("worker.died") if e["worker_pid"] in first]
    assert len(died) == 2 and all(e["returncode"] == -signal.SIGKILL for e in died)
    requeued = Counter(i for e in died for i in e["requeued"])
    assert sum(requeued.values()) == 2 and set(requeued) <= set(ids)  # each was killed holding a job
    now = set(srv.worker_pids())
    assert len(now) == 2 and not now & first  # the server started new ones by itself
    assert _per_id(srv.events("job.finished"), ids) == Counter({i: 1 for i in ids})
    started = _per_id(srv.events("job.started"), ids)
    assert all(started[i] == 1 + requeued[i] for i in ids), (started, requeued)
    for n, i in enumerate(ids):  # jobs scored again score like an undisturbed run on the same file
        assert {t: v for t, v in done[i]["metrics"].items() if t != "_meta"} == want[n % 2]
