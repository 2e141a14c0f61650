"""``age`` (the annotator's grounded visible description with one mask per mark) and ``loc`` (one mask)."""

from __future__ import annotations

import polars as pl

from fifa.core import marks
from fifa.core.marks import MARK_PATTERN

from .common import RLE, TaskContext, fill, finish, pick, slim, two_turns

FAKE = pl.col("label") == "fake"
#: a fake whose artifact was measured (a source to compare with) and found
MEASURED = FAKE & pl.col("grounded") & (pl.col("mask_area").fill_null(0) > 0)


def _repair(text: str, segments: list[dict]) -> tuple[str, list[dict]]:
    """Keep the marks whose region matches the segments in order; unmark the others (rare: a mark without a
    mask). A kept segment takes the phrase of its mark (the visible text may word or case it differently)."""
    out, j, pos, kept = [], 0, 0, []
    for m in marks.find(text):
        out.append(text[pos : m.start])
        seg = segments[j] if j < len(segments) else None
        if seg is not None and seg["node_id"] == m.node_id:
            seg = dict(seg, phrase=m.phrase)
            out.append(text[m.start : m.end])
            kept.append(seg)
            j += 1
        else:
            out.append(m.phrase)
        pos = m.end
    out.append(text[pos:])
    return "".join(out), kept


def age_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    t = ctx.templates
    ctx.count("age_fake_without_measured_mask", chunk.filter(FAKE & ~MEASURED).height)
    f = slim(chunk, "grounded", "mask_area", "visible", "plain", "segments").filter(~FAKE | MEASURED)
    found = pl.col("visible").fill_null("").str.extract_all(MARK_PATTERN)
    f = f.with_columns(
        found.list.eval(pl.element().str.extract(MARK_PATTERN, 2)).alias("_ids"),
        pl.col("segments").list.eval(pl.element().struct.field("node_id")).alias("_sid"),
    )
    bad = pl.col("_ids") != pl.col("_sid")  # phrases come from the marks (visible wording), masks from segments
    f = f.with_columns(bad.fill_null(True).alias("_bad"))
    n_bad = int(f["_bad"].sum())
    if n_bad:
        ctx.count("age_marks_repaired", n_bad)
        fixed = [
            _repair(text or "", segs or []) if b else (text, segs)
            for text, segs, b in zip(f["visible"].to_list(), f["segments"].to_list(), f["_bad"].to_list())
        ]
        f = f.with_columns(
            pl.Series("visible", [x[0] for x in fixed], dtype=pl.String),
            pl.Series("segments", [x[1] for x in fixed], dtype=f.schema["segments"]),
        )
    answer = pl.when(FAKE).then(pl.col("visible")).otherwise(pl.col("plain"))
    segs = pl.col("segments").fill_null([])
    f = f.with_columns(pick(f, t.q("age"), "age/q", "_q"))
    f = f.with_columns(two_turns(pl.col("_q"), answer))
    masks = (
        pl.when(FAKE).then(segs.list.eval(pl.element().struct.field("mask"))).otherwise(pl.lit([], dtype=pl.List(RLE)))
    )
    phrases = (
        pl.when(FAKE)
        .then(
            pl.col("visible")
            .fill_null("")
            .str.extract_all(MARK_PATTERN)
            .list.eval(pl.element().str.extract(MARK_PATTERN, 1))
        )
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
    )
    ids = (
        pl.when(FAKE)
        .then(segs.list.eval(pl.element().struct.field("node_id")))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
    )
    return finish(f, "age", masks=masks, mask_phrases=phrases, mask_node_ids=ids)


def loc_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    t = ctx.templates
    ctx.count("loc_fake_without_measured_mask", chunk.filter(FAKE & ~MEASURED).height)
    f = slim(chunk, "grounded", "mask_area", "artifact_mask").filter(~FAKE | MEASURED)
    phrase = t.a("loc_phrase")
    mark = pl.lit(marks.mark(phrase, "artifact"))
    fake_a = pick(f, t.a("loc_fake"), "loc/a", "_af")
    real_a = pick(f, t.a("loc_real"), "loc/a", "_ar")
    f = f.with_columns(pick(f, t.q("loc"), "loc/q", "_q"), fake_a, real_a)
    answer = fill(pl.when(FAKE).then(pl.col("_af")).otherwise(pl.col("_ar")), mark=mark)
    f = f.with_columns(two_turns(pl.col("_q"), answer))
    one = pl.concat_list([pl.col("artifact_mask")])
    return finish(
        f,
        "loc",
        masks=one,
        mask_phrases=pl.lit([phrase]),
        mask_node_ids=pl.lit(["artifact"]),
        bench_masks=pl.when(FAKE).then(one).otherwise(pl.lit([], dtype=pl.List(RLE))),
    )
