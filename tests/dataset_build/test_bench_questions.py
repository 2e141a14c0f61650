"""The build's bench is made of :class:`fifa.core.records.BenchQuestion` records and written through their Arrow
schema: the file is its questions written by ``BenchQuestion.to_arrow``, byte for byte, and a build whose
segmenter cannot start (``age`` rows with null anchor masks, DESIGN.md) still writes questions the record reads."""

from __future__ import annotations

import pyarrow.parquet as pq
from build_helpers import build_config

from fifa.concept_tree.tree import ANCHORS
from fifa.core.records import BenchQuestion
from fifa.core.schemas import BENCH_SCHEMA
from fifa.pipelines.bench_rows import BenchCollector
from fifa.pipelines.build import build
from fifa.pipelines.parquet_io import write_table


def test_the_bench_file_is_its_questions_written_through_the_record(built, tmp_path):
    path = built / "bench.parquet"
    table = pq.read_table(path)
    questions = BenchQuestion.from_arrow(table)
    assert table.schema.equals(BENCH_SCHEMA) and len(questions) == table.num_rows > 20
    assert {"det", "age", "rq_mask"} <= {q.task for q in questions}
    write_table(BenchQuestion.to_arrow(questions), tmp_path / "again.parquet")
    assert (tmp_path / "again.parquet").read_bytes() == path.read_bytes()
    age = [q for q in questions if q.task == "age"]
    assert any(q.anchor_masks for q in age)  # filled per question by bench_anchors.with_anchor_masks
    assert all({a["node_id"] for a in q.anchor_masks or []} <= set(ANCHORS) for q in age)
    assert all(q.anchor_masks == [] and q.mask_node_ids == [] for q in questions if q.task != "age")


def test_a_build_whose_segmenter_cannot_start_writes_questions_with_null_anchor_masks(
    annotated, tmp_path, monkeypatch, caplog
):
    import fifa.concept_tree.segmentation.segment as segment

    def no_segmenter(*a, **k):
        raise RuntimeError("no landmark model here")

    monkeypatch.setattr(segment, "Segmenter", no_segmenter)
    handed: list = []
    finish = BenchCollector.finish

    def spy(self, per_class):
        handed.append(finish(self, per_class))
        return handed[-1]

    monkeypatch.setattr(BenchCollector, "finish", spy)
    out = tmp_path / "build"
    build([annotated["ann"]], out, build_config(tasks=("age", "det")))
    questions, _ = handed[0]
    assert questions and all(type(q) is BenchQuestion for q in questions)  # records, not a table or dicts
    assert BenchQuestion.from_arrow(pq.read_table(out / "bench.parquet")) == questions
    assert {q.anchor_masks is None for q in questions if q.task == "age"} == {True}
    assert {q.anchor_masks == [] for q in questions if q.task == "det"} == {True}
    assert "segmenter cannot start (no landmark model here)" in caplog.text
