"""The viewer over real `fifa-data build` and `fifa-data release` output (not only hand-made folders)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from fifa.pipelines.release import ReleaseConfig, release
from fifa.pipelines.viewer import ViewerConfig, build_site


def _site_text(site) -> str:
    return "\n".join(p.read_text("utf-8") for p in site.rglob("*") if p.suffix in (".js", ".html", ".json"))


def test_site_over_a_real_build(built, tmp_path):
    s = build_site(built, tmp_path / "site", ViewerConfig(page_size=20, max_side=128))
    assert s.kind == "build"
    samples = set(pq.read_table(built / "instruct" / "train.parquet", columns=["sample_id"]).column(0).to_pylist())
    assert s.samples >= len(samples) > 0 and s.missing_images == 0 and s.images > 0
    text = _site_text(tmp_path / "site")
    assert str(built.parent) not in text and "/tmp/" not in text  # no path of the building machine
    meta = json.loads((built / "build.json").read_text())
    assert meta["image_root"] not in ("", "/")


def test_site_over_a_real_release(built, tmp_path):
    rel = tmp_path / "release"
    release(built, rel, ReleaseConfig(version="0.0.1", images="embed", date="2026-11-27"))
    s = build_site(rel, tmp_path / "site", ViewerConfig(page_size=20, max_side=128))
    assert s.kind == "release" and s.samples > 0 and s.missing_images == 0
    assert "/tmp/" not in _site_text(tmp_path / "site")
