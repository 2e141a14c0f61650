"""Reading and validating manifests (the annotator's input; see DESIGN.md "Manifest").

Formats: ``.parquet``, ``.csv`` (an empty field is null) and ``.jsonl``. Paths are resolved
against the manifest's own folder unless absolute. Problems of the *file* (missing columns,
duplicate ids, bad labels) raise :class:`ManifestError`; problems of a *row's images* are the
annotator's business (the row fails with a code, the run goes on).

``fifa.pipelines.manifest`` re-exports this module (pipelines may import the annotator, not
the other way round) and adds writing helpers for importers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

REQUIRED = ("sample_id", "image_path", "label")
OPTIONAL = ("source_path", "method", "category", "group")
LABELS = ("real", "fake")
CATEGORIES = ("FS", "FR", "FE", "EFS", "real")

MANIFEST_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("image_path", pa.string()),
        ("source_path", pa.string()),
        ("label", pa.string()),
        ("method", pa.string()),
        ("category", pa.string()),
        ("group", pa.string()),
    ]
)


class ManifestError(ValueError):
    """A manifest that cannot be used (reported to the user, exit code 2)."""


@dataclass
class ManifestRow:
    sample_id: str
    image_path: str  # absolute
    label: str
    source_path: str | None = None  # absolute or None
    method: str | None = None
    category: str | None = None
    group: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _null(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and v.strip() == "":
        return None
    return v


def read_table(path: str | Path) -> pa.Table:
    """The manifest file as an Arrow table (no validation)."""
    p = Path(path)
    if not p.is_file():
        raise ManifestError(f"manifest not found: {p}")
    suf = p.suffix.lower()
    try:
        if suf == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(p)
        if suf == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(
                p, convert_options=pcsv.ConvertOptions(strings_can_be_null=True, column_types={
                    c: pa.string() for c in REQUIRED + OPTIONAL})
            )
        if suf in (".jsonl", ".ndjson", ".json"):
            rows = []
            with p.open("r", encoding="utf-8") as f:
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except ValueError as e:
                        raise ManifestError(f"{p}:{i}: not valid JSON ({e})") from None
                    if not isinstance(obj, dict):
                        raise ManifestError(f"{p}:{i}: each line must be a JSON object")
                    rows.append(obj)
            return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.string()) for c in REQUIRED})
    except ManifestError:
        raise
    except (pa.ArrowInvalid, OSError) as e:
        raise ManifestError(f"cannot read manifest {p}: {e}") from None
    raise ManifestError(f"unsupported manifest format {suf!r} (use .parquet, .csv or .jsonl)")


def read_manifest(path: str | Path, extra_columns: Iterable[str] = ()) -> list[ManifestRow]:
    """Read and validate a manifest; paths become absolute."""
    p = Path(path)
    table = read_table(p)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ManifestError(f"manifest {p} lacks required column(s): {', '.join(missing)}")
    base = p.resolve().parent
    cols = {c: table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
            for c in REQUIRED + OPTIONAL}
    rows: list[ManifestRow] = []
    seen: set[str] = set()
    for i in range(table.num_rows):
        sid = _null(cols["sample_id"][i])
        if sid is None:
            raise ManifestError(f"manifest {p}: row {i + 1} has no sample_id")
        sid = str(sid)
        if sid in seen:
            raise ManifestError(f"manifest {p}: duplicate sample_id {sid!r}")
        seen.add(sid)
        label = _null(cols["label"][i])
        if label not in LABELS:
            raise ManifestError(f"manifest {p}: sample {sid!r} has label {label!r}, expected one of {LABELS}")
        img = _null(cols["image_path"][i])
        if img is None:
            raise ManifestError(f"manifest {p}: sample {sid!r} has no image_path")
        src = _null(cols["source_path"][i])
        cat = _null(cols["category"][i])
        if cat is not None and cat not in CATEGORIES:
            raise ManifestError(f"manifest {p}: sample {sid!r} has category {cat!r}, expected one of {CATEGORIES}")
        rows.append(
            ManifestRow(
                sample_id=sid,
                image_path=_resolve(base, img),
                label=label,
                source_path=_resolve(base, src) if src is not None else None,
                method=_null(cols["method"][i]),
                category=cat if cat is not None else ("real" if label == "real" else None),
                group=None if _null(cols["group"][i]) is None else str(cols["group"][i]),
            )
        )
    return rows


def _resolve(base: Path, value: Any) -> str:
    q = Path(str(value)).expanduser()
    return str(q if q.is_absolute() else (base / q))
