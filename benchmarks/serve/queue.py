"""Submissions in the database: uploads, the daily quota, the job queue and its results.

A job is a ``submissions`` row. A worker *claims* the oldest queued row (PostgreSQL: ``FOR UPDATE SKIP
LOCKED``, so concurrent claimers never wait on or take the same row; SQLite: one ``BEGIN IMMEDIATE``
writer at a time), marks it ``running`` under its worker id with a lease it renews while scoring, and
*finishes* it only while it still holds it (``WHERE worker = me AND status = 'running'``): a job taken
back from a dead or silent worker and claimed again is finished once, by its new holder. Jobs go back
to the queue when the supervisor sees their worker's process die (:func:`requeue_worker`) or when their
lease runs out (:func:`reap_expired`, for workers on other machines).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from fifa.core.tasks import task_order

from .db import blobs, is_sqlite, quota, read_tx, scores, submissions, teams, write_tx

STATUSES = ("queued", "running", "done", "failed")


def utc_day(now: float | None = None) -> str:
    return _dt.datetime.fromtimestamp(now if now is not None else time.time(), _dt.timezone.utc).strftime("%Y-%m-%d")


# ------------------------------------------------------------------------------------------ quota
def take_quota(engine: Engine, team_id: int, limit: int, now: float | None = None) -> bool:
    """Count one upload against today's limit; False (nothing counted) when the team is at its limit.

    One conditional UPDATE (``used < limit``): atomic on both back ends, so concurrent uploads never
    pass the limit together."""
    if limit <= 0:
        return False
    day = utc_day(now)
    try:
        with write_tx(engine) as c:
            if c.execute(select(quota.c.used).where(quota.c.team_id == team_id, quota.c.day == day)).first() is None:
                c.execute(insert(quota).values(team_id=team_id, day=day, used=0))
    except IntegrityError:  # another upload created today's row first
        pass
    with write_tx(engine) as c:
        r = c.execute(
            update(quota)
            .where(quota.c.team_id == team_id, quota.c.day == day, quota.c.used < limit)
            .values(used=quota.c.used + 1)
        )
        return r.rowcount == 1


def give_back_quota(engine: Engine, team_id: int, now: float | None = None) -> None:
    """Undo :func:`take_quota` for an upload that was refused after all (too large)."""
    with write_tx(engine) as c:
        c.execute(
            update(quota)
            .where(quota.c.team_id == team_id, quota.c.day == utc_day(now), quota.c.used > 0)
            .values(used=quota.c.used - 1)
        )


# ---------------------------------------------------------------------------------------- uploads
def store_submission(engine: Engine, team_id: int, data: bytes, filename: str, fmt: str, sha256: str) -> str:
    """Store the file (once per SHA-256) and queue a submission; returns its id."""
    now = time.time()
    try:
        with write_tx(engine) as c:
            if c.execute(select(blobs.c.sha256).where(blobs.c.sha256 == sha256)).first() is None:
                c.execute(insert(blobs).values(sha256=sha256, size=len(data), data=data, created_at=now))
    except IntegrityError:  # the same file uploaded at the same moment
        pass
    sid = uuid.uuid4().hex
    with write_tx(engine) as c:
        c.execute(
            insert(submissions).values(
                id=sid,
                team_id=team_id,
                sha256=sha256,
                filename=filename,
                fmt=fmt,
                status="queued",
                created_at=now,
                attempts=0,
            )
        )
    return sid


def get_submission(engine: Engine, sid: str, team_id: int) -> dict | None:
    """The submission as the API shows it, only to its own team (None otherwise)."""
    with read_tx(engine) as c:
        r = c.execute(select(submissions).where(submissions.c.id == sid, submissions.c.team_id == team_id)).first()
    if r is None:
        return None
    return {
        "id": r.id,
        "status": r.status,
        "sha256": r.sha256,
        "filename": r.filename,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
        "metrics": json.loads(r.metrics) if r.metrics else None,
        "error": r.error,
    }


# ------------------------------------------------------------------------------------------ queue
@dataclass(frozen=True)
class Job:
    id: str
    team_id: int
    filename: str
    fmt: str
    data: bytes
    attempts: int


def has_queued(engine: Engine) -> bool:
    """A cheap read (no write lock) an idle worker polls before trying to claim."""
    with read_tx(engine) as c:
        return c.execute(select(submissions.c.id).where(submissions.c.status == "queued").limit(1)).first() is not None


def claim(engine: Engine, worker: str, lease_s: float) -> Job | None:
    """Take the oldest queued submission for ``worker`` (None when the queue is empty)."""
    now = time.time()
    q = select(submissions.c.id).where(submissions.c.status == "queued")
    q = q.order_by(submissions.c.created_at, submissions.c.id).limit(1)
    if not is_sqlite(engine):
        q = q.with_for_update(skip_locked=True)
    with write_tx(engine) as c:
        sid = c.execute(q).scalar()
        if sid is None:
            return None
        r = c.execute(
            update(submissions)
            .where(submissions.c.id == sid, submissions.c.status == "queued")
            .values(
                status="running",
                worker=worker,
                started_at=now,
                lease_until=now + lease_s,
                attempts=submissions.c.attempts + 1,
            )
        )
        if r.rowcount != 1:  # taken in between (only without the row lock): the caller polls again
            return None
        r = c.execute(
            select(
                submissions.c.team_id, submissions.c.filename, submissions.c.fmt, submissions.c.attempts, blobs.c.data
            )
            .join(blobs, blobs.c.sha256 == submissions.c.sha256)
            .where(submissions.c.id == sid)
        ).first()
    return Job(sid, r.team_id, r.filename, r.fmt, bytes(r.data), r.attempts)


def renew(engine: Engine, sid: str, worker: str, lease_s: float) -> bool:
    """Extend the lease of a job ``worker`` still holds."""
    with write_tx(engine) as c:
        r = c.execute(update(submissions).where(_held(sid, worker)).values(lease_until=time.time() + lease_s))
        return r.rowcount == 1


def _held(sid: str, worker: str):
    return and_(submissions.c.id == sid, submissions.c.worker == worker, submissions.c.status == "running")


def finish(engine: Engine, job: Job, worker: str, report: dict, headline: dict[str, float | None]) -> bool:
    """Store a done job's report and headline scores; False when ``worker`` no longer holds the job."""
    with write_tx(engine) as c:
        r = c.execute(
            update(submissions)
            .where(_held(job.id, worker))
            .values(
                status="done", metrics=json.dumps(report, allow_nan=False), finished_at=time.time(), lease_until=None
            )
        )
        if r.rowcount != 1:
            return False
        if headline:
            c.execute(
                insert(scores),
                [{"submission_id": job.id, "col": k, "team_id": job.team_id, "value": v} for k, v in headline.items()],
            )
        return True


