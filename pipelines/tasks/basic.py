"""``det`` (yes/no with a reason), ``cls`` (method or category with its definition), ``toe`` (numbered list)."""

from __future__ import annotations

import numpy as np
import polars as pl

from fifa.pipelines.methods import CATEGORY_NAMES, UnknownMethodError

from .. import rand
from .common import (
    TaskContext,
    capitalize,
    fill,
    finish,
    hashes,
    join_names,
    pick,
    sentences,
    slim,
    top_regions,
    two_turns,
)

FAKE = pl.col("label") == "fake"


def det_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    from fifa.annotator.explain import CATEGORY_WORDS

    t = ctx.templates
    f = slim(chunk, "grounded", "mask_area", "mask_fraction", "reason").join(
        top_regions(chunk, ctx), on="sample_id", how="left", maintain_order="left"
    )
    f = f.with_columns(
        pick(f, t.q("det"), "det/q", "_q"),
        pick(f, t.a("det_fake"), "det/a", "_af"),
        pick(f, t.a("det_fake_unmeasured"), "det/a", "_au"),
    )
    measured = pl.col("grounded") & (pl.col("mask_area").fill_null(0) > 0) & pl.col("regions_top").is_not_null()
    pct = (pl.col("mask_fraction").fill_null(0.0) * 100).round(1).cast(pl.String) + "%"
    cat = pl.col("category").replace_strict(CATEGORY_WORDS, default="face").fill_null("face")
    fake = (
        pl.when(measured)
        .then(fill(pl.col("_af"), regions=pl.col("regions_top"), pct=pct))
        .otherwise(fill(pl.col("_au"), category=cat, regions=pl.col("regions_top").fill_null("the face")))
    )
    answer = pl.when(FAKE).then(fake).otherwise(fill(t.a("det_real"), reason=pl.col("reason").fill_null("")))
    return finish(f.with_columns(two_turns(pl.col("_q"), answer.str.strip_chars())), "det")


