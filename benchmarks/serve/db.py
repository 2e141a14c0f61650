"""The evaluation server's database: schema, engines, teams and tokens.

SQLAlchemy Core over SQLite (the default: one file, WAL journal, write transactions taken with
``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing) or PostgreSQL (``psycopg``; the
queue claims rows with ``FOR UPDATE SKIP LOCKED``, so several server machines can share one database).
Times are UTC seconds since the epoch (floats), the same on both back ends.

Tables: ``teams`` (token stored as its SHA-256: tokens are 256 random bits, so a fast hash is enough),
``blobs`` (submission files by SHA-256, stored once), ``submissions`` (the queue and the results),
``scores`` (the headline metric values of done submissions, for the leaderboard) and ``quota``
(accepted uploads per team and UTC day).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

from fifa.core.errors import EXIT_USAGE, FifaError

metadata = MetaData()

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("daily_limit", Integer, nullable=True),  # None: the server's --daily-limit
    Column("created_at", Float, nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False),
    Column("sha256", String(64), ForeignKey("blobs.sha256"), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("fmt", String(10), nullable=False),  # parquet | jsonl
    Column("status", String(10), nullable=False),  # queued | running | done | failed
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("worker", String(120)),  # the worker holding a running job
    Column("lease_until", Float),  # a running job whose lease ran out goes back to the queue
    Column("attempts", Integer, nullable=False, default=0),
    Column("metrics", Text),  # report.json (JSON) when done
    Column("error", Text),  # the validator's message when failed
    Index("ix_submissions_status_created", "status", "created_at"),
    Index("ix_submissions_team", "team_id", "created_at"),
    Index("ix_submissions_done", "status", "team_id", "finished_at"),  # covers the leaderboard's counts
)

scores = Table(
    "scores",
    metadata,
    Column("submission_id", String(32), ForeignKey("submissions.id"), primary_key=True),
    Column("col", String(64), primary_key=True),  # TASK/METRIC: the task's headline metric
    Column("team_id", Integer, nullable=False),
    Column("value", Float),
    Index("ix_scores_best", "team_id", "col", "value"),  # covers the leaderboard's best per team and column
)

quota = Table(
    "quota",
    metadata,
    Column("team_id", Integer, primary_key=True),
    Column("day", String(10), primary_key=True),  # UTC date, YYYY-MM-DD
    Column("used", Integer, nullable=False),
)


class DatabaseError(FifaError, ValueError):
    """An unusable database URL or an unreachable database (a user mistake: exit 2)."""

    exit_code = EXIT_USAGE


def normalize_url(url: str) -> str:
    """``sqlite:///FILE`` as given; ``postgresql://`` / ``postgres://`` use the psycopg (v3) driver."""
    url = url.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite:", "postgresql+")):
        return url
    raise DatabaseError(f"unsupported database URL {redact(url)!r}: use sqlite:///FILE or postgresql://USER@HOST/DB")


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, create: bool = True) -> Engine:
    """An engine for ``url`` (tables created when ``create``); raises :class:`DatabaseError`."""
    norm = normalize_url(url)
    try:
        if norm.startswith("sqlite"):
            engine = create_engine(
                norm, connect_args={"timeout": 60, "check_same_thread": False}, pool_size=20, max_overflow=40
            )
            _sqlite_events(engine)
        else:
            engine = create_engine(norm, pool_size=10, max_overflow=40, pool_pre_ping=True)
        if create:
            metadata.create_all(engine)
    except ArgumentError as e:
        raise DatabaseError(f"invalid database URL {redact(url)!r}: {e}") from None
    except OperationalError as e:
        raise DatabaseError(f"cannot open database {redact(url)!r}: {e.orig}") from None
    return engine


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _rec):  # noqa: ANN001 - driver objects
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so it waits for the lock instead of failing later)."""
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


# ------------------------------------------------------------------------------------------- teams
TOKEN_PREFIX = "fifa_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    daily_limit: int | None
    created_at: float


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("a team name has 1-100 printable characters")
    return name


def add_team(engine: Engine, name: str, daily_limit: int | None = None) -> tuple[Team, str]:
    """Create a team; returns it and its API token (shown once: only its hash is stored)."""
    name = _check_name(name)
    if daily_limit is not None and daily_limit < 0:
        raise ValueError("the daily limit is a number >= 0")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    try:
        with write_tx(engine) as c:
            tid = c.execute(
                insert(teams).values(name=name, token_hash=hash_token(token), daily_limit=daily_limit, created_at=now)
            ).inserted_primary_key[0]
    except IntegrityError:
        raise ValueError(f"a team named {name!r} exists already") from None
    return Team(int(tid), name, daily_limit, now), token


def team_for_token(engine: Engine, token: str | None) -> Team | None:
    """The team whose token this is, else None (looked up by hash: no token is ever stored)."""
    if not token or len(token) > 200:
        return None
    with read_tx(engine) as c:
        r = c.execute(select(teams).where(teams.c.token_hash == hash_token(token))).first()
    return Team(r.id, r.name, r.daily_limit, r.created_at) if r else None


def list_teams(engine: Engine) -> list[dict]:
    """Every team with its number of submissions (no tokens, no hashes)."""
    with read_tx(engine) as c:
        counts = dict(c.execute(select(submissions.c.team_id, func.count()).group_by(submissions.c.team_id)).all())
        rows = c.execute(select(teams).order_by(teams.c.id)).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "daily_limit": r.daily_limit,
            "created_at": r.created_at,
            "submissions": int(counts.get(r.id, 0)),
        }
        for r in rows
    ]
