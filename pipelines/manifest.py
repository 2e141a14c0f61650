"""Manifest reading/validation (shared with importers) and writing.

Reading lives in :mod:`fifa.annotator.manifest` (the annotator consumes manifests and may not
import pipelines); it is re-exported here, plus :func:`write_manifest` for importers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

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
from fifa.core.atomic import atomic_path

#: Optional column: every identity an image shows, ``|``-separated (FF++ fake ``000_003``:
#: ``"000|003"``); null means the group alone. Builders union groups that share an identity.
IDENTITIES = "identities"
IDENTITY_SEP = "|"


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
        ids = r.get(IDENTITIES)
        if ids is not None and (not isinstance(ids, str) or not all(ids.split(IDENTITY_SEP))):
            raise ManifestError(f"sample {sid!r}: identities {ids!r} must be names joined by {IDENTITY_SEP!r}")
        out.append(
            {k: (None if r.get(k) is None else str(r.get(k))) for k in MANIFEST_SCHEMA.names}
            | {k: v for k, v in r.items() if k not in MANIFEST_SCHEMA.names}
        )
    return out


def join_identities(names: Iterable[str | None]) -> str | None:
    """The ``identities`` value of an image showing ``names`` (order kept, duplicates dropped)."""
    out = list(dict.fromkeys(n for n in names if n))
    return IDENTITY_SEP.join(out) if out else None


def manifest_table(rows: Iterable[Mapping]) -> pa.Table:
    """Validated rows as a table: the standard columns, then ``identities`` and any other
    columns the rows carry (e.g. ``video``, ``frame``), in order of first appearance."""
    rows = validate_rows(rows)
    base = {k: [r.get(k) for r in rows] for k in MANIFEST_SCHEMA.names}
    table = pa.Table.from_pydict(base, schema=MANIFEST_SCHEMA)
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in MANIFEST_SCHEMA.names))
    if IDENTITIES in extra:
        extra.remove(IDENTITIES)
        table = table.append_column(
            pa.field(IDENTITIES, pa.string()), pa.array([r.get(IDENTITIES) for r in rows], pa.string())
        )
    for k in extra:
        table = table.append_column(k, pa.array([r.get(k) for r in rows]))
    return table


def write_manifest(rows: Iterable[Mapping], path: str | Path) -> Path:
    """Write a manifest (.parquet, .csv or .jsonl by suffix) with the standard columns first,
    then ``identities`` when rows have it, then any other columns they carry."""
    import json

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    table = manifest_table(rows)
    suf = p.suffix.lower()
    if suf not in (".parquet", ".csv", ".jsonl", ".ndjson"):
        raise ManifestError(f"unsupported manifest format {suf!r} (use .parquet, .csv or .jsonl)")
    with atomic_path(p) as tmp:  # readers never see half a manifest
        if suf == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        elif suf == ".csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, tmp)
        else:
            with tmp.open("w", encoding="utf-8") as f:
                for r in table.to_pylist():
                    f.write(json.dumps(r) + "\n")
    return p
