"""Manifest reading/validation (shared with importers) and writing.

Reading lives in :mod:`fifa.annotator.manifest` (the annotator consumes manifests and may not
import pipelines); it is re-exported here, plus :func:`write_manifest` for importers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pyarrow as pa

from fifa.annotator.manifest import (  # noqa: F401 (re-exports)
    CATEGORIES,
    LABELS,
    MANIFEST_SCHEMA,
    OPTIONAL,
    REQUIRED,
    ManifestError,
    ManifestRow,
    read_manifest,
    read_table,
)


def validate_rows(rows: Iterable[Mapping]) -> list[dict]:
    """Check rows (dicts with the manifest columns) before writing; returns them normalised."""
    out, seen = [], set()
    for i, r in enumerate(rows, 1):
        sid = r.get("sample_id")
        if not sid:
            raise ManifestError(f"row {i}: no sample_id")
        if sid in seen:
            raise ManifestError(f"duplicate sample_id {sid!r}")
        seen.add(sid)
        if r.get("label") not in LABELS:
            raise ManifestError(f"sample {sid!r}: label {r.get('label')!r} not in {LABELS}")
        if not r.get("image_path"):
            raise ManifestError(f"sample {sid!r}: no image_path")
        cat = r.get("category")
        if cat is not None and cat not in CATEGORIES:
            raise ManifestError(f"sample {sid!r}: category {cat!r} not in {CATEGORIES}")
        out.append({k: (None if r.get(k) is None else str(r.get(k))) for k in MANIFEST_SCHEMA.names} | {
            k: v for k, v in r.items() if k not in MANIFEST_SCHEMA.names})
    return out


def write_manifest(rows: Iterable[Mapping], path: str | Path) -> Path:
    """Write a manifest (.parquet, .csv or .jsonl by suffix) with the standard columns first."""
    import json

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rows = validate_rows(rows)
    base = {k: [r.get(k) for r in rows] for k in MANIFEST_SCHEMA.names}
    table = pa.Table.from_pydict(base, schema=MANIFEST_SCHEMA)
    suf = p.suffix.lower()
    if suf == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, p)
    elif suf == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, p)
    elif suf in (".jsonl", ".ndjson"):
        with p.open("w", encoding="utf-8") as f:
            for r in table.to_pylist():
                f.write(json.dumps(r) + "\n")
    else:
        raise ManifestError(f"unsupported manifest format {suf!r}")
    return p
