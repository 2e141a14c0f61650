"""``BUILD/stats.json``: counts per task, split, method and category (accumulated chunk by chunk)."""

from __future__ import annotations

import polars as pl

from .splits import SPLIT_NAMES


class StatsCollector:
    def __init__(self):
        self.parts: list[pl.DataFrame] = []

    def add(self, rows: pl.DataFrame) -> None:
        self.parts.append(rows.group_by("task", "split", "label", "method", "category").len())

    def finish(self, kept: pl.DataFrame, bench: dict, notes: dict) -> dict:
        f = (
            pl.concat(self.parts)
            if self.parts
            else pl.DataFrame(
                schema={
                    "task": pl.String,
                    "split": pl.String,
                    "label": pl.String,
                    "method": pl.String,
                    "category": pl.String,
                    "len": pl.UInt32,
                }
            )
        )
        f = f.with_columns(pl.col("method").fill_null("(none)"), pl.col("category").fill_null("(none)"))
        f = f.group_by("task", "split", "label", "method", "category").agg(pl.col("len").sum())

        def nest(keys: list[str], frame: pl.DataFrame) -> dict:
            out: dict = {}
            g = frame.group_by(keys).agg(pl.col("len").sum()).sort(keys)
            for row in g.iter_rows():
                d = out
                for k in row[:-2]:
                    d = d.setdefault(str(k), {})
                d[str(row[-2])] = int(row[-1])
            return out

        by_split = {s: int(f.filter(pl.col("split") == s)["len"].sum()) for s in SPLIT_NAMES}
        ann = kept.with_columns(pl.col("method").fill_null("(none)"), pl.col("category").fill_null("(none)"))
        a = ann.group_by("split", "label", "method", "category").len()
        return {
            "rows": {
                "total": int(f["len"].sum()),
                "by_split": by_split,
                "by_task_split": nest(["task", "split"], f),
                "by_split_method": nest(["split", "method"], f),
                "by_split_category": nest(["split", "category"], f),
                "by_task_label": nest(["task", "label"], f),
            },
            "annotations": {
                "by_split": {s: int((kept["split"] == s).sum()) for s in SPLIT_NAMES},
                "by_split_method": nest(["split", "method"], a),
                "by_split_category": nest(["split", "category"], a),
                "by_split_label": nest(["split", "label"], a),
            },
            "bench": {"by_task_class": bench, "total": sum(sum(v.values()) for v in bench.values())},
            "notes": dict(sorted(notes.items())),
        }
