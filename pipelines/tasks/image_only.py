"""The build's check that answers describe the image (DESIGN.md "Answers describe the image").

Every generated row's assistant turns are matched against :data:`fifa.annotator.visible.SOURCE_MENTION`
in one vectorised pass per chunk (polars' Rust regex); a match is a template or an annotation that states
what a model cannot see (the source image, a figure measured against it).
"""

from __future__ import annotations

import polars as pl

from fifa.annotator.visible import SOURCE_MENTION

#: the whole match (the pattern's own flag group is not a capture group)
_MATCH = "(" + SOURCE_MENTION.replace("(?i)", "", 1) + ")"


def source_mentions(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows (``id, sample_id, task, said``) whose assistant turns mention the source; empty when none."""
    answers = (
        pl.col("turns")
        .list.eval(pl.element().filter(pl.element().struct.field("role") == "assistant").struct.field("content"))
        .list.join("\n")
    )
    f = rows.select("id", "sample_id", "task", answers.alias("_a"))
    hit = f.filter(pl.col("_a").str.contains(SOURCE_MENTION))
    return hit.select("id", "sample_id", "task", pl.col("_a").str.extract("(?i)" + _MATCH, 1).alias("said"))


def describe(hits: pl.DataFrame, limit: int = 5) -> str:
    """``task id: 'wording'`` of the first offending rows."""
    return "; ".join(f"{r['task']} {r['id']}: {r['said']!r}" for r in hits.head(limit).iter_rows(named=True))
