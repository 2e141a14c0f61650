"""Reading and validating manifests (the annotator's input; see DESIGN.md "Manifest").

Formats: ``.parquet``, ``.csv`` (an empty field is null) and ``.jsonl``. Paths are resolved
against the manifest's own folder unless absolute. Problems of the *file* (missing columns,
duplicate ids, bad labels) raise :class:`ManifestError`; problems of a *row's images* are the
annotator's business (the row fails with a code, the run goes on).

Data root (DESIGN "Manifest"): a path that resolves outside the data root (the manifest's folder,
or ``data_root``) through ``..``, an absolute path or a symlink is *refused for that row*: the
row carries ``refused`` (``path_outside_root: ...``), fails with that code, and its files are
never opened (a shared manifest must not make the annotator read, or upload to a paid API,
files it was never meant to see). ``allow_outside_root=True`` lifts the rule.

Optional ``identities``: every identity the image shows, ``|``-separated (an FF++ fake
``000_003`` shows 000 and 003); builders keep all of them in one split.

``fifa.pipelines.manifest`` re-exports this module (pipelines may import the annotator, not
the other way round) and adds writing helpers for importers.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from fifa.core.errors import EXIT_USAGE, FifaError

REQUIRED = ("sample_id", "image_path", "label")
OPTIONAL = ("source_path", "method", "category", "group", "identities")
#: provenance passed through to the annotation rows (importers write them): source collection, video, frame index
PROVENANCE = ("collection", "video", "frame")
LABELS = ("real", "fake")
MAX_CELL_CHARS = 65_536  # an id or a path; a larger cell is a broken or hostile file
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
        ("identities", pa.string()),
    ]
)


class ManifestError(FifaError, ValueError):
    """A manifest that cannot be used (reported to the user, exit code 2)."""

    exit_code = EXIT_USAGE


@dataclass
class ManifestRow:
    sample_id: str
    image_path: str  # absolute
    label: str
    source_path: str | None = None  # absolute or None
    method: str | None = None
    category: str | None = None
    group: str | None = None
    identities: str | None = None  # "|"-separated identities shown (default: the group alone)
    collection: str | None = None  # source collection (e.g. FaceForensics++), for provenance
    video: str | None = None  # video the frame was taken from (importers of video collections)
    frame: int | None = None  # frame index in that video
    refused: str | None = None  # why the row's files may not be read (path outside the data root)

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
                p,
                convert_options=pcsv.ConvertOptions(
                    strings_can_be_null=True, column_types={c: pa.string() for c in REQUIRED + OPTIONAL + PROVENANCE}
                ),
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


def read_manifest(
    path: str | Path, *, data_root: str | Path | None = None, allow_outside_root: bool = False
) -> list[ManifestRow]:
    """Read and validate a manifest; paths become absolute, rows reaching outside the data root are refused."""
    p = Path(path)
    table = read_table(p)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ManifestError(f"manifest {p} lacks required column(s): {', '.join(missing)}")
    base = p.resolve().parent
    root = None if allow_outside_root else Path(data_root or base).resolve()
    if root is not None and not root.is_dir():
        raise ManifestError(f"data root is not a folder: {root}")
    cols = {
        c: table.column(c).to_pylist() if c in table.column_names else [None] * table.num_rows
        for c in REQUIRED + OPTIONAL + PROVENANCE
    }
    rows: list[ManifestRow] = []
    seen: set[str] = set()
    for i in range(table.num_rows):
        row = _row(p, i, {c: _null(v[i]) for c, v in cols.items()}, base, seen)
        if root is not None:
            row.refused = _outside_root(row, root)
        rows.append(row)
    return rows


def _row(p: Path, i: int, v: dict, base: Path, seen: set[str]) -> ManifestRow:
    for c, x in v.items():
        if isinstance(x, str) and len(x) > MAX_CELL_CHARS:
            raise ManifestError(
                f"manifest {p}: row {i + 1}, column {c!r} holds {len(x)} characters "
                f"(at most {MAX_CELL_CHARS}): not an id or a path"
            )
    if v["sample_id"] is None:
        raise ManifestError(f"manifest {p}: row {i + 1} has no sample_id")
    sid = str(v["sample_id"])
    if sid in seen:
        raise ManifestError(f"manifest {p}: duplicate sample_id {sid!r}")
    seen.add(sid)
    label = v["label"]
    if label not in LABELS:
        raise ManifestError(f"manifest {p}: sample {sid!r} has label {label!r}, expected one of {LABELS}")
    if v["image_path"] is None:
        raise ManifestError(f"manifest {p}: sample {sid!r} has no image_path")
    cat = v["category"]
    if cat is not None and cat not in CATEGORIES:
        raise ManifestError(f"manifest {p}: sample {sid!r} has category {cat!r}, expected one of {CATEGORIES}")
    text = lambda x: None if x is None else str(x)  # noqa: E731
    return ManifestRow(
        sample_id=sid,
        image_path=_resolve(base, v["image_path"]),
        label=label,
        source_path=_resolve(base, v["source_path"]) if v["source_path"] is not None else None,
        method=text(v["method"]),
        category=cat if cat is not None else ("real" if label == "real" else None),
        group=text(v["group"]),
        identities=text(v["identities"]),
        collection=text(v["collection"]),
        video=text(v["video"]),
        frame=_frame(p, sid, v["frame"]),
    )


def _frame(p: Path, sid: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        f = float(value)
        if f != int(f) or f < 0:
            raise ValueError
        return int(f)
    except (TypeError, ValueError):
        raise ManifestError(
            f"manifest {p}: sample {sid!r} has frame {value!r}, expected a frame index (an integer >= 0)"
        ) from None


def _resolve(base: Path, value: Any) -> str:
    q = Path(str(value)).expanduser()
    return str(q if q.is_absolute() else (base / q))


def _outside_root(row: ManifestRow, root: Path) -> str | None:
    """``path_outside_root: ...`` when a path of the row resolves (symlinks followed) outside ``root``."""
    for what, path in (("image_path", row.image_path), ("source_path", row.source_path)):
        if path is None:
            continue
        try:
            real = Path(path).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            return f"path_outside_root: {what} cannot be resolved"
        if not real.is_relative_to(root):
            lexical = Path(os.path.normpath(path))
            how = (
                "leaves the data root through a symlink" if lexical.is_relative_to(root) else "is outside the data root"
            )
            return f"path_outside_root: {what} {how} {root} (pass --data-root or --allow-outside-root to allow it)"
    return None
