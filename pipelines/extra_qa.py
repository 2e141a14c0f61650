"""``fifa-data build --extra-qa FILE``: question/answer pairs shipped with an imported collection (DD-VQA).

Each file follows :data:`fifa.core.schemas.EXTRA_QA_SCHEMA` (``<manifest stem>.qa.parquet``,
written by an importer). Pairs of kept samples (annotation ok, not rejected) become ``rq_name`` /
``toe`` rows in the sample's split; pairs whose sample is not kept, of another task, or repeated
are counted, not fatal. In the test split they join the bench as they are (outside balancing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from fifa.core.errors import FifaError
from fifa.core.schemas import EXTRA_QA_SCHEMA

from . import rand
from .tasks.common import PROVENANCE, SAMPLE_COLUMNS, TaskContext, finish, two_turns

EXTRA_TASKS = ("rq_name", "toe")


class ExtraQAError(FifaError, ValueError):
    pass


@dataclass
class ExtraQA:
    rows: pl.DataFrame | None
    summary: dict


def read_extra_qa(path: str | Path) -> pl.DataFrame:
    p = Path(path)
    try:
        names = pq.read_schema(p).names
    except (OSError, Exception) as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise ExtraQAError(f"cannot read extra QA file {p}: {e}") from None
    need = ("sample_id", "task", "question", "answer")
    missing = [c for c in need if c not in names]
    if missing:
        raise ExtraQAError(f"extra QA file {p} lacks column(s) {', '.join(missing)} (expected {EXTRA_QA_SCHEMA.names})")
    df = pl.from_arrow(pq.read_table(p, columns=[c for c in EXTRA_QA_SCHEMA.names if c in names]))
    for c in ("node_id", "origin"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    return df.with_columns(pl.lit(p.name).alias("file"))


def extra_qa_rows(files: Sequence[str | Path], kept: pl.DataFrame, ctx: TaskContext) -> ExtraQA:
    frames = [read_extra_qa(f) for f in files]
    qa = pl.concat(frames, how="vertical_relaxed")
    total = qa.height
    bad_task = qa.filter(~pl.col("task").is_in(list(EXTRA_TASKS)) | ~pl.col("task").is_in(list(ctx.tasks)))
    empty = qa.filter(
        pl.col("question").fill_null("").str.strip_chars().eq("")
        | pl.col("answer").fill_null("").str.strip_chars().eq("")
    )
    qa = qa.join(bad_task.select("sample_id", "question"), on=["sample_id", "question"], how="anti").join(
        empty.select("sample_id", "question"), on=["sample_id", "question"], how="anti"
    )
    samples = kept.select(
        "sample_id", "label", "method", "category", "group", "split", "image_rel", *PROVENANCE
    ).with_columns(
        pl.struct(pl.lit(None, dtype=pl.Binary).alias("bytes"), pl.col("image_rel").alias("path")).alias("image")
    )
    matched = qa.join(samples, on="sample_id", how="inner")
    unmatched = qa.height - matched.height
    key = pl.concat_str([pl.col("origin").fill_null(""), pl.col("question"), pl.col("answer")], separator="\x1f")
    matched = matched.with_columns(key.alias("_key"))
    h = rand.string_hash(matched["_key"].to_list())
    matched = matched.with_columns(pl.Series("_hx", [f"{x:016x}"[:10] for x in h.tolist()]))
    dedup = matched.unique(["sample_id", "_hx"], keep="first", maintain_order=True)
    repeated = matched.height - dedup.height
    rows = None
    if dedup.height:
        f = dedup.select(*SAMPLE_COLUMNS, "task", "question", "answer", "_hx").with_columns(
            two_turns(pl.col("question").str.strip_chars(), pl.col("answer").str.strip_chars())
        )
        parts = [
            finish(f.filter(pl.col("task") == t), t, suffix=pl.lit("x") + pl.col("_hx"), cls=pl.lit("extra"))
            for t in EXTRA_TASKS
            if (f["task"] == t).any()
        ]
        rows = pl.concat(parts) if parts else None
    summary = {
        "files": [Path(x).name for x in files],
        "pairs": total,
        "used": 0 if rows is None else rows.height,
        "unmatched_sample": unmatched,
        "other_task": bad_task.height,
        "empty": empty.height,
        "repeated": repeated,
    }
    return ExtraQA(rows, summary)
