"""Pass 2 of a build (:func:`fifa.pipelines.build.build`): the kept annotations, chunk by chunk, become every
task's rows, streamed into the staging folder (instruction rows, bench questions, annotation records), with the
refusals of answers that mention the source image."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa

from fifa.core.schemas import AGE_RECORD_SCHEMA, INSTRUCT_SCHEMA, PROVENANCE

from .bench_rows import BenchCollector, to_instruct
from .build import BuildConfig, BuildError  # build.py imports this module inside build(): no import cycle
from .extra_qa import extra_qa_rows
from .inputs import iter_kept
from .parquet_io import to_schema, writer
from .stats import StatsCollector


def stream_rows(
    inputs: list,
    kept: pl.DataFrame,
    ctx,
    conv,
    config: BuildConfig,
    tmp: Path,
    stats: StatsCollector,
    bench: BenchCollector,
    warnings: list[str],
    progress: bool,
):
    """Pass 2: the rows of every task (and the extra QA), streamed into the staging folder; the extra QA or None.
    The staging folder is removed when a row is refused (:class:`BuildError`)."""
    from .tasks import generate, prepare_chunk

    iw = {s: writer(tmp / "instruct" / f"{s}.parquet", INSTRUCT_SCHEMA) for s in ("train", "validation")}
    aw = {s: writer(tmp / "annotations" / f"{s}.parquet", AGE_RECORD_SCHEMA) for s in ("train", "validation", "test")}
    try:
        for table, sub in _progress(
            iter_kept(inputs, kept, config.chunk_rows, ("mask_fraction", "explainer", "tree_version")),
            kept.height,
            progress,
        ):
            extra = {
                "split": sub["split"],
                "h": sub["h"],
                "image_rel": sub["image_rel"],
                "identities": sub["identities"],
                **{c: sub[c] for c in PROVENANCE},
            }
            chunk = prepare_chunk(_fill_artifact_masks(table), extra)
            _write_records(chunk, aw)
            rows = generate(chunk, ctx)
            if rows is None:
                continue
            _check_image_only(rows)
            _write_rows(rows, stats, iw, bench)
        xqa = extra_qa_rows(config.extra_qa, kept, ctx) if config.extra_qa else None
        if xqa is not None and xqa.rows is not None and xqa.rows.height:
            xqa = _drop_source_mentions(xqa, warnings)
        if xqa is not None and xqa.rows is not None and xqa.rows.height:
            _write_rows(xqa.rows, stats, iw, bench, balance=False)
    except BuildError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for w in (*iw.values(), *aw.values()):
            w.close()
        if conv is not None:
            conv.close()
    return xqa


def _write_rows(
    rows: pl.DataFrame, stats: StatsCollector, iw: dict, bench: BenchCollector, balance: bool = True
) -> None:
    """Count the rows, write the train/validation ones as instruction rows, hand the test ones to the bench."""
    stats.add(rows)
    for s in ("train", "validation"):
        part = rows.filter(pl.col("split") == s)
        if part.height:
            iw[s].write_table(to_instruct(part))
    bench.add(rows.filter(pl.col("split") == "test"), balance=balance)


def _check_image_only(rows: pl.DataFrame) -> None:
    """Refuse answers that mention the source image or a figure measured against it (a model sees only the image)."""
    from .tasks.image_only import describe, source_mentions

    hits = source_mentions(rows)
    if hits.height:
        raise BuildError(
            f"{hits.height} answer(s) of one chunk mention the source image or a figure measured against it "
            f"(DESIGN.md 'Answers describe the image'), e.g. {describe(hits)}. Answers come from the annotator's "
            "visible description: annotations made before it (no visible_explanation column) need "
            "`fifa-annotate run` again; custom --answers templates must not compare with the source or use {pct}"
        )


def _drop_source_mentions(xqa, warnings: list[str]):
    """Imported QA pairs are not ours to rewrite: those that mention the source are left out and counted."""
    from .tasks.image_only import describe, source_mentions

    hits = source_mentions(xqa.rows)
    if hits.height:
        xqa.rows = xqa.rows.filter(~pl.col("id").is_in(hits["id"].implode()))
        xqa.summary["mentions_source"] = hits.height
        warnings.append(
            f"extra QA: {hits.height} imported answer(s) mention the source image and are left out, "
            f"e.g. {describe(hits, 2)}"
        )
    return xqa


def _fill_artifact_masks(table: pa.Table) -> pa.Table:
    """Real images without an artifact mask get the empty mask of their size (one per distinct size)."""
    from fifa.core import rle

    col = table.column("artifact_mask")
    if col.null_count == 0:
        return table
    hs = table.column("image_height").to_pylist()
    ws = table.column("image_width").to_pylist()
    vals = col.to_pylist()
    cache: dict = {}
    filled = [
        v if v is not None or h is None or w is None else cache.setdefault((h, w), rle.empty(h, w))
        for v, h, w in zip(vals, hs, ws)
    ]
    return table.set_column(
        table.schema.get_field_index("artifact_mask"), "artifact_mask", pa.array(filled, type=col.type)
    )


def _write_records(chunk: pl.DataFrame, writers: dict) -> None:
    cols = AGE_RECORD_SCHEMA.names
    for s, w in writers.items():
        part = chunk.filter(pl.col("split") == s)
        if not part.height:
            continue
        part = part.with_columns(*(pl.lit(None).alias(c) for c in cols if c not in part.columns))
        w.write_table(to_schema(part.select(cols).to_arrow(), AGE_RECORD_SCHEMA))


def _progress(it, total: int, enabled: bool):
    if not enabled:
        yield from it
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("build"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("rows", total=total)
        for table, sub in it:
            yield table, sub
            bar.advance(task, sub.height)