def fail(engine: Engine, job: Job, worker: str, error: str) -> bool:
    """Mark a held job failed with ``error`` (the validator's message)."""
    with write_tx(engine) as c:
        r = c.execute(
            update(submissions)
            .where(_held(job.id, worker))
            .values(status="failed", error=error, finished_at=time.time(), lease_until=None)
        )
        return r.rowcount == 1


def requeue_worker(engine: Engine, worker: str) -> list[str]:
    """Put the running jobs of a worker that died back in the queue; returns their ids."""
    with write_tx(engine) as c:
        ids = list(
            c.execute(
                select(submissions.c.id).where(submissions.c.worker == worker, submissions.c.status == "running")
            ).scalars()
        )
        if ids:
            c.execute(
                update(submissions)
                .where(submissions.c.id.in_(ids), submissions.c.status == "running")
                .values(status="queued", worker=None, lease_until=None)
            )
    return ids


def reap_expired(engine: Engine, now: float | None = None) -> list[str]:
    """Put running jobs whose lease ran out (their worker died or hangs elsewhere) back in the queue."""
    now = time.time() if now is None else now
    q = select(submissions.c.id).where(submissions.c.status == "running", submissions.c.lease_until < now)
    if not is_sqlite(engine):
        q = q.with_for_update(skip_locked=True)
    with write_tx(engine) as c:
        ids = list(c.execute(q).scalars())
        if ids:
            c.execute(
                update(submissions)
                .where(submissions.c.id.in_(ids), submissions.c.status == "running")
                .values(status="queued", worker=None, lease_until=None)
            )
    return ids


def queue_counts(engine: Engine) -> dict[str, int]:
    with read_tx(engine) as c:
        got = dict(c.execute(select(submissions.c.status, func.count()).group_by(submissions.c.status)).all())
    return {s: int(got.get(s, 0)) for s in STATUSES}


# ------------------------------------------------------------------------------------ leaderboard
LOWER_IS_BETTER = frozenset({"eer"})


def _task_order(col: str):
    return task_order(col.split("/", 1)[0])


def leaderboard_rows(engine: Engine) -> tuple[list[str], list[dict]]:
    """Columns (``TASK/METRIC`` headline metrics) and one row per team with a done submission:
    its best value per column over its done submissions, its number of done submissions."""
    with read_tx(engine) as c:
        best = c.execute(
            select(scores.c.team_id, scores.c.col, func.max(scores.c.value), func.min(scores.c.value)).group_by(
                scores.c.team_id, scores.c.col
            )
        ).all()
        done = c.execute(
            select(submissions.c.team_id, func.count(), func.max(submissions.c.finished_at))
            .where(submissions.c.status == "done")
            .group_by(submissions.c.team_id)
        ).all()
        names = dict(c.execute(select(teams.c.id, teams.c.name)).all())
    cols = sorted({r[1] for r in best}, key=lambda k: (_task_order(k), k))
    rows: dict[int, dict] = {}
    for tid, n, last in done:
        rows[tid] = {
            "team": names.get(tid, "?"),
            "scores": dict.fromkeys(cols),
            "submissions": int(n),
            "last_finished_at": last,
        }
    for tid, col, hi, lo in best:
        if tid in rows:
            rows[tid]["scores"][col] = lo if col.split("/", 1)[-1] in LOWER_IS_BETTER else hi
    return cols, list(rows.values())


def sort_rows(rows: list[dict], col: str | None, descending: bool = True) -> list[dict]:
    """Rows by ``col`` (a score column, ``team`` or ``submissions``); missing values last."""
    if col == "team":
        return sorted(rows, key=lambda r: r["team"].lower(), reverse=descending)
    if col == "submissions":
        return sorted(rows, key=lambda r: r["submissions"], reverse=descending)
    if not col:
        return sorted(rows, key=lambda r: r["team"].lower())
    has = [r for r in rows if r["scores"].get(col) is not None]
    none = [r for r in rows if r["scores"].get(col) is None]
    return sorted(has, key=lambda r: r["scores"][col], reverse=descending) + sorted(none, key=lambda r: r["team"])
