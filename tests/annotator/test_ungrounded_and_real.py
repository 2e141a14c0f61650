"""Rows without a source (ungrounded) and real rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.annotator.run import AnnotateConfig, run_annotation
from fifa.annotator.store import read_annotations
from fifa.core import rle


def test_fake_without_source_and_real_rows(forged, tmp_path):
    rows = pq.read_table(forged).to_pylist()
    base = forged.parent
    fake = next(r for r in rows if r["label"] == "fake" and r["category"] == "FS")
    real = next(r for r in rows if r["label"] == "real")
    man = tmp_path / "m.parquet"
    pq.write_table(
        pa.Table.from_pylist(
            [
                dict(
                    sample_id="nosrc",
                    image_path=str(base / fake["image_path"]),
                    source_path=None,
                    label="fake",
                    method=fake["method"],
                    category="FS",
                    group="g",
                ),
                dict(
                    sample_id="real",
                    image_path=str(base / real["image_path"]),
                    source_path=None,
                    label="real",
                    method=None,
                    category="real",
                    group="g",
                ),
            ]
        ),
        man,
    )
    run_annotation(man, tmp_path / "out", AnnotateConfig(progress=False, workers=1, data_root=str(base)))
    by = {r["sample_id"]: r for r in read_annotations(tmp_path / "out").to_pylist()}
    r = by["nosrc"]
    assert r["status"] == "ok" and r["grounded"] is False
    assert r["artifact_regions"] == ["face"] and "not grounded" in r["explanation"]
    assert [s["node_id"] for s in r["segments"]] == ["face"]
    assert rle.area(r["segments"][0]["mask"]) > 0 and rle.area(r["artifact_mask"]) == 0
    q = by["real"]
    assert q["status"] == "ok" and q["artifact_regions"] == [] and q["regions"] == [] and q["segments"] == []
    assert rle.area(q["artifact_mask"]) == 0 and q["artifact_mask"]["size"] == [q["image_height"], q["image_width"]]
