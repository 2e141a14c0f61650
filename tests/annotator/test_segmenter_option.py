"""`fifa-annotate run --segmenter dlib68`: the tree regions come from dlib's 68 points."""

from __future__ import annotations

import json
import os

import pytest

from fifa.annotator.cli import RUN_OPTIONS
from fifa.concept_tree.segmentation.backends import BACKENDS
from fifa.concept_tree.segmentation.ibug68 import IBUG68_UNSUPPORTED

from .conftest import read_rows, run_cli


def test_segmenter_choices_are_the_segmentation_backends():
    (option,) = [p for p in RUN_OPTIONS if p.name == "segmenter"]
    enum = option.annotation.__origin__
    assert tuple(c.value for c in enum) == BACKENDS


def test_worker_builds_the_chosen_segmenter():
    from fifa.annotator import worker, worker_sources

    worker_sources.STATE.clear()
    worker_sources.STATE["config"] = worker.WorkerConfig(segmenter="dlib68")  # what init_worker keeps
    try:
        seg = worker_sources.segmenter()
        assert seg.config.backend == "dlib68"
    finally:
        worker.close_worker()
        worker_sources.STATE.clear()


def test_run_with_dlib68_regions(forged, tmp_path):
    out = tmp_path / "ann"
    p = run_cli("run", "--manifest", str(forged), "--out", str(out), "--workers", "2",
                "--segmenter", "dlib68", "--no-progress")  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["segmenter"] == "dlib68"
    rows = read_rows(out)
    assert len(rows) >= 16 and all(r["status"] == "ok" for r in rows)
    fakes = [r for r in rows if r["label"] == "fake"]
    assert fakes
    # regions named in the explanations are ones 68 points support (no eyeball, no forehead)
    named = {s["node_id"] for r in fakes for s in r["segments"]}
    assert named and not (named & IBUG68_UNSUPPORTED)


@pytest.mark.parametrize(
    ("backend", "module", "extra"), [("dlib68", "dlib", "dlib"), ("face_alignment", "face_alignment", "facealign")]
)
def test_run_without_the_backend_package_is_a_user_error(forged, tmp_path, backend, module, extra):
    site = tmp_path / "hide"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    p = run_cli("run", "--manifest", str(forged), "--out", str(tmp_path / "ann"), "--segmenter", backend,
                "--no-progress", env={"PYTHONPATH": str(site)})  # fmt: skip
    assert p.returncode == 2 and f"pip install 'fifa-toolkit[{extra}]'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "ann" / "run.json").exists()
    assert os.environ.get("PYTHONPATH") != str(site)
