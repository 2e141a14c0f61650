"""Shared pieces of the task generators: the chunk frame, template picking, turns, row layout.

The chunk frame has one row per kept annotation: ``sample_id, label, method, category, group,
split, h`` (uint64 sample hash), ``image`` (Image struct), ``explanation`` (marked, measured against the
source: it stays in the annotation records), ``visible`` (marked: what the fake alone shows, the
annotator's ``visible_explanation``; the explanation for annotations made before it), ``plain`` and
``reason`` (the visible text without marks, its first sentence): answers use only ``visible``, ``plain``
and ``reason`` (DESIGN.md "Answers describe the image"), ``segments``, ``artifact_mask``, ``artifact_regions``,
``regions``, ``grounded``, ``mask_area``, ``height``, ``width``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from fifa.core import schemas
from fifa.core.marks import MARK_PATTERN, PHRASE_REPLACEMENT

from .. import rand
from ..templates import Templates

SENTENCE_RE = r"(?:[^.!?]|[.!?]\S)+(?:[.!?]+|$)"

RLE = pl.Struct({"size": pl.List(pl.Int64), "counts": pl.String})
MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
EMPTY_MASKS = pl.lit([], dtype=pl.List(RLE))
NO_MASK = pl.lit(None, dtype=RLE)
NO_BOX = pl.lit(None, dtype=pl.List(pl.Float64))
NO_STR = pl.lit([], dtype=pl.List(pl.String))

#: Columns of a generated row (before it becomes an instruction row or a bench question).
PROVENANCE = list(schemas.PROVENANCE)
ROW_COLUMNS = [
    "id",
    "sample_id",
    "task",
    "turns",
    "masks",
    "mask_phrases",
    "mask_node_ids",
    "query_mask",
    "query_box",
    "bench_masks",
    "cls",
    "image",
    "label",
    "method",
    "category",
    "group",
    "split",
    *PROVENANCE,
]
SAMPLE_COLUMNS = ["sample_id", "image", "label", "method", "category", "group", "split", *PROVENANCE]


@dataclass
class TaskContext:
    templates: Templates
    tasks: tuple[str, ...]
    methods: object  # fifa.pipelines.methods.MethodTable
    tree: object  # fifa.concept_tree.tree.ConceptTree
    rq_queries: int = 3
    negative_fraction: float = 1 / 3
    real_queries: int = 2
    bench_cls: str = "method"
    conversations: object = None  # fifa.pipelines.conversation generator
    counters: dict = field(default_factory=dict)

    def count(self, key: str, n: int) -> None:
        if n:
            self.counters[key] = self.counters.get(key, 0) + int(n)

    def region_phrase(self, node_id: str) -> str:
        if node_id in self.tree:
            n = self.tree[node_id].name.strip()
            return "the " + (n[0].lower() + n[1:] if n and not n[:2].isupper() else n)
        return "the " + node_id.replace("_", " ")


def slim(chunk: pl.DataFrame, *extra: str) -> pl.DataFrame:
    """The sample columns, the hash and ``extra``: joins and filters then move only what a task needs."""
    return chunk.select(*SAMPLE_COLUMNS, "h", *extra)


def hashes(frame: pl.DataFrame) -> np.ndarray:
    return frame["h"].to_numpy().astype(np.uint64)


def pick(frame: pl.DataFrame, options: list[str], salt: str, name: str) -> pl.Series:
    """One of ``options`` per row, chosen from the row's hash (column ``h``) and ``salt``."""
    idx = rand.pick(hashes(frame), salt, len(options))
    return pl.Series(name, options, dtype=pl.String).gather(idx)


def fill(template: str | pl.Expr, **values: pl.Expr) -> pl.Expr:
    """Fill ``{name}`` placeholders: a fixed template is concatenated, a per-row one replaced."""
    if isinstance(template, str):
        parts = []
        for i, piece in enumerate(re.split(r"\{(\w+)\}", template)):
            if i % 2 == 0:
                if piece:
                    parts.append(pl.lit(piece))
            else:
                parts.append(values[piece] if piece in values else pl.lit("{" + piece + "}"))
        return pl.concat_str(parts) if parts else pl.lit("")
    for k, v in values.items():
        template = template.str.replace_all("{" + k + "}", v, literal=True)
    return template


def capitalize(e: pl.Expr) -> pl.Expr:
    return e.str.slice(0, 1).str.to_uppercase() + e.str.slice(1)


def two_turns(question: pl.Expr, answer: pl.Expr) -> pl.Expr:
    return pl.concat_list(
        [
            pl.struct(pl.lit("user").alias("role"), question.alias("content")),
            pl.struct(pl.lit("assistant").alias("role"), answer.alias("content")),
        ]
    ).alias("turns")


