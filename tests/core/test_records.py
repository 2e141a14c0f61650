"""The typed records of fifa.core.records on real tables: forged pairs annotated by the real annotator and
built by the real build; every record class round-trips its table, rejects a wrong-typed field, and
writes the core schema."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fifa.core import schemas
from fifa.core.records import AnnotationRecord, BenchQuestion, InstructRow, RecordTypeError, replace

RECORDS = [(AnnotationRecord, schemas.ANNOTATION_SCHEMA), (InstructRow, schemas.INSTRUCT_SCHEMA)]
RECORDS += [(BenchQuestion, schemas.BENCH_SCHEMA)]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[type, pa.Table]:
    """One real table per record class: a forged dataset annotated offline, then built."""
    from fifa.annotator.forge import STRONG, forge
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.annotator.store import read_annotations
    from fifa.pipelines.build import BuildConfig, build
    from fifa.pipelines.splits import SplitRatios

    d = tmp_path_factory.mktemp("records")
    manifest = forge(d / "forged", n=12, seed=5, kinds=STRONG, jpeg_pair_fraction=0.0)
    run_annotation(manifest, d / "ann", AnnotateConfig(progress=False, workers=1))
    build([d / "ann"], d / "build", BuildConfig(seed=3, ratios=SplitRatios(0.5, 0.2, 0.3), bench_per_class=None))
    return {
        AnnotationRecord: read_annotations(d / "ann"),
        InstructRow: pq.read_table(d / "build" / "instruct" / "train.parquet"),
        BenchQuestion: pq.read_table(d / "build" / "bench.parquet"),
    }


@pytest.mark.parametrize("cls", [c for c, _ in RECORDS], ids=lambda c: c.__name__)
def test_a_real_table_round_trips(tables, cls):
    table = tables[cls]
    records = cls.from_arrow(table)
    assert len(records) == table.num_rows > 5
    assert all(type(r) is cls for r in records)
    back = cls.to_arrow(records)
    assert back.schema.equals(table.schema) and back.equals(table)
    # the checked way in (a dict per row) gives the same records
    assert [cls.from_row(r) for r in table.to_pylist()] == records
    assert [cls.from_row(r.to_row()) for r in records] == records


def test_the_annotator_wrote_records_with_content(tables):
    recs = AnnotationRecord.from_arrow(tables[AnnotationRecord])
    ok = [r for r in recs if r.status == "ok" and r.label == "fake"]
    assert ok and all(r.artifact_mask is not None and r.explanation for r in ok)
    assert any(r.regions and r.regions[0]["mask"]["counts"] for r in ok)
    assert all(r.attempt == 1 and r.time_cpu_s is not None and r.time_cpu_s >= 0 for r in recs)


@pytest.mark.parametrize("cls,schema", RECORDS, ids=lambda c: getattr(c, "__name__", ""))
def test_fields_are_the_schema_columns_in_order(cls, schema):
    assert [f.name for f in dataclasses.fields(cls)] == schema.names
    assert cls.to_arrow([]).schema.equals(schema)
    assert cls.SCHEMA is schema  # the schema of fifa.core.schemas, not a copy


@pytest.mark.parametrize("cls,schema", RECORDS, ids=lambda c: getattr(c, "__name__", ""))
def test_the_types_say_which_columns_may_be_null(cls, schema):
    """A field typed without ``| None`` is a column the record refuses null in, and the other way round."""
    for f in dataclasses.fields(cls):
        optional = "None" in str(f.type)
        assert optional == (f.name not in cls.REQUIRED), f.name


def test_records_are_frozen_and_pickle(tables):
    rec = AnnotationRecord.from_arrow(tables[AnnotationRecord])[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.status = "failed"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(rec)) == rec  # they cross process boundaries (the annotator's workers)
    assert not hasattr(rec, "__dict__")  # slots


@pytest.mark.parametrize(
    "field,value,where",
    [
        ("mask_area", "12", "AnnotationRecord.mask_area: expected int64, got str"),
        ("mask_area", True, "AnnotationRecord.mask_area: expected int64, got bool"),
        ("grounded", 1, "AnnotationRecord.grounded: expected bool, got int"),
        ("artifact_regions", "mouth", "AnnotationRecord.artifact_regions: expected a list, got str"),
        ("artifact_regions", ["mouth", 3], "AnnotationRecord.artifact_regions[1]: expected string, got int"),
        ("artifact_mask", {"size": [2, 2], "counts": b"04"}, "AnnotationRecord.artifact_mask.counts: expected string"),
        ("artifact_mask", {"size": [2, 2], "counts": "04", "x": 1}, "AnnotationRecord.artifact_mask: unknown key"),
        ("regions", [{"node_id": "mouth", "coverage": "all"}], "AnnotationRecord.regions[0].coverage: expected double"),
        ("status", None, "AnnotationRecord.status may not be None"),
    ],
)
def test_a_wrong_typed_field_is_rejected(tables, field, value, where):
    rec = AnnotationRecord.from_arrow(tables[AnnotationRecord])[0]
    with pytest.raises(RecordTypeError) as e:
        replace(rec, **{field: value})
    assert str(e.value).startswith(where)
    with pytest.raises(RecordTypeError):
        AnnotationRecord.from_row({**rec.to_row(), field: value})


def test_ints_are_floats_but_nothing_else_is(tables):
    q = BenchQuestion.from_arrow(tables[BenchQuestion])[0]
    assert replace(q, query_box=[0, 1, 2.5, 3]).query_box == [0, 1, 2.5, 3]
    with pytest.raises(RecordTypeError, match=r"BenchQuestion.query_box\[2\]: expected double, got str"):
        replace(q, query_box=[0, 1, "2", 3])
    with pytest.raises(RecordTypeError, match="BenchQuestion.image.bytes: expected binary, got str"):
        replace(q, image={"bytes": "abc", "path": None})


def test_from_arrow_checks_the_table_schema_once(tables):
    t = tables[InstructRow]
    assert InstructRow.from_arrow(t.append_column("extra", pa.array([1] * t.num_rows))) == InstructRow.from_arrow(t)
    no_split = InstructRow.from_arrow(t.drop_columns(["split"]))  # a column that may be null: read as null
    assert {r.split for r in no_split} == {None}
    with pytest.raises(RecordTypeError, match="no column 'messages'"):
        InstructRow.from_arrow(t.drop_columns(["messages"]))
    bad = t.set_column(t.schema.get_field_index("task"), "task", pa.array([1] * t.num_rows))
    assert {r.task for r in InstructRow.from_arrow(bad)} == {"1"}  # castable: cast, as Arrow would
    bad = t.set_column(t.schema.get_field_index("messages"), "messages", pa.array(["x"] * t.num_rows))
    with pytest.raises(RecordTypeError, match="InstructRow.messages: column of type string"):
        InstructRow.from_arrow(bad)
    nulls = t.set_column(t.schema.get_field_index("task"), "task", pa.nulls(t.num_rows, pa.string()))
    with pytest.raises(RecordTypeError, match="null value"):
        InstructRow.from_arrow(nulls)


def test_iter_arrow_streams_batches(tables, tmp_path: Path):
    t = tables[BenchQuestion]
    pq.write_table(t, tmp_path / "b.parquet", row_group_size=3)
    batches = pq.ParquetFile(tmp_path / "b.parquet").iter_batches(batch_size=3)
    assert list(BenchQuestion.iter_arrow(batches)) == BenchQuestion.from_arrow(t)


def test_replace_makes_a_new_record_and_checks_the_new_values(tables):
    rec = AnnotationRecord.from_arrow(tables[AnnotationRecord])[0]
    new = replace(rec, time_cpu_s=1.5, attempt=2)
    assert (new.time_cpu_s, new.attempt) == (1.5, 2) and rec.attempt == 1
    assert new.regions is rec.regions  # unchanged values are shared, not copied or checked again
    assert dataclasses.replace(rec, time_cpu_s=1.5, attempt=2) == new
    with pytest.raises(TypeError, match="no field"):
        replace(rec, no_such_column=1)
