"""scripts/benchkit.py: what the benchmark scripts share (machine, process-tree sampling, timing, result row)."""

from __future__ import annotations

import subprocess
import sys
import time

import benchkit
from benchkit import Row, Stopwatch, TreeSampler, describe, machine, markdown_table

# a parent that starts a child holding ~150 MB, both alive for a moment: the tree's peak is the sum
_TREE = r"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "b = bytearray(150 * 2**20); import time; time.sleep(1.5)"])
t = time.process_time()
while time.process_time() - t < 0.4:
    pass
child.wait()
"""


def test_tree_sampler_counts_the_memory_and_cpu_of_descendants():
    p = subprocess.Popen([sys.executable, "-c", _TREE])
    with TreeSampler(p.pid, every=0.05) as tree:
        p.wait()
    assert p.returncode == 0
    assert tree.peak_mb >= 150  # the child's buffer, not only the parent's interpreter
    assert tree.cpu_s >= 0.35  # the parent's busy loop (and the child's start-up)
    assert 0.35 <= tree.root_cpu_s <= tree.cpu_s


def _burn(seconds: float) -> None:
    t = time.process_time()
    while time.process_time() - t < seconds:
        pass


def test_tree_sampler_of_this_process_counts_from_its_start():
    # a child that burns CPU before the start (a pool left by earlier work) and sleeps during it: not counted
    old = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\ntime.sleep(5)",
        ]
    )
    time.sleep(1.8)
    _burn(1.0)  # before the start: not counted
    with TreeSampler(every=0.05) as tree:
        _burn(0.3)
    old.kill()
    assert 0.25 <= tree.cpu_s < 0.9
    assert tree.peak > 10 * 2**20


def test_stopwatch():
    with Stopwatch() as sw:
        time.sleep(0.2)
    assert 0.19 <= sw.wall_s < 10 and sw.cpu_s < 0.15  # loose above: a loaded machine
    wall = sw.wall_s
    time.sleep(0.05)
    assert sw.wall_s == wall  # frozen at the end of the block


def test_machine_and_its_line():
    m = machine()
    assert m["cores"] and m["python"] and m["cpu"]
    line = describe(m)
    assert f"{m['cores']} cores" in line and "torch" not in line
    assert "no GPU, torch 2" in describe(dict(m, torch="2.13.0", gpu=None))


def test_row_markdown_as_bench_all_writes_it():
    rows = [
        Row("train", "tokens/s", 1234.5, "tokens/s", "plain", 1300.0, 0.95, ">= 0.9x", True),
        Row("annotate", "peak RSS", 812.0, "MB"),
    ]
    lines = markdown_table(rows)
    assert lines[0].startswith("| stage | figure |") and lines[1].startswith("|---")
    assert lines[2] == "| train | tokens/s | 1,234 tokens/s | plain: 1,300 tokens/s | 0.95x | >= 0.9x | ✓ |"
    assert lines[3] == "| annotate | peak RSS | 812 MB |  |  |  |  |"


def test_testkit_is_the_module_the_tests_import():
    from testkit import build_fixture

    assert benchkit.testkit("build_fixture") is build_fixture
    assert callable(build_fixture.make_build)
