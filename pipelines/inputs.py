"""Annotation folders as build input: shards, ``run.json``, the row index and the selection.

Pass 1 of a build reads a few small columns of every shard (the index); the selection leaves
out failed/skipped rows, rows a review rejected, later duplicates of a ``sample_id`` and rows
with an unusable label, and counts each reason. Pass 2 (:func:`iter_kept`) streams the kept
rows in chunks, in ``sample_id`` order (not the order the annotator's workers stored them in).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from fifa.annotator.store import ANN_DIR
from fifa.core.errors import FifaError

from .buildinfo import without_machine_paths

INDEX_COLUMNS = (
    "sample_id",
    "status",
    "error_code",
    "label",
    "method",
    "category",
    "group",
    "identities",
    "collection",
    "video",
    "frame",
    "image_path",
    "tree_version",
    "explainer",
    "grounded",
    "mask_area",
    "artifact_regions",
)
ROW_COLUMNS = (
    "sample_id",
    "label",
    "method",
    "category",
    "group",
    "explanation",
    "visible_explanation",
    "segments",
    "artifact_mask",
    "artifact_regions",
    "regions",
    "grounded",
    "mask_area",
    "image_height",
    "image_width",
)
RECORD_COLUMNS = ("mask_fraction", "explainer", "tree_version")


class InputError(FifaError, ValueError):
    """An annotation folder that cannot be used."""


@dataclass
class AnnotationInput:
    root: Path
    name: str
    shards: list[Path]
    run: dict = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike) -> AnnotationInput:
        p = Path(root)
        ann = p / ANN_DIR
        shards = sorted(ann.glob("part-*.parquet")) if ann.is_dir() else []
        if not shards:
            raise InputError(f"{p}: no annotation shards (expected {ANN_DIR}/part-*.parquet, as fifa-annotate writes)")
        run = {}
        if (p / "run.json").is_file():
            try:
                run = json.loads((p / "run.json").read_text("utf-8"))
            except ValueError:
                run = {}
        return cls(p, p.resolve().name, shards, run)

    def settings(self) -> dict:
        """The annotator settings worth recording (no times, no machine, no key)."""
        keep = ("tool", "version", "explainer", "config", "manifest_rows", "counts", "cost_usd_total", "tokens_total")
        return without_machine_paths({k: self.run.get(k) for k in keep if k in self.run})


def read_index(inputs: list[AnnotationInput]) -> pl.DataFrame:
    """One row per stored annotation row: ``src, file, row`` plus the INDEX_COLUMNS present."""
    frames = []
    for s, inp in enumerate(inputs):
        for f, shard in enumerate(inp.shards):
            pf = pq.ParquetFile(shard)  # (pq.read_table would import pyarrow.dataset and pandas: seconds)
            names = pf.schema_arrow.names
            missing = [c for c in ("sample_id", "status", "label") if c not in names]
            if missing:
                raise InputError(f"{shard}: not an annotation shard (no {', '.join(missing)})")
            t = pf.read(columns=[c for c in INDEX_COLUMNS if c in names])
            df = pl.from_arrow(t)
            if "artifact_regions" in df.columns:
                df = df.with_columns(pl.col("artifact_regions").list.len().fill_null(0).alias("n_regions")).drop(
                    "artifact_regions"
                )
            frames.append(
                df.with_columns(pl.lit(s).alias("src"), pl.lit(f).alias("file"), pl.int_range(pl.len()).alias("row"))
            )
    df = pl.concat(frames, how="diagonal_relaxed")
    for c, dt in (
        ("identities", pl.String),
        ("grounded", pl.Boolean),
        ("mask_area", pl.Int64),
        ("n_regions", pl.UInt32),
        ("group", pl.String),
        ("method", pl.String),
        ("category", pl.String),
        ("error_code", pl.String),
        ("tree_version", pl.String),
        ("explainer", pl.String),
        ("collection", pl.String),
        ("video", pl.String),
        ("frame", pl.Int64),
    ):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dt).alias(c))
    return df.with_row_index("gidx")


@dataclass
class Selection:
    kept: pl.DataFrame
    left_out: dict
    duplicate_ids: list[str]
    review: dict | None = None


def select(index: pl.DataFrame, rejected: set[str] | None = None) -> Selection:
    """Kept rows (ok, not rejected, first of each sample_id, label real|fake) and what was left out, by reason."""
    left: dict = {}
    status = index.group_by("status").len().sort("status")
    not_ok = index.filter(pl.col("status") != "ok")
    for st, n in status.iter_rows():
        if st != "ok":
            left[str(st)] = int(n)
    codes = not_ok.group_by("error_code").len().sort("error_code")
    if codes.height:
        left["error_codes"] = {str(c): int(n) for c, n in codes.iter_rows()}
    f = index.filter(pl.col("status") == "ok")
    if rejected:
        rej = f.filter(pl.col("sample_id").is_in(sorted(rejected)))
        if rej.height:
            left["rejected_by_review"] = rej.height
        f = f.filter(~pl.col("sample_id").is_in(sorted(rejected)))
    bad = f.filter(~pl.col("label").is_in(["real", "fake"]))
    if bad.height:
        left["bad_label"] = bad.height
    f = f.filter(pl.col("label").is_in(["real", "fake"]))
    first = f.sort("gidx").unique("sample_id", keep="first", maintain_order=True)
    dups = f.filter(~pl.col("gidx").is_in(first["gidx"].implode()))
    if dups.height:
        left["duplicate_sample_id"] = dups.height
    return Selection(first.sort("gidx"), left, sorted(dups["sample_id"].unique().to_list()))


def image_root(paths: pl.Series, given: str | None = None) -> Path:
    """The folder image paths are stored relative to: ``given`` or the common folder of all images."""
    if given:
        return Path(given).resolve()
    dirs = paths.drop_nulls().str.replace(r"/[^/]*$", "").unique().to_list()
    if not dirs:
        return Path(".").resolve()
    return Path(os.path.commonpath(dirs))


def relative_paths(paths: pl.Series, root: Path) -> pl.Series:
    """Paths relative to ``root`` (POSIX); raises InputError naming the first path outside it."""
    prefix = str(root).rstrip("/") + "/"
    rel = paths.str.strip_prefix(prefix)
    outside = paths.filter(paths.is_not_null() & (rel == paths))
    if outside.len():
        raise InputError(
            f"{outside.len()} image path(s) lie outside the image root {root}, e.g. {outside[0]} "
            "(pass a common --image-root)"
        )
    return rel


def iter_kept(
    inputs: list[AnnotationInput], kept: pl.DataFrame, chunk_rows: int, extra_columns: tuple[str, ...] = ()
) -> Iterator[tuple[pa.Table, pl.DataFrame]]:
    """(annotation rows, their kept-index rows) per chunk of at most ``chunk_rows``, in ``sample_id`` order.

    The annotator stores rows in the order its workers finished them, so the order of the shards' rows
    differs from run to run; a build (and what is trained on it) must not. The rows are read once in
    stored order and spread into chunks by their rank in ``sample_id`` order (spilled to a temporary folder
    when there is more than one chunk, so memory stays at one chunk), then each chunk is sorted."""
    by_id = kept.sort("sample_id")
    n_chunks = -(-by_id.height // chunk_rows)
    chunk_of = dict(zip(by_id["gidx"].to_list(), (np.arange(by_id.height) // chunk_rows).tolist()))
    with tempfile.TemporaryDirectory(prefix="fifa-build-chunks-") as spill:
        pieces = _spread(_iter_stored(inputs, kept, chunk_rows, extra_columns), chunk_of, Path(spill), n_chunks)
        for c in range(n_chunks):
            sub = by_id.slice(c * chunk_rows, chunk_rows)
            parts = [p if isinstance(p, pa.Table) else pq.ParquetFile(p).read() for p in pieces[c]]
            table = pa.concat_tables(parts, promote_options="default")  # older shards may lack a column
            at = {g: i for i, g in enumerate(table.column(_GIDX).to_pylist())}
            yield table.take(pa.array([at[g] for g in sub["gidx"].to_list()])).drop_columns([_GIDX]), sub


_GIDX = "__gidx"  # a stored row's index row, carried through the spill


def _spread(
    stored: Iterator[tuple[pa.Table, pl.DataFrame]], chunk_of: dict[int, int], spill: Path, n_chunks: int
) -> dict[int, list[pa.Table | Path]]:
    """The stored rows grouped by the chunk they belong to: in memory when there is one chunk, else as files."""
    pieces: dict[int, list[pa.Table | Path]] = {c: [] for c in range(n_chunks)}
    for k, (table, sub) in enumerate(stored):
        gidx = sub["gidx"].to_list()
        chunks = np.array([chunk_of[g] for g in gidx])
        table = table.append_column(_GIDX, pa.array(gidx, pa.int64()))
        for c in np.unique(chunks).tolist():
            part = table.filter(pa.array(chunks == c))
            if n_chunks == 1:
                pieces[c].append(part)
            else:
                path = spill / f"chunk-{c:06d}-{k:06d}.parquet"
                pq.write_table(part, path)
                pieces[c].append(path)
    return pieces


def _iter_stored(
    inputs: list[AnnotationInput], kept: pl.DataFrame, chunk_rows: int, extra_columns: tuple[str, ...]
) -> Iterator[tuple[pa.Table, pl.DataFrame]]:
    """(annotation rows, their kept-index rows) in stored order (folders as given, shards by name, rows as stored)."""
    for s, inp in enumerate(inputs):
        for f, shard in enumerate(inp.shards):
            sub = kept.filter((pl.col("src") == s) & (pl.col("file") == f)).sort("row")
            if not sub.height:
                continue
            pf = pq.ParquetFile(shard)
            cols = [c for c in (*ROW_COLUMNS, *extra_columns) if c in pf.schema_arrow.names]
            rows = sub["row"].to_numpy()
            offset = 0
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=cols):
                lo, hi = np.searchsorted(rows, [offset, offset + batch.num_rows])
                if hi > lo:
                    take = pa.array(rows[lo:hi] - offset)
                    yield pa.Table.from_batches([batch]).take(take), sub.slice(int(lo), int(hi - lo))
                offset += batch.num_rows
