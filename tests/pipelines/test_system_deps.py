"""scripts/install_system_deps.sh, which `make test` and `.ci/run` call: installs the system packages the tests
drive (chromium, postgresql) when missing and possible, else stops at once with the one command to run.

apt-get, id and sudo are stand-ins on PATH (the test must not install anything); the script runs for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install_system_deps.sh"
BASH = shutil.which("bash")


def tool(folder: Path, name: str, body: str) -> Path:
    p = folder / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return p


@pytest.fixture()
def env(tmp_path):
    """PATH with stand-ins first; Chromium and PostgreSQL present through FIFA_CHROMIUM / FIFA_PG_BINDIR."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "apt.log"
    tool(bin_, "apt-get", f'echo "$@" >> {log}')
    chromium = tool(tmp_path, "chromium", "exit 0")
    pg = tmp_path / "pg"
    pg.mkdir()
    tool(pg, "initdb", "exit 0")
    tool(pg, "pg_ctl", "exit 0")
    e = dict(os.environ, PATH=f"{bin_}:/usr/bin:/bin", FIFA_CHROMIUM=str(chromium), FIFA_PG_BINDIR=str(pg))
    e.pop("FIFA_SKIP_SYSTEM_DEPS", None)
    return {"env": e, "bin": bin_, "log": log, "tmp": tmp_path}


def run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_nothing_to_do_when_both_are_there(env):
    r = run(env["env"])
    assert r.returncode == 0 and r.stderr == "" and not env["log"].exists()


def test_root_installs_what_is_missing(env):
    e = dict(env["env"], FIFA_CHROMIUM=str(env["tmp"] / "nowhere"), FIFA_PG_BINDIR=str(env["tmp"] / "nothing"))
    tool(env["bin"], "id", "echo 0")
    r = run(e)
    assert r.returncode == 0, r.stderr
    assert env["log"].read_text().splitlines() == ["update -q", "install -y -q chromium postgresql"]


def test_without_root_or_sudo_it_stops_with_the_command(env):
    e = dict(env["env"], FIFA_PG_BINDIR=str(env["tmp"] / "nothing"))
    tool(env["bin"], "id", "echo 1000")
    tool(env["bin"], "sudo", "exit 1")  # asks for a password: `sudo -n true` fails
    r = run(e)
    assert r.returncode == 1 and not env["log"].exists()
    assert "sudo apt-get update && sudo apt-get install -y postgresql" in r.stderr and "chromium" not in r.stderr


def test_with_sudo_it_installs_through_sudo(env):
    e = dict(env["env"], FIFA_CHROMIUM=str(env["tmp"] / "nowhere"))
    tool(env["bin"], "id", "echo 1000")
    tool(env["bin"], "sudo", f'echo "sudo $@" >> {env["tmp"] / "sudo.log"}; [ "$1" = "-n" ] && shift; exec "$@"')
    r = run(e)
    assert r.returncode == 0, r.stderr
    assert env["log"].read_text().splitlines()[-1] == "install -y -q chromium"
    assert "sudo -n apt-get install -y -q chromium" in (env["tmp"] / "sudo.log").read_text()


def test_check_only_reports_and_no_apt_get_says_what_is_needed(env):
    e = dict(env["env"], FIFA_CHROMIUM=str(env["tmp"] / "nowhere"))
    r = run(e, "--check")
    assert r.returncode == 1 and "missing system packages: chromium" in r.stderr and not env["log"].exists()
    (env["bin"] / "apt-get").unlink()
    r = run(dict(e, PATH=str(env["bin"])))  # no apt-get anywhere on PATH
    assert r.returncode == 1 and "not a Debian/Ubuntu system" in r.stderr


def test_make_test_runs_it_before_the_tests():
    r = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    i = next(k for k, x in enumerate(lines) if "install_system_deps.sh" in x)
    assert i < next(k for k, x in enumerate(lines) if "pytest" in x)
    assert "scripts/install_system_deps.sh" in (ROOT / ".ci" / "run").read_text()
