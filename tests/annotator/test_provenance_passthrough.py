"""The annotator passes a manifest's provenance (collection, video, frame) through to its annotation rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from .conftest import read_rows


def test_collection_video_and_frame_reach_the_annotation_rows(forged, tmp_path):
    from fifa.annotator.run import AnnotateConfig, run_annotation

    rows = pq.read_table(forged).to_pylist()
    pick = [r for r in rows if r["label"] == "fake"][:2] + [r for r in rows if r["label"] == "real"][:1]
    for k, r in enumerate(pick):
        r.update(collection="FaceForensics++", video=f"00{k}_00{k + 1}", frame=12 * k)
    pick[-1].update(collection=None, video=None, frame=None)
    man = forged.with_name("manifest_provenance.parquet")
    pq.write_table(pa.Table.from_pylist(pick), man)
    run_annotation(man, tmp_path / "out", AnnotateConfig(progress=False, workers=1))
    got = {r["sample_id"]: (r["collection"], r["video"], r["frame"]) for r in read_rows(tmp_path / "out")}
    assert got == {r["sample_id"]: (r["collection"], r["video"], r["frame"]) for r in pick}


def test_a_frame_that_is_not_an_index_is_refused(forged, tmp_path):
    from fifa.annotator.manifest import ManifestError, read_manifest

    rows = pq.read_table(forged).to_pylist()[:2]
    rows[0]["frame"], rows[1]["frame"] = "7", "seven"
    man = forged.with_name("manifest_badframe.csv")
    pcsv.write_csv(pa.Table.from_pylist(rows).select(["sample_id", "image_path", "label", "frame"]), man)
    with pytest.raises(ManifestError, match="frame 'seven'"):
        read_manifest(man)
    rows[1]["frame"] = None
    pcsv.write_csv(pa.Table.from_pylist(rows).select(["sample_id", "image_path", "label", "frame"]), man)
    assert [r.frame for r in read_manifest(man)] == [7, None]
