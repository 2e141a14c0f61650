"""Generated rows -> instruction rows (train/validation) and bench questions (test, balanced)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from fifa.core.marks import MARK_PATTERN, PHRASE_REPLACEMENT
from fifa.core.records import BenchQuestion
from fifa.core.schemas import BENCH_SCHEMA, INSTRUCT_SCHEMA

from . import rand
from .parquet_io import to_schema
from .tasks.common import RLE

NO_ANCHORS = pl.lit([], dtype=pl.List(pl.Struct({"node_id": pl.String, "mask": RLE})))

IMAGE_TOKEN = "<image>"


def to_instruct(rows: pl.DataFrame) -> pa.Table:
    """INSTRUCT_SCHEMA rows: the first user turn gets ``<image>`` once, in front."""
    msgs = pl.col("turns").list.eval(
        pl.struct(
            pl.element().struct.field("role"),
            pl.when(pl.int_range(pl.len()) == 0)
            .then(IMAGE_TOKEN + "\n" + pl.element().struct.field("content"))
            .otherwise(pl.element().struct.field("content"))
            .alias("content"),
        )
    )
    f = rows.with_columns(msgs.alias("messages"))
    return to_schema(f.select(INSTRUCT_SCHEMA.names).to_arrow(), INSTRUCT_SCHEMA)


def plain(e: pl.Expr) -> pl.Expr:
    return e.str.replace_all(MARK_PATTERN, PHRASE_REPLACEMENT)


def to_bench(rows: pl.DataFrame) -> pl.DataFrame:
    """BENCH_SCHEMA columns (+ ``cls`` for balancing): last user turn = question, last answer = reference."""
    n = pl.col("turns").list.len()
    content = pl.element().struct.field("content")
    hist = (
        pl.col("turns")
        .list.head(n - 2)
        .list.eval(pl.struct(pl.element().struct.field("role"), plain(content).alias("content")))
    )
    return rows.with_columns(
        pl.col("id").alias("question_id"),
        pl.col("turns").list.get(-2).struct.field("content").alias("question"),
        # cls: the class name (the scorer's class set is the set of reference answers)
        pl.when(pl.col("task") == "cls")
        .then(pl.col("cls"))
        .otherwise(plain(pl.col("turns").list.get(-1).struct.field("content")))
        .alias("answer"),
        pl.col("bench_masks").alias("masks"),
        pl.when(pl.col("task") == "age")
        .then(pl.col("mask_phrases"))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("mask_phrases"),
        pl.when(pl.col("task") == "age")
        .then(pl.col("mask_node_ids"))
        .otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("mask_node_ids"),
        hist.alias("history"),
        NO_ANCHORS.alias("anchor_masks"),  # filled for age rows by BenchCollector.finish
    ).select(*BENCH_SCHEMA.names, "cls")


class BenchCollector:
    """Test-split questions; balanced per task across classes when finished."""

    def __init__(self, seed: int, image_root: str | None = None, segmenter=None):
        """``image_root``: where the rows' image paths lie, for the ``age`` anchor masks (None: none made)."""
        self.seed = seed
        self.image_root = image_root
        self.segmenter = segmenter
        self.anchor_counts: dict | None = None
        self.parts: list[pl.DataFrame] = []
        self.fixed: list[pl.DataFrame] = []

    def add(self, rows: pl.DataFrame, balance: bool = True) -> None:
        if rows.height:
            (self.parts if balance else self.fixed).append(to_bench(rows))

    def finish(self, per_class: int | None) -> tuple[list[BenchQuestion], dict]:
        """(the bench's questions sorted by question_id, {task: {class: n}} kept): balanced columnar (polars), then
        one :class:`BenchQuestion` per row, the ``age`` ones with their anchor masks; the build writes them with
        ``BenchQuestion.to_arrow``."""
        empty = pl.DataFrame(schema=pl.from_arrow(BENCH_SCHEMA.empty_table()).schema | {"cls": pl.String})
        f = pl.concat(self.parts, how="vertical") if self.parts else empty
        if f.height:
            f = f.with_columns(pl.Series("_k", rand.string_hash(f["question_id"].to_list(), self.seed)))
            counts = f.group_by("task", "cls").len()
            k = counts.group_by("task").agg(pl.col("len").min().alias("k"))
            if per_class is not None:
                k = k.with_columns(pl.min_horizontal(pl.col("k"), pl.lit(per_class)).alias("k"))
            f = (
                f.join(k, on="task")
                .sort(["task", "cls", "_k", "question_id"])
                .with_columns(pl.int_range(pl.len()).over("task", "cls").alias("_r"))
                .filter(pl.col("_r") < pl.col("k"))
            )
            f = f.drop("_k", "k", "_r")
        if self.fixed:
            f = pl.concat([f, *self.fixed], how="vertical")
        f = f.sort("question_id")
        kept = {}
        for task, cls, n in f.group_by("task", "cls").len().sort("task", "cls").iter_rows():
            kept.setdefault(task, {})[cls] = int(n)
        questions = BenchQuestion.from_arrow(to_schema(f.drop("cls").to_arrow(), BENCH_SCHEMA))
        if self.image_root is not None:
            from .bench_anchors import with_anchor_masks

            questions, self.anchor_counts = with_anchor_masks(questions, self.image_root, self.segmenter)
        return questions, kept


__all__ = ["to_instruct", "to_bench", "BenchCollector"]
