"""Evaluation-server test set-up: benches, a SQLite server shared by a module, PostgreSQL, Chromium.

Without PostgreSQL's binaries or Chromium the tests that need them FAIL with the install
instruction (as the viewer's do): a skipped test would not show that the feature was never checked.
The headless browser is the session's `browser` fixture (tests/conftest.py), shared with the viewer's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_here = Path(__file__).parent
for p in (_here, _here.parent / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import server_kit  # noqa: E402


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory):
    d = tmp_path_factory.mktemp("srv_bench")
    rows, path = server_kit.secret_bench(d / "bench.parquet", seed=0, n_det=16, n_cls=8, n_text=4, n_loc=4, n_age=4)
    return rows, path


@pytest.fixture(scope="module")
def sqlite_server(small_bench, tmp_path_factory):
    """One SQLite server for a test module: 2 workers, 0.25 MiB uploads, 10 per team and day."""
    d = tmp_path_factory.mktemp("srv_sqlite")
    db = f"sqlite:///{d / 'serve.db'}"
    srv = server_kit.Server(
        small_bench[1], db, d, *server_kit.SCORE_ARGS, "--max-upload-mb", "0.25", "--daily-limit", "10"
    )
    srv.db, srv.dir = db, d
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the session (tests take fresh databases of it: ``postgres.database(name)``)."""
    bindir = server_kit.pg_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL not found: " + server_kit.PG_HINT, pytrace=False)
    pg = server_kit.Postgres(bindir)
    yield pg
    pg.stop()
