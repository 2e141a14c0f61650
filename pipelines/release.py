"""``fifa-data release``: a build -> a Hugging Face dataset folder, checksummed and byte-reproducible.

Layout::

    README.md                                   dataset card (YAML ``configs:`` header, statistics, sources)
    MANIFEST.json                               sha256 and size of every other file
    release.json                                version, image mode, build settings (no machine paths)
    data/instruct/{train,validation}-0000K-of-0000N.parquet
    data/bench/test-0000K-of-0000N.parquet
    data/annotations/{train,validation,test}-0000K-of-0000N.parquet

Shards are cut by bytes (``max_shard_bytes``, measured on fixed 1,000-row units, so the cut is
a function of the data). ``images="reference"`` keeps ``image.path`` relative to the image root
the card names; ``images="embed"`` stores the bytes (the ``datasets`` Image struct) and marks the
column as an ``Image`` feature in the Parquet metadata. Same build and options -> same bytes.
A split without rows (a build of fewer than three split units) is left out: no file, no entry in the
card's ``configs:`` (a config left without splits is left out whole), listed under ``empty_splits`` in
``release.json`` and named in the card.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.atomic import clean_stale, staging_dir, swap_folder
from fifa.core.errors import EXIT_USAGE, FifaError
from fifa.core.schemas import AGE_RECORD_SCHEMA, BENCH_SCHEMA, INSTRUCT_SCHEMA

from .buildinfo import build_image_root, without_machine_paths
from .parquet_io import WRITER_OPTIONS, sha256_file, write_json

log = logging.getLogger(__name__)

RELEASE_FORMAT = "fifa-release/1"
#: config -> (split -> build files glob, schema)
CONFIGS = {
    "instruct": ({"train": "instruct/train*.parquet", "validation": "instruct/validation*.parquet"}, INSTRUCT_SCHEMA),
    "bench": ({"test": "bench.parquet"}, BENCH_SCHEMA),
    "annotations": ({s: f"annotations/{s}*.parquet" for s in ("train", "validation", "test")}, AGE_RECORD_SCHEMA),
}
UNIT_ROWS = 1000
#: What a shard file holds beyond its rows' bytes, reserved when planning cuts: the footer (schema with the
#: ``datasets`` features metadata) per file, and page headers / length prefixes per unit (a row group).
FILE_OVERHEAD_BYTES = 64 * 1024
UNIT_OVERHEAD_BYTES = 4 * 1024


class ReleaseError(FifaError, ValueError):
    """A release that cannot be made as asked (user mistake: exit 2)."""

    exit_code = EXIT_USAGE


@dataclass
class ReleaseConfig:
    version: str
    images: str = "reference"  # reference | embed
    max_shard_bytes: int = 256 * 1024 * 1024
    date: str | None = None  # written into the card when given (no clock is read)
    sources: str | None = None  # extra sources YAML
    title: str = "FiFa-Instruct"
    unit_rows: int = UNIT_ROWS  # rows per sizing unit (shards never cut a unit)


@dataclass
class ReleaseSummary:
    out: str
    files: dict = field(default_factory=dict)  # relpath -> sha256
    rows: dict = field(default_factory=dict)  # config -> split -> rows
    empty: dict = field(default_factory=dict)  # config -> splits left out because they have no row


def hf_features_metadata(schema: pa.Schema, embed: bool) -> dict | None:
    """``{b"huggingface": ...}`` schema metadata marking ``image`` as an Image feature (needs ``datasets``)."""
    if not embed:
        return None
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is part of the test and train extras
        log.warning("the datasets library is not installed: the image column is not marked as an Image feature")
        return None
    feats = datasets.Features.from_arrow_schema(schema)
    feats["image"] = datasets.Image()
    return {b"huggingface": json.dumps({"info": {"features": feats.to_dict()}}, sort_keys=True).encode()}


def _iter_units(files: list[Path], unit_rows: int):
    """1,000-row units of the build files, in order (read twice: to plan the shards, then to write)."""
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=unit_rows):
            yield pa.Table.from_batches([batch])


def _unit_sizes(files: list[Path], unit_rows: int, embed: bool, image_root: Path) -> list[int]:
    sizes = []
    for t in _iter_units(files, unit_rows):
        size = t.nbytes
        if embed and "image" in t.column_names:
            for p in t.column("image").combine_chunks().field("path").to_pylist():
                size += (image_root / p).stat().st_size if p else 0
        sizes.append(size)
    return sizes


def _shards(sizes: list[int], limit: int) -> list[list[int]]:
    """Consecutive units per shard so that a shard's file stays within ``limit`` bytes (a single unit
    larger than that gets a shard of its own)."""
    limit = max(limit - FILE_OVERHEAD_BYTES, limit // 2)
    groups, cur, acc = [], [], 0
    for i, s in enumerate(sizes):
        s = int(s * 1.01) + UNIT_OVERHEAD_BYTES  # incompressible image bytes can grow a little
        if cur and acc + s > limit:
            groups.append(cur)
            cur, acc = [], 0
        cur.append(i)
        acc += s
    if cur or not groups:
        groups.append(cur)
    return groups


def _embed(t: pa.Table, image_root: Path) -> pa.Table:
    paths = t.column("image").combine_chunks().field("path").to_pylist()
    data = []
    for p in paths:
        f = image_root / p
        if not f.is_file():
            raise ReleaseError(
                f"image not found: {f} (image root {image_root}; is the build moved away from its images?)"
            )
        data.append(f.read_bytes())
    img = pa.StructArray.from_arrays(
        [pa.array(data, pa.binary()), pa.array(paths, pa.string())], names=["bytes", "path"]
    )
    return t.set_column(t.schema.get_field_index("image"), "image", img)


def release(build_dir: str | os.PathLike, out: str | os.PathLike, config: ReleaseConfig) -> ReleaseSummary:
    """Write the release folder (see the module docstring)."""
    from .card import render_card

    b, o = Path(build_dir), Path(out)
    _check_release(b, config)
    meta = json.loads((b / "build.json").read_text("utf-8"))
    stats = json.loads((b / "stats.json").read_text("utf-8"))
    image_root = build_image_root(b)
    if o.exists() and any(o.iterdir()) and not (o / "MANIFEST.json").is_file():
        raise ReleaseError(f"{o} exists and is not a release folder: choose another --out")
    tmp = staging_dir(o)
    clean_stale(o)  # what killed releases left (a swap cut between its renames is finished)
    shutil.rmtree(tmp, ignore_errors=True)
    summary = ReleaseSummary(str(o))
    layout, empty = _write_configs(b, tmp, config, image_root, summary)
    rel_meta = {
        "format": RELEASE_FORMAT,
        "version": config.version,
        "date": config.date,
        "images": config.images,
        "image_root_name": meta.get("image_root_name"),
        "configs": layout,
        "empty_splits": empty,
        "build": without_machine_paths({k: v for k, v in meta.items() if k not in ("image_root",)}),
    }
    write_json(rel_meta, tmp / "release.json")
    (tmp / "README.md").write_text(render_card(rel_meta, stats, config), "utf-8")
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    manifest = {
        "version": config.version,
        "algorithm": "sha256",
        "files": {str(p.relative_to(tmp)): {"sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files},
    }
    write_json(manifest, tmp / "MANIFEST.json")
    summary.empty = empty
    summary.files = {k: v["sha256"] for k, v in manifest["files"].items()}
    swap_folder(tmp, o)  # the old release stays whole until the new one is complete
    return summary


def _check_release(b: Path, config: ReleaseConfig) -> None:
    """Refuse a release that cannot be made as asked (not a build folder, bad --images or --version)."""
    if not (b / "build.json").is_file():
        raise ReleaseError(f"{b} is not a build folder (no build.json; make one with fifa-data build)")
    if config.images not in ("reference", "embed"):
        raise ReleaseError(f"--images must be reference or embed, got {config.images!r}")
    if not config.version or any(c in config.version for c in "/\\\n"):
        raise ReleaseError(f"invalid --version {config.version!r}")


def _write_configs(
    b: Path, tmp: Path, config: ReleaseConfig, image_root: Path, summary: ReleaseSummary
) -> tuple[dict, dict]:
    """Every non-empty split of every config as shards under ``tmp/data``: (layout, empty splits)."""
    embed = config.images == "embed"
    layout: dict = {}
    empty: dict = {}
    for name, (splits, schema) in CONFIGS.items():
        md = hf_features_metadata(schema, embed) if "image" in schema.names else None
        wschema = schema.with_metadata(md) if md else schema
        for split, pattern in splits.items():
            files = sorted(b.glob(pattern))
            if not sum(pq.ParquetFile(f).metadata.num_rows for f in files):
                empty.setdefault(name, []).append(split)  # an empty split is never registered (datasets refuses it)
                continue
            groups = _shards(_unit_sizes(files, config.unit_rows, embed, image_root), config.max_shard_bytes)
            rows = _write_shards(
                tmp, f"data/{name}/{split}", files, groups, config.unit_rows, wschema, image_root if embed else None
            )
            layout.setdefault(name, {})[split] = {"rows": rows, "shards": len(groups)}
            summary.rows.setdefault(name, {})[split] = rows
    return layout, empty


def _write_shards(
    tmp: Path,
    stem: str,
    files: list[Path],
    groups: list[list[int]],
    unit_rows: int,
    wschema: pa.Schema,
    embed_root: Path | None,
) -> int:
    """One split's shards ``{stem}-00000-of-0000n.parquet`` (images embedded when ``embed_root``): rows written."""
    n = len(groups)
    rows = 0
    units = _iter_units(files, unit_rows)
    for k, g in enumerate(groups):
        path = tmp / f"{stem}-{k:05d}-of-{n:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(str(path), wschema, **WRITER_OPTIONS) as w:
            for _ in g:
                t = next(units)
                if embed_root is not None and "image" in t.column_names:
                    t = _embed(t, embed_root)
                t = pa.Table.from_arrays(t.columns, schema=wschema)
                w.write_table(t)
                rows += t.num_rows
    return rows
