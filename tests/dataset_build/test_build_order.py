"""A build's rows come out in sample_id order, whatever order the annotator's workers finished (and stored) them in.

The same annotation rows stored in two orders and two shard layouts (what two runs of a multi-worker
annotator give) build into identical instruction, annotation and bench tables, row for row; a small
``chunk_rows`` takes the path that spills chunks to disk.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from build_helpers import build_config

from fifa.annotator.store import ANN_DIR


def _restored(ann: Path, dest: Path, seed: int, n_shards: int) -> Path:
    """``ann``'s rows shuffled into ``n_shards`` new shards under ``dest`` (another worker order's storage)."""
    shards = sorted((ann / ANN_DIR).glob("part-*.parquet"))
    table = pa.concat_tables([pq.ParquetFile(p).read() for p in shards])
    order = list(range(table.num_rows))
    random.Random(seed).shuffle(order)
    table = table.take(pa.array(order))
    (dest / ANN_DIR).mkdir(parents=True)
    step = -(-table.num_rows // n_shards)
    for k in range(n_shards):
        pq.write_table(table.slice(k * step, step), dest / ANN_DIR / f"part-{k:06d}-{seed:08x}.parquet")
    return dest


def _tables(build: Path) -> dict[str, list[dict]]:
    files = sorted(build.glob("instruct/*.parquet")) + sorted(build.glob("annotations/*.parquet"))
    return {str(p.relative_to(build)): pq.ParquetFile(p).read().to_pylist() for p in [*files, build / "bench.parquet"]}


@pytest.fixture(scope="module")
def builds(annotated, tmp_path_factory):
    """Builds of the rows in two stored orders, each with the default chunks and with chunks of 5 (spilled)."""
    from fifa.pipelines.build import build

    d = tmp_path_factory.mktemp("order")
    stored = {"a": _restored(annotated["ann"], d / "a", seed=1, n_shards=3)}
    stored["b"] = _restored(annotated["ann"], d / "b", seed=2, n_shards=5)
    out = {}
    for order, ann in stored.items():
        for chunk_rows in (4096, 5):
            build([ann], d / f"build-{order}-{chunk_rows}", build_config(chunk_rows=chunk_rows))
            out[order, chunk_rows] = _tables(d / f"build-{order}-{chunk_rows}")
    return out


@pytest.mark.parametrize("chunk_rows", [4096, 5])
def test_rows_do_not_depend_on_the_stored_order(builds, chunk_rows):
    a, b = builds["a", chunk_rows], builds["b", chunk_rows]
    assert set(a) == set(b) and "instruct/train.parquet" in a and "annotations/train.parquet" in a
    for name in a:
        assert len(a[name]) > 3 and a[name] == b[name], name


def test_annotation_records_come_in_sample_id_order(builds):
    for name in ("annotations/train.parquet", "annotations/test.parquet"):
        ids = [r["sample_id"] for r in builds["a", 5][name]]
        assert len(ids) > 3 and ids == sorted(ids), name
