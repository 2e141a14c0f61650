"""Sources are segmented lazily (face concepts first, the rest when a mask leaves the face),
and the rows are the same as with a full segmentation of every source."""

from __future__ import annotations

import pyarrow.parquet as pq

from fifa.annotator import worker

COMPARED = ("status", "artifact_mask", "artifact_regions", "regions", "explanation", "segments", "mask_area")


def _rows(manifest, lazy: bool):
    worker.init_worker(worker.WorkerConfig(lazy_outside_face=lazy, segment_cache=0))
    base = manifest.parent
    out = []
    for r in pq.read_table(manifest).to_pylist():
        r = dict(
            r,
            image_path=str(base / r["image_path"]),
            source_path=str(base / r["source_path"]) if r["source_path"] else None,
        )
        out.append(worker.process_row(r).row)
    worker.close_worker()
    return out


def test_lazy_rows_equal_full_segmentation_rows(forged):
    lazy, full = _rows(forged, True), _rows(forged, False)
    assert len(lazy) == len(full) > 16
    for a, b in zip(lazy, full):
        for k in COMPARED:
            assert getattr(a, k) == getattr(b, k), (a.sample_id, k)


def test_person_model_runs_only_for_masks_leaving_the_face(forged, monkeypatch):
    calls = []
    from fifa.concept_tree.segmentation.landmarks import MediaPipeFaceMesh

    orig = MediaPipeFaceMesh.person_probability
    monkeypatch.setattr(MediaPipeFaceMesh, "person_probability", lambda self, rgb: calls.append(1) or orig(self, rgb))
    rows = _rows(forged, True)
    fakes = [r for r in rows if r.label == "fake" and r.status == "ok"]
    outside = [r for r in fakes if not set(r.artifact_regions) <= _face_nodes()]
    assert fakes and len(calls) < len(fakes)  # some sources never needed the person model
    assert len(calls) >= len(outside) > 0 or not outside


def _face_nodes() -> set[str]:
    from fifa.concept_tree.tree import load_tree

    t = load_tree()
    return {"face"} | {n.id for n in t.descendants("face")}
