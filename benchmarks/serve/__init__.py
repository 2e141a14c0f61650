"""``fifa-bench serve``: the hidden-label evaluation server (DESIGN.md "Evaluation server", docs/server.md).

Teams upload submissions over HTTP; scoring workers claim them from a database queue (SQLite by
default, PostgreSQL by URL) and score them with :func:`fifa.benchmarks.scoring.score`; a leaderboard
shows each team's best. The references never leave the server.

Library API::

    from fifa.benchmarks.serve import ServeConfig, ScoreOptions, run_server, make_engine, add_team
    engine = make_engine("sqlite:///serve.db")
    team, token = add_team(engine, "lab-a")          # the token is shown once; only its hash is stored
    run_server(ServeConfig(bench=Path("bench.parquet"), db="sqlite:///serve.db", workers=2))
"""

from .config import ScoreOptions, ServeConfig
from .db import DatabaseError, add_team, list_teams, make_engine

__all__ = [
    "ScoreOptions",
    "ServeConfig",
    "DatabaseError",
    "add_team",
    "list_teams",
    "make_engine",
    "run_server",
    "create_app",
]


def run_server(cfg: ServeConfig) -> None:
    """Serve until SIGTERM/SIGINT (see :func:`fifa.benchmarks.serve.supervisor.run_server`)."""
    from .supervisor import run_server as _run

    _run(cfg)


def create_app(cfg: ServeConfig):
    """The web app alone, without scoring workers (see :func:`fifa.benchmarks.serve.app.create_app`)."""
    from .app import create_app as _create

    return _create(cfg)
