"""Real parts for the evaluation-server tests: the `fifa-bench serve` process, its team CLI, a real
PostgreSQL cluster started from Debian's binaries, and benches whose references are easy to grep for."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_helpers import make_bench, make_submission, write_bench, write_jsonl

BIN = Path(sys.executable).parent
FIFA_BENCH = BIN / "fifa-bench"
PG_HINT = (
    "the PostgreSQL tests need Debian's `postgresql` package (initdb, pg_ctl): `apt-get install -y "
    "postgresql` (`.ci/run` does it), or point FIFA_PG_BINDIR at a folder holding initdb and pg_ctl."
)
SCORE_ARGS = ("--bootstrap", "200", "--seed", "3", "--no-meteor")  # the server's and the CLI's
SECRET = "refsecret"  # every reference text answer carries it: no response may ever hold it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_bench(path: Path, seed: int = 0, breakdowns: bool = True, **sizes) -> tuple[list[dict], Path]:
    """A bench of every task whose text answers end with a unique ``refsecret<k>`` word (``breakdowns=False``:
    no method/category, so no per-group metrics: much faster to score)."""
    rows = make_bench(seed=seed, **sizes)
    for k, r in enumerate(rows):
        if not breakdowns:
            r["method"] = r["category"] = None
        if r["task"] in ("toe", "fc", "age"):
            r["answer"] = f"{r['answer']} {SECRET}{k}"
    return rows, write_bench(rows, path)


def write_sub(rows: list[dict], path: Path, seed: int = 1) -> Path:
    return write_jsonl(make_submission(rows, seed=seed), path)


def team_add(db: str, name: str, daily_limit: int | None = None) -> str:
    """The token printed by the real `fifa-bench team add`."""
    args = [str(FIFA_BENCH), "team", "add", name, "--db", db]
    if daily_limit is not None:
        args += ["--daily-limit", str(daily_limit)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("fifa_") and "\n" not in token
    return token


class Server:
    """`fifa-bench serve` on 127.0.0.1, started as a real process; JSON logs collected in a file."""

    def __init__(self, bench: Path, db: str, workdir: Path, *extra: str, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        self.args = [
            str(FIFA_BENCH),
            "serve",
            "--bench",
            str(bench),
            "--db",
            db,
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *extra,
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (open while the server runs)
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ, GLOG_minloglevel="2")
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log_path.read_text()[-3000:]}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready: {self.log_path.read_text()[-3000:]}")

    def events(self, name: str | None = None) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and (name is None or e.get("event") == name):
                out.append(e)
        return out

    def ready_workers(self) -> list[dict]:
        return self.events("worker.ready")

    def worker_pids(self) -> list[int]:
        """Live scoring workers: started by the server (its log), not reported dead, running (psutil)."""
        import psutil

        dead = {e["worker_pid"] for e in self.events("worker.died")}
        pids = [e["worker_pid"] for e in self.events("worker.started") if e["worker_pid"] not in dead]
        tree = {c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)}
        return [p for p in pids if p in tree and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def upload(url: str, token: str | None, path: Path, name: str | None = None, client=None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with open(path, "rb") as f:
        files = {"file": (name or path.name, f.read())}
    return (client or httpx).post(url + "/api/submissions", headers=headers, files=files, timeout=120)


def wait_done(url: str, token: str, ids: list[str], timeout: float = 120) -> dict[str, dict]:
    """Poll until every submission is done or failed; returns them by id."""
    out: dict[str, dict] = {}
    deadline = time.time() + timeout
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        while time.time() < deadline:
            for sid in ids:
                if sid not in out:
                    r = c.get(f"{url}/api/submissions/{sid}")
                    assert r.status_code == 200, r.text
                    if r.json()["status"] in ("done", "failed"):
                        out[sid] = r.json()
            if len(out) == len(ids):
                return out
            time.sleep(0.2)
    raise AssertionError(f"not finished after {timeout} s: {sorted(set(ids) - set(out))}")


def cli_report(bench: Path, sub: Path, out: Path, *score_args: str) -> dict:
    """report.json of the real `fifa-bench score` on the same files."""
    r = subprocess.run(
        [
            str(FIFA_BENCH),
            "score",
            "--bench",
            str(bench),
            "--submission",
            str(sub),
            "--out",
            str(out),
            "--no-plots",
            *score_args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads((out / "report.json").read_text())


# ------------------------------------------------------------------------------------- PostgreSQL
def pg_bindir() -> Path | None:
    env = os.environ.get("FIFA_PG_BINDIR")
    cands = [Path(env)] if env else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in cands:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1, run as an unprivileged user (initdb refuses root)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # drop to the package's `postgres` user (or nobody)
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
        self.dir = Path(tempfile.mkdtemp(prefix="fifa-pg-"))
        if self.user is not None:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self._run("initdb", "-D", str(self.data), "-U", "fifa", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "pg.log"), "-w", "start")
        self.url = f"postgresql://fifa@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        """A new, empty database of this cluster; its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=fifa dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://fifa@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str) -> None:
        kw = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user is not None else {}
        r = subprocess.run(
            [str(self.bindir / tool), *args], capture_output=True, text=True, timeout=120, cwd=str(self.dir), **kw
        )
        assert r.returncode == 0, f"{tool} failed: {r.stdout}\n{r.stderr}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