def join_names(lst: pl.Expr) -> pl.Expr:
    """["a", "b", "c"] -> "a, b and c"."""
    n = lst.list.len()
    return (
        pl.when(n == 0)
        .then(pl.lit(""))
        .when(n == 1)
        .then(lst.list.first())
        .otherwise(lst.list.head(n - 1).list.join(", ") + " and " + lst.list.last())
    )


def finish(frame: pl.DataFrame, task: str, suffix: pl.Expr | str = "0", **cols) -> pl.DataFrame:
    """Rows in ROW_COLUMNS from ``frame`` (sample columns + ``turns``) and task-specific columns."""
    defaults = {
        "masks": EMPTY_MASKS,
        "mask_phrases": NO_STR,
        "mask_node_ids": NO_STR,
        "query_mask": NO_MASK,
        "query_box": NO_BOX,
        "bench_masks": None,
        "cls": pl.col("label"),
    }
    defaults.update(cols)
    suffix = pl.lit(suffix) if isinstance(suffix, str) else suffix
    exprs = [(pl.col("sample_id") + f"/{task}/" + suffix.cast(pl.String)).alias("id"), pl.lit(task).alias("task")]
    for k, v in defaults.items():
        if k == "bench_masks" and v is None:
            v = defaults["masks"]
        exprs.append((v if isinstance(v, pl.Expr) else pl.lit(v)).alias(k))
    return frame.with_columns(exprs).select(ROW_COLUMNS)


def sentences(chunk: pl.DataFrame) -> pl.DataFrame:
    """One row per sentence of each visible description: sample_id, si, ids, phrases, text (plain)."""
    s = chunk.select("sample_id", pl.col("visible").fill_null("").str.extract_all(SENTENCE_RE).alias("text"))
    s = s.explode("text").drop_nulls("text").with_columns(pl.col("text").str.strip_chars())
    s = s.filter(pl.col("text") != "").with_columns(pl.int_range(pl.len()).over("sample_id").alias("si"))
    marks = pl.col("text").str.extract_all(MARK_PATTERN)
    return s.with_columns(
        marks.list.eval(pl.element().str.extract(MARK_PATTERN, 2)).alias("ids"),
        marks.list.eval(pl.element().str.extract(MARK_PATTERN, 1)).alias("phrases"),
        pl.col("text").str.replace_all(MARK_PATTERN, PHRASE_REPLACEMENT).alias("text"),
    )


def prepare_chunk(table, extra: dict) -> pl.DataFrame:
    """The chunk frame from an Arrow table of annotation rows plus per-row ``extra`` arrays."""
    df = pl.from_arrow(table)
    if not isinstance(df, pl.DataFrame):  # pragma: no cover
        df = df.to_frame()
    df = df.with_columns(*(pl.Series(k, v) for k, v in extra.items()))
    plain = pl.col("visible").fill_null("").str.replace_all(MARK_PATTERN, PHRASE_REPLACEMENT).str.strip_chars()
    for c, dt in (
        ("grounded", pl.Boolean),
        ("mask_fraction", pl.Float64),
        ("mask_area", pl.Int64),
        ("explainer", pl.String),
        ("tree_version", pl.String),
        ("visible_explanation", pl.String),
    ):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dt).alias(c))
    df = df.with_columns(pl.coalesce("visible_explanation", "explanation").alias("visible"))
    return df.with_columns(
        plain.alias("plain"),
        plain.str.extract(r"^((?:[^.!?]|[.!?]\S)+[.!?]*)", 1).str.strip_chars().alias("reason"),
        pl.col("grounded").fill_null(True),
        pl.col("image_height").alias("height"),
        pl.col("image_width").alias("width"),
        pl.struct(pl.lit(None, dtype=pl.Binary).alias("bytes"), pl.col("image_rel").alias("path")).alias("image"),
    )


def top_regions(chunk: pl.DataFrame, ctx: TaskContext, k: int = 3) -> pl.DataFrame:
    """Per sample with chosen regions: ``regions_top`` ("the mouth, the nose and the chin"), strongest first."""
    chosen = (
        chunk.select("sample_id", "artifact_regions")
        .explode("artifact_regions")
        .drop_nulls("artifact_regions")
        .rename({"artifact_regions": "node_id"})
        .with_columns(pl.int_range(pl.len()).over("sample_id").alias("order"))
        .filter(pl.col("order") < k)
    )
    names = {n: ctx.region_phrase(n) for n in chosen["node_id"].unique().to_list()}
    return (
        chosen.with_columns(pl.col("node_id").replace_strict(names, default=None, return_dtype=pl.String).alias("n"))
        .group_by("sample_id")
        .agg(pl.col("n").sort_by("order"))
        .with_columns(join_names(pl.col("n")).alias("regions_top"))
        .select("sample_id", "regions_top")
    )
