"""The queue's functions on both real databases, without a server: concurrent claimers take each job
once; a job whose lease ran out goes back to the queue and only its new holder's result is kept; the
daily limit holds under concurrent uploads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fifa.benchmarks.serve.db import add_team, make_engine
from fifa.benchmarks.serve.queue import (
    claim,
    finish,
    get_submission,
    queue_counts,
    reap_expired,
    renew,
    store_submission,
    take_quota,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'q.db'}"
    else:
        url = request.getfixturevalue("postgres").database(f"unit_{tmp_path.name[-30:].lower()}")
    e = make_engine(url)
    yield e
    e.dispose()


def _queue(engine, n: int) -> tuple[int, list[str]]:
    team = add_team(engine, "t")[0]
    data = b'{"question_id": "det-0", "answer": "yes"}\n'
    return team.id, [store_submission(engine, team.id, data, "s.jsonl", "jsonl", "ab" * 32) for _ in range(n)]


def test_concurrent_claimers_take_each_job_once(engine):
    _, ids = _queue(engine, 60)

    def drain(k: int) -> list[str]:
        got = []
        while (job := claim(engine, f"w{k}", 60)) is not None:
            got.append(job.id)
        return got

    with ThreadPoolExecutor(8) as pool:
        taken = [i for got in pool.map(drain, range(8)) for i in got]
    assert sorted(taken) == sorted(ids)  # every job once, none twice
    assert queue_counts(engine) == {"queued": 0, "running": 60, "done": 0, "failed": 0}


def test_expired_lease_goes_back_and_only_the_new_holder_finishes(engine):
    team_id, [sid] = _queue(engine, 1)
    ghost = claim(engine, "ghost", lease_s=60)
    assert ghost.id == sid and ghost.attempts == 1
    assert reap_expired(engine) == []  # its lease still runs
    assert renew(engine, sid, "ghost", 60)
    assert reap_expired(engine, now=time.time() + 120) == [sid]  # the ghost went silent
    assert not renew(engine, sid, "ghost", 60)
    new = claim(engine, "w2", lease_s=60)
    assert new.id == sid and new.attempts == 2
    head = {"det/auc": 0.5}
    assert not finish(engine, ghost, "ghost", {"det": {"auc": 0.1}}, head)  # late result: discarded
    assert finish(engine, new, "w2", {"det": {"auc": 0.5}}, head)
    assert not finish(engine, new, "w2", {"det": {"auc": 0.5}}, head)  # finished once
    sub = get_submission(engine, sid, team_id)
    assert sub["status"] == "done" and sub["metrics"] == {"det": {"auc": 0.5}}


def test_daily_limit_holds_under_concurrent_uploads(engine):
    team = add_team(engine, "busy", daily_limit=7)[0]
    with ThreadPoolExecutor(10) as pool:
        ok = list(pool.map(lambda _: take_quota(engine, team.id, 7), range(30)))
    assert sum(ok) == 7
    assert not take_quota(engine, team.id, 7)
    assert take_quota(engine, team.id, 7, now=time.time() + 86400)  # a new UTC day
