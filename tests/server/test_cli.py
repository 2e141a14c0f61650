"""`fifa-bench team add/list` and `fifa-bench serve` mistakes, through the real command lines."""

from __future__ import annotations

import sqlite3
import subprocess

from bench_helpers import make_bench, write_bench
from server_kit import FIFA_BENCH

from fifa.benchmarks.serve.db import hash_token


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(FIFA_BENCH), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_team_add_prints_the_token_once_and_stores_only_its_hash(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = _cli("team", "add", "lab-a", "--db", db, "--daily-limit", "3")
    assert r.returncode == 0 and "shown only now" in r.stderr
    token = r.stdout.strip()
    assert token.startswith("fifa_") and len(token) > 40
    raw = (tmp_path / "s.db").read_bytes()
    with sqlite3.connect(tmp_path / "s.db") as c:
        assert c.execute("select token_hash from teams").fetchall() == [(hash_token(token),)]
    assert token.encode() not in raw
    listed = _cli("team", "list", "--db", db)
    assert listed.returncode == 0 and "| 1 | lab-a | 3 | 0 |" in listed.stdout
    assert token not in listed.stdout and hash_token(token) not in listed.stdout
    again = _cli("team", "add", "lab-a", "--db", db)
    assert again.returncode == 2 and "exists already" in again.stderr and "Traceback" not in again.stderr


def test_serve_mistakes_exit_2_without_traceback(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"not parquet")
    good = write_bench(make_bench(seed=0, n_det=4, n_cls=0, n_text=0, n_loc=0, n_age=0), tmp_path / "b.parquet")
    cases = [
        (["--bench", tmp_path / "missing.parquet"], "bench not found"),
        (["--bench", bad, "--db", f"sqlite:///{tmp_path / 'x.db'}"], "cannot read bench"),
        (["--bench", good, "--db", "mysql://h/db"], "unsupported database URL"),
        (["--bench", good, "--db", "postgresql://u:secret@127.0.0.1:1/x"], "cannot open database"),
    ]
    for args, needle in cases:
        r = _cli("serve", *args, "--port", "1")
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert "secret" not in r.stderr  # a password is never shown


def test_serve_help_shows_the_reverse_proxy_setup():
    r = _cli("serve", "--help")
    assert r.returncode == 0
    for needle in (
        "proxy_pass http://127.0.0.1:8000/",
        "--root-path",
        "client_max_body_size",
        "--forwarded-allow-ips",
        "Example",
    ):
        assert needle in r.stdout
