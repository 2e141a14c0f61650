"""CLI surface: --help with examples, show PNG, the demo pipeline (forge -> annotate -> overlays)."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from .conftest import read_rows, run_cli


def test_every_help_has_an_example():
    for args in ([], ["run"], ["retry"], ["show"]):
        p = run_cli(*args, "--help")
        assert p.returncode == 0 and "Example" in p.stdout, args


def test_demo_forges_annotates_and_draws_under_a_minute(tmp_path):
    from fifa.demo import annotate_demo

    t = time.perf_counter()
    summary = annotate_demo(tmp_path / "demo")
    assert time.perf_counter() - t < 60
    assert summary.failed == 0 and summary.ok >= 12
    pngs = sorted((tmp_path / "demo" / "overlays").glob("*.png"))
    assert len(pngs) >= 3
    im = np.asarray(Image.open(pngs[0]))
    assert im.shape[1] > 800 and im.std() > 10
    rows = [r for r in read_rows(tmp_path / "demo" / "annotations_run") if r["label"] == "fake"]
    for r in rows:
        # AGE record: every marked phrase has a segment with a mask of the image size, in text order
        from fifa.core import marks

        found = marks.parse(r["explanation"])
        assert [(s["node_id"], s["phrase"]) for s in r["segments"]] == found
        assert all(s["mask"]["size"] == r["artifact_mask"]["size"] for s in r["segments"])
        assert r["explainer"].startswith("offline/") and r["tree_version"]


def test_show_draws_a_png(forged, tmp_path):
    out = tmp_path / "ann"
    p = run_cli("run", "--manifest", str(forged), "--out", str(out), "--workers", "2", "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    sid = next(r["sample_id"] for r in read_rows(out) if r["label"] == "fake")
    png = tmp_path / "s.png"
    p = run_cli("show", str(out), sid, "--out", str(png))
    assert p.returncode == 0 and png.is_file()
    p = run_cli("show", str(out), "no_such_sample", "--out", str(png))
    assert p.returncode == 2 and "not found" in p.stderr
