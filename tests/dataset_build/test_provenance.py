"""Provenance columns in instruction, bench and annotation rows: source collection, video and frame, the
annotator (explainer + model + prompt version), the tree version, the review decision and its reviewers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from build_helpers import build_config

from fifa.core.schemas import AGE_RECORD_SCHEMA, BENCH_SCHEMA, INSTRUCT_SCHEMA, PROVENANCE


def frames(build: Path) -> dict[str, pl.DataFrame]:
    read = lambda ps: pl.concat([pl.read_parquet(p) for p in ps])  # noqa: E731
    return {
        "instruct": read(sorted((build / "instruct").glob("*.parquet"))),
        "bench": pl.read_parquet(build / "bench.parquet"),
        "annotations": read(sorted((build / "annotations").glob("*.parquet"))),
    }


def test_every_row_kind_carries_the_provenance_columns(built):
    from fifa.concept_tree.tree import load_tree

    for schema in (INSTRUCT_SCHEMA, BENCH_SCHEMA, AGE_RECORD_SCHEMA):
        assert all(c in schema.names for c in PROVENANCE)
    version = load_tree().version
    for name, f in frames(built).items():
        assert f.height
        assert set(f["explainer"]) == {"offline/none/offline-v3"}, name
        assert set(f["tree_version"]) == {version}, name
        assert set(f["collection"]) == {"fifa-forge"}, name  # the forge's manifest names its collection
        assert f["video"].null_count() == f.height and f["frame"].null_count() == f.height  # not from video
        assert f["review"].null_count() == f.height and set(f["reviewers"].list.len()) == {0}  # no review


def _with_video(ann: Path, out: Path) -> Path:
    """The annotation folder as a video import leaves it: a collection, a video and a frame index per row."""
    shutil.copytree(ann, out, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
    for s in sorted((out / "annotations").glob("part-*.parquet")):
        t = pq.read_table(s)
        ids = t["sample_id"].to_pylist()
        labels = t["label"].to_pylist()
        for name, vals, typ in (
            ("collection", [None if lab == "real" else "FaceForensics++" for lab in labels], pa.string()),
            ("video", [f"v_{i}" for i in ids], pa.string()),
            ("frame", [k * 10 for k in range(len(ids))], pa.int64()),
        ):
            t = t.set_column(t.schema.get_field_index(name), name, pa.array(vals, typ))
        pq.write_table(t, s)
    return out


def test_video_frame_collection_and_review_reach_every_row(annotated, tmp_path):
    from fifa.pipelines.build import build

    ann = _with_video(annotated["ann"], tmp_path / "ann")
    src = pl.concat([pl.read_parquet(p) for p in sorted((ann / "annotations").glob("*.parquet"))])
    src = src.filter(pl.col("status") == "ok")
    reviewed = sorted(src["sample_id"].to_list())[:6]
    rf = tmp_path / "review.json"
    rf.write_text(
        json.dumps(
            {
                "version": 1,
                "reviewer": "ana",
                "decisions": [
                    {"sample_id": s, "decision": "accepted", "note": "", "at": "2026-12-01T10:00:00Z"} for s in reviewed
                ],
            }
        )
    )
    out = tmp_path / "b"
    build([ann], out, build_config(review=str(rf)))
    want = src.select("sample_id", pl.col("video").alias("v"), pl.col("frame").alias("fr"), "method", "label")
    for name, f in frames(out).items():
        j = f.join(want, on="sample_id", how="left")
        assert (j["video"] == j["v"]).all() and (j["frame"] == j["fr"]).all(), name
        fakes, reals = j.filter(pl.col("label") == "fake"), j.filter(pl.col("label") == "real")
        assert set(fakes["collection"]) == {"FaceForensics++"}, name
        # a real image without a recorded collection gets none (no method to match a collection by)
        assert reals["collection"].null_count() == reals.height, name
        rev = j.filter(pl.col("sample_id").is_in(reviewed))
        assert rev.height and set(rev["review"]) == {"accepted"}, name
        assert rev["reviewers"].to_list() == [["ana"]] * rev.height
        rest = j.filter(~pl.col("sample_id").is_in(reviewed))
        assert rest["review"].null_count() == rest.height


def test_collection_falls_back_to_the_method_table_of_sources(annotated, tmp_path):
    """Annotations whose manifest named no collection: the sources table's collection of the method."""
    from fifa.pipelines.build import build
    from fifa.pipelines.card import load_sources
    from fifa.pipelines.provenance import method_collections

    ann = tmp_path / "ann"
    shutil.copytree(annotated["ann"], ann, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
    for s in sorted((ann / "annotations").glob("part-*.parquet")):
        t = pq.read_table(s)
        pq.write_table(t.drop_columns(["collection", "video", "frame"]), s)  # an older annotation folder
    out = tmp_path / "b"
    build([ann], out, build_config(tasks=("det", "cls")))
    f = frames(out)["instruct"]
    table = method_collections(load_sources())
    want = f["method"].replace_strict(table, default=None, return_dtype=pl.String)
    assert f["collection"].to_list() == want.to_list()
    assert f["collection"].drop_nulls().len() > 0 and set(f["collection"].drop_nulls()) == {"fifa-forge"}


def test_card_explains_the_provenance_columns(built, tmp_path):
    from fifa.pipelines.release import ReleaseConfig, release

    release(built, tmp_path / "rel", ReleaseConfig(version="0.1"))
    card = (tmp_path / "rel" / "README.md").read_text()
    assert "### Provenance columns" in card
    for c in PROVENANCE:
        assert f"`{c}`" in card, c
