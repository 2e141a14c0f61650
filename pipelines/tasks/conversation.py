"""``fc``: multi-turn conversations about the image.

Offline (default): built columnar from the annotation: a verdict with its reason, where the
changes are (regions with their extent), and the concept tree's typical artifacts of the main
region (fakes) or why the image looks authentic (real images); two or three turns chosen by hash.
With ``--fc-llm openai`` the turns come from an OpenAI-compatible model through
:mod:`fifa.pipelines.conversation` (cached, retried, budgeted like the annotator).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .. import rand
from .common import TaskContext, fill, finish, join_names, pick, slim

FAKE = pl.col("label") == "fake"
MAX_REGIONS = 5
CUES = 3


def _msg(role: str, content: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(role).alias("role"), content.alias("content"))


def region_summary(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    """Per fake: ``regions_text`` ("the mouth (most of it) and the nose (part of it)"), ``top`` (region phrase),
    ``top_id``."""
    from .region import _extent

    f = chunk.filter(FAKE).select("sample_id", "artifact_regions", "regions")
    chosen = (
        f.select("sample_id", "artifact_regions")
        .explode("artifact_regions")
        .drop_nulls("artifact_regions")
        .rename({"artifact_regions": "node_id"})
        .with_columns(pl.int_range(pl.len()).over("sample_id").alias("order"))
        .filter(pl.col("order") < MAX_REGIONS)
    )
    reg = (
        f.select("sample_id", "regions")
        .explode("regions")
        .drop_nulls("regions")
        .unnest("regions")
        .select("sample_id", "node_id", "coverage")
    )
    c = chosen.join(reg, on=["sample_id", "node_id"], how="left")
    names = {n: ctx.region_phrase(n) for n in c["node_id"].unique().to_list()}
    c = c.with_columns(pl.col("node_id").replace_strict(names, default=None, return_dtype=pl.String).alias("name"))
    c = c.with_columns(
        pl.when(pl.col("coverage").is_null())
        .then(pl.col("name"))
        .otherwise(pl.col("name") + " (" + _extent(ctx) + ")")
        .alias("item")
    )
    return (
        c.group_by("sample_id")
        .agg(
            pl.col("item").sort_by("order").alias("regions_text"),
            pl.col("name").sort_by("order").first().alias("top"),
            pl.col("node_id").sort_by("order").first().alias("top_id"),
        )
        .with_columns(join_names(pl.col("regions_text")).alias("regions_text"))
    )


def fc_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    if ctx.conversations is not None and getattr(ctx.conversations, "remote", False):
        return _remote_rows(chunk, ctx)
    t = ctx.templates
    summary = region_summary(chunk, ctx)
    cues = {}
    for nid in summary["top_id"].drop_nulls().unique().to_list():
        if nid in ctx.tree and ctx.tree[nid].artifacts:
            cues[nid] = "; ".join(a.rstrip(".") for a in ctx.tree[nid].artifacts[:CUES])
    f = (
        slim(chunk, "plain", "reason")
        .join(summary, on="sample_id", how="left", maintain_order="left")
        .with_columns(pl.col("top_id").replace_strict(cues, default=None, return_dtype=pl.String).alias("cues"))
    )
    f = f.with_columns(
        pick(f, t.q("fc_open"), "fc/q1", "_q1"),
        pick(f, t.a("fc_verdict_fake"), "fc/a1", "_a1f"),
        pick(f, t.a("fc_verdict_real"), "fc/a1", "_a1r"),
        pick(f, t.q("fc_where"), "fc/q2", "_q2f"),
        pick(f, t.q("fc_real_followup"), "fc/q2", "_q2r"),
        pick(f, t.q("fc_cues"), "fc/q3", "_q3"),
        pick(f, t.a("fc_real_followup"), "fc/a2", "_a2r"),
        pl.Series("_third", rand.uniform(f["h"].to_numpy().astype(np.uint64), "fc/turns") < 0.5),
    )
    reason = pl.col("reason").fill_null("")
    rest = pl.col("plain").str.slice(pl.col("reason").str.len_chars()).str.strip_chars()
    a1 = fill(pl.when(FAKE).then(pl.col("_a1f")).otherwise(pl.col("_a1r")), reason=reason)
    q2 = pl.when(FAKE).then(pl.col("_q2f")).otherwise(pl.col("_q2r"))
    a2 = (
        pl.when(FAKE)
        .then(fill(t.a("fc_where"), regions=pl.col("regions_text").fill_null("the face")))
        .otherwise(pl.when(rest == "").then(pl.col("_a2r")).otherwise(rest))
    )
    q3 = fill(pl.col("_q3"), region=pl.col("top").fill_null(""))
    a3 = fill(t.a("fc_cues"), region=pl.col("top").fill_null(""), cues=pl.col("cues").fill_null(""))
    two = pl.concat_list([_msg("user", pl.col("_q1")), _msg("assistant", a1), _msg("user", q2), _msg("assistant", a2)])
    three = pl.concat_list([two, pl.concat_list([_msg("user", q3), _msg("assistant", a3)])])
    use3 = FAKE & pl.col("_third") & pl.col("cues").is_not_null()
    f = f.with_columns(pl.when(use3).then(three).otherwise(two).alias("turns"))
    return finish(f, "fc")


def _remote_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    """Turns from the model (one request per annotation, concurrent); failures and budget stops counted."""
    summary = region_summary(chunk, ctx)
    f = chunk.join(summary, on="sample_id", how="left", maintain_order="left")
    facts = f.select("sample_id", "label", "method", "category", "plain", "regions_text", "top").to_dicts()
    results = ctx.conversations.converse_many(facts)
    from fifa.annotator.visible import source_mention

    keep, turns = [], []
    for i, r in enumerate(results):
        if r.turns and any(source_mention(t["content"]) for t in r.turns if t["role"] == "assistant"):
            ctx.count("fc_mentions_source", 1)  # a model's conversation that states what the image cannot show
        elif r.turns:
            keep.append(i)
            turns.append(r.turns)
        else:
            ctx.count(f"fc_{r.error_code or 'failed'}", 1)
    f = f[keep].with_columns(
        pl.Series("turns", turns, dtype=pl.List(pl.Struct({"role": pl.String, "content": pl.String})))
    )
    return finish(f, "fc")
