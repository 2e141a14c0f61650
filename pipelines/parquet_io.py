"""Deterministic Parquet and JSON writing (same data -> same bytes).

pyarrow writes no timestamps; the writer options are fixed here so every file of a build or a
release is written the same way (compression, dictionary, statistics, page version), and JSON
is written with sorted keys and a trailing newline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.atomic import write_text_atomic

WRITER_OPTIONS = dict(
    compression="zstd",
    compression_level=3,
    use_dictionary=True,
    write_statistics=True,
    data_page_version="1.0",
    version="2.6",
)


def writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    path.parent.mkdir(parents=True, exist_ok=True)
    return pq.ParquetWriter(str(path), schema, **WRITER_OPTIONS)


def write_table(table: pa.Table, path: Path, row_group_size: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path), row_group_size=row_group_size, **WRITER_OPTIONS)


def write_json(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    write_text_atomic(path, text)


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns in ``schema``'s order and types (polars writes large types and views)."""
    cols = []
    for field in schema:
        col = table.column(field.name)
        cols.append(col.cast(field.type) if col.type != field.type else col)
    return pa.Table.from_arrays(cols, schema=schema)