def _method_info(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    """Per distinct method: canonical name, category, definition (null when the table lacks it)."""
    rows = []
    for m in chunk["method"].drop_nulls().unique().sort().to_list():
        try:
            rec = ctx.methods.get(m)
            rows.append((m, rec.name, rec.category, rec.definition))
        except UnknownMethodError:
            rows.append((m, m, None, None))
    return pl.DataFrame(
        rows, schema={"method": pl.String, "m_name": pl.String, "m_cat": pl.String, "m_def": pl.String}, orient="row"
    )


def cls_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    t = ctx.templates
    info = _method_info(chunk, ctx)
    f = slim(chunk).join(info, on="method", how="left", maintain_order="left")
    unknown = f.filter(FAKE & pl.col("method").is_not_null() & pl.col("m_def").is_null())
    ctx.count("cls_method_not_in_table", unknown.height)
    if unknown.height:
        ctx.counters.setdefault("_unknown_methods", set()).update(unknown["method"].unique().to_list())
    known = pl.col("category").is_in(["FS", "FR", "FE", "EFS"])
    f = f.with_columns(pl.when(known).then(pl.col("category")).otherwise(pl.col("m_cat")).alias("code"))
    # variant: method or category question; the bench (test split) always asks ctx.bench_cls
    coin = rand.uniform(hashes(f), "cls/variant") < 0.5
    has_method = f["method"].is_not_null().to_numpy()
    variant = pl.Series("_variant", np.where(coin & has_method, "method", "category"))
    f = f.with_columns(variant).with_columns(
        pl.when(pl.col("split") == "test").then(pl.lit(ctx.bench_cls)).otherwise(pl.col("_variant")).alias("_variant")
    )
    real = ~FAKE
    # which rows cannot be asked: fakes without a category (category variant) or method (method variant)
    ok = (
        real
        | ((pl.col("_variant") == "method") & pl.col("method").is_not_null() & pl.col("code").is_not_null())
        | ((pl.col("_variant") == "category") & pl.col("code").is_not_null())
    )
    dropped = f.filter(~ok)
    ctx.count("cls_without_class", dropped.height)
    f = f.filter(ok)
    cat_name = pl.col("code").replace_strict(CATEGORY_NAMES, default="")
    is_method = pl.col("_variant") == "method"
    answer = _cls_answer(t, real, is_method, cat_name)
    qm = pick(f, t.q("cls_method"), "cls/qm", "_qm")
    qc = pick(f, t.q("cls_category"), "cls/qc", "_qc")
    f = f.with_columns(qm, qc).with_columns(
        two_turns(pl.when(is_method).then(pl.col("_qm")).otherwise(pl.col("_qc")), answer)
    )
    # the class the scorer compares: the method name or the category name ("real" for pristine images)
    klass = pl.when(real).then(pl.lit("real")).when(is_method).then(pl.col("m_name")).otherwise(cat_name)
    return finish(f, "cls", cls=klass)


def _cls_answer(t, real: pl.Expr, is_method: pl.Expr, cat_name: pl.Expr) -> pl.Expr:
    """The cls answer: the method variant's or the category variant's template (real, fake of an unknown method,
    fake), filled with the method's and the category's name and definition."""
    cat_def = pl.col("code").replace_strict(t.a("category_definitions"), default="")
    method_answer = (
        pl.when(real)
        .then(pl.lit(t.a("cls_method_real")))
        .when(pl.col("m_def").is_null())
        .then(pl.lit(t.a("cls_method_unknown")))
        .otherwise(pl.lit(t.a("cls_method_fake")))
    )
    cat_answer = (
        pl.when(real)
        .then(pl.lit(t.a("cls_category_real")))
        .when(pl.col("method").is_null())
        .then(pl.lit(t.a("cls_category_nomethod")))
        .otherwise(pl.lit(t.a("cls_category_fake")))
    )
    return fill(
        pl.when(is_method).then(method_answer).otherwise(cat_answer),
        method=pl.col("m_name").fill_null(""),
        definition=capitalize(pl.col("m_def").fill_null("")),
        category=cat_name,
        Category=capitalize(cat_name),
        code=pl.col("code").fill_null(""),
        category_definition=capitalize(cat_def),
    )


def toe_rows(chunk: pl.DataFrame, ctx: TaskContext) -> pl.DataFrame:
    """Text-only explanation: "1. **Region**: description" per explained sentence, intro and closing kept."""
    t = ctx.templates
    s = sentences(chunk)
    first = s.filter(pl.col("ids").list.len() > 0).group_by("sample_id").agg(pl.col("si").min().alias("first"))
    s = s.join(first, on="sample_id", how="left").with_columns(pl.col("first").fill_null(1 << 30))
    titles = pl.col("phrases").list.eval(pl.element().str.replace(r"^(?i:the) ", ""))
    s = s.with_columns(
        pl.when(pl.col("ids").list.len() > 0)
        .then(pl.lit("item"))
        .when(pl.col("si") < pl.col("first"))
        .then(pl.lit("intro"))
        .otherwise(pl.lit("outro"))
        .alias("kind"),
        capitalize(join_names(titles)).alias("title"),
    )
    s = s.with_columns((pl.col("kind") == "item").cast(pl.Int32).cum_sum().over("sample_id").alias("n"))
    s = s.with_columns(
        pl.when(pl.col("kind") == "item")
        .then(pl.col("n").cast(pl.String) + ". **" + pl.col("title") + "**: " + pl.col("text"))
        .otherwise(pl.col("text"))
        .alias("line")
    )
    agg = s.group_by("sample_id").agg(
        pl.col("line").filter(pl.col("kind") == "intro").str.join(" ").alias("intro"),
        pl.col("line").filter(pl.col("kind") == "item").str.join("\n").alias("items"),
        pl.col("line").filter(pl.col("kind") == "outro").str.join(" ").alias("outro"),
    )
    f = slim(chunk, "plain").join(agg, on="sample_id", how="left", maintain_order="left")
    parts = pl.concat_list([pl.col("intro"), pl.col("items"), pl.col("outro")]).list.eval(
        pl.element().filter(pl.element().is_not_null() & (pl.element() != ""))
    )
    answer = pl.when(pl.col("items").fill_null("") == "").then(pl.col("plain")).otherwise(parts.list.join("\n"))
    f = f.with_columns(pick(f, t.q("toe"), "toe/q", "_q"))
    f = f.filter(pl.col("plain") != "")
    return finish(f.with_columns(two_turns(pl.col("_q"), answer)), "toe")


__all__ = ["det_rows", "cls_rows", "toe_rows", "join_names"]
