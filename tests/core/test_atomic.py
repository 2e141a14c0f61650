"""fifa.core.atomic: files replaced whole or not at all; folder swaps that a real SIGKILL at any moment
leaves with the old or the new complete folder (after ``clean_stale``, which the writers run first)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fifa.core.atomic import (
    atomic_open,
    clean_stale,
    staging_dir,
    swap_folder,
    write_bytes_atomic,
    write_json_atomic,
    write_table_atomic,
    write_text_atomic,
)

TESTS = Path(__file__).resolve().parents[1]


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def test_writers_replace_whole_files(tmp_path):
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    write_text_atomic(tmp_path / "t.txt", "héllo")
    write_json_atomic({"a": [1, 2]}, tmp_path / "j.json")
    write_json_atomic({"b": 1}, tmp_path / "c.json", indent=None)
    write_table_atomic(pa.table({"x": [1, 2, 3]}), tmp_path / "t.parquet")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text("utf-8") == "héllo"
    assert (tmp_path / "j.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert (tmp_path / "c.json").read_text() == '{"b": 1}'
    assert pq.read_table(tmp_path / "t.parquet").column("x").to_pylist() == [1, 2, 3]
    assert _leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "f.json"
    write_json_atomic({"v": 1}, p)
    with pytest.raises(RuntimeError), atomic_open(p, "w") as f:
        f.write('{"v": 2, "half')
        raise RuntimeError("disk went away")
    with pytest.raises(TypeError):
        write_json_atomic({"v": object()}, p, default=None)  # not serialisable: fails half-way
    assert json.loads(p.read_text()) == {"v": 1}
    assert _leftovers(tmp_path) == []


def _folder(d: Path, version: int, files: int = 3) -> Path:
    d.mkdir(parents=True)
    names = [f"f{i:04d}.txt" for i in range(files)]
    for n in names:
        (d / n).write_text(f"{version}:{n}")
    (d / "MANIFEST.json").write_text(json.dumps({"version": version, "files": names}))
    return d


def _complete_version(d: Path) -> int:
    """The folder's version if every file its manifest lists is there with that version's content."""
    man = json.loads((d / "MANIFEST.json").read_text())
    for n in man["files"]:
        assert (d / n).read_text() == f"{man['version']}:{n}", f"{d} is incomplete ({n})"
    return man["version"]


@pytest.mark.parametrize("exchange", [True, False])
def test_swap_puts_the_new_folder_in_and_removes_the_old(tmp_path, exchange):
    out = tmp_path / "rel"
    swap_folder(_folder(staging_dir(out), 1), out, exchange=exchange)  # no old folder yet
    assert _complete_version(out) == 1
    swap_folder(_folder(staging_dir(out), 2, files=5), out, exchange=exchange)
    assert _complete_version(out) == 2 and len(list(out.iterdir())) == 6
    assert _leftovers(tmp_path) == []


#: the child's way of writing a folder (the same as ``_folder``)
CHILD_FOLDER = """
import json
def folder(d, version, files=3):
    d.mkdir(parents=True)
    names = [f"f{i:04d}.txt" for i in range(files)]
    for n in names:
        (d / n).write_text(f"{version}:{n}")
    (d / "MANIFEST.json").write_text(json.dumps({"version": version, "files": names}))
    return d
"""


def _child(code: str, tmp_path: Path, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """A real Python process running ``code`` (with ``folder`` defined) on ``tmp_path``."""
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_FOLDER + textwrap.dedent(code), str(tmp_path)], env=env, stdout=stdout
    )


@pytest.mark.parametrize(
    "target, when, exchange, expect",
    [
        ("fifa.core.atomic:swap_folder", "before", True, 1),  # new folder written, swap not started
        ("fifa.core.atomic:_remove_tree", "before", True, 2),  # swapped, the old one not yet removed
        ("os:replace", "after", False, 1),  # two-rename swap cut between its renames: out is missing
        ("fifa.core.atomic:_remove_tree", "before", False, 2),
    ],
)
def test_sigkill_at_each_step_of_a_swap_leaves_one_complete_folder(tmp_path, target, when, exchange, expect):
    out = tmp_path / "rel"
    swap_folder(_folder(staging_dir(out, pid=1), 1, files=50), out)
    p = _child(
        f"""
        import sys
        from pathlib import Path
        from testkit.killpoints import install
        import fifa.core.atomic as a
        out = Path(sys.argv[1]) / "rel"
        new = folder(a.staging_dir(out), 2)
        install({target!r}, 1, {when!r})
        a.swap_folder(new, out, exchange={exchange})
    """,
        tmp_path,
    )
    assert p.wait(60) == -signal.SIGKILL
    if target == "os:replace":
        assert not out.exists() and list(tmp_path.glob(".rel.old-*")), "the kill was not between the renames"
    clean_stale(out)  # what the next writer runs first
    assert _complete_version(out) == expect
    assert _leftovers(tmp_path) == []


def test_sigkill_at_random_moments_of_swaps_never_loses_the_folder(tmp_path):
    """Processes swapping 100-file folders (atomic exchange and two renames, alternately), each SIGKILLed
    at a random moment of its swap (0-20 ms after it starts: the swap itself takes about 10 ms here): each
    time one complete version is in place (after ``clean_stale``), and the next process goes on from it."""
    out = tmp_path / "rel"
    swap_folder(_folder(staging_dir(out, pid=1), 0, files=100), out)
    rng = random.Random(7)
    seen = set()
    for _ in range(16):
        p = _child(
            """
            import sys
            from pathlib import Path
            import fifa.core.atomic as a
            out = Path(sys.argv[1]) / "rel"
            v = json.loads((out / "MANIFEST.json").read_text())["version"]
            while True:
                v += 1
                a.clean_stale(out)
                new = folder(a.staging_dir(out), v, files=100)
                print("swap", flush=True)
                a.swap_folder(new, out, exchange=bool(v % 2))
        """,
            tmp_path,
            stdout=subprocess.PIPE,
        )
        assert p.stdout.readline() == b"swap\n"
        time.sleep(rng.random() * 0.02)
        p.send_signal(signal.SIGKILL)
        assert p.wait(60) == -signal.SIGKILL
        p.stdout.close()
        clean_stale(out)
        seen.add(_complete_version(out))
        assert _leftovers(tmp_path) == []
    assert len(seen) > 8, f"the kills never let a swap finish: {sorted(seen)}"
