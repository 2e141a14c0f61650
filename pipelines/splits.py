"""Leak-free, method-stratified splits.

Split units are the connected components of groups linked through shared identities
(``identities``: ``|``-separated, e.g. FF++ fake ``000_003`` -> group ``000``, identities
``000|003``; null -> the group alone; a null group -> the sample alone). Groups and identities
share one namespace: the FF++ fake above links group ``000`` to group ``003`` (the real video of
identity ``003``). Neither a group nor an
identity can land in two splits. Units are stratified by their dominant method (``real`` for
pristine images): within each stratum, units are ordered by a hash of (seed, unit) and cut at the
cumulative share of rows given by the ratios.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .rand import string_hash

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitRatios:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self):
        vals = (self.train, self.validation, self.test)
        if any(v < 0 for v in vals) or abs(sum(vals) - 1.0) > 1e-6:
            raise ValueError(f"split ratios must be >= 0 and sum to 1, got {vals}")

    @classmethod
    def parse(cls, text: str) -> "SplitRatios":
        try:
            parts = [float(x) for x in text.split(",")]
        except ValueError:
            raise ValueError(f"split ratios must be three numbers like 0.8,0.1,0.1, got {text!r}") from None
        if len(parts) != 3:
            raise ValueError(f"split ratios must be three numbers (train,validation,test), got {text!r}")
        return cls(*parts)


def split_units(frame: pl.DataFrame) -> pl.Series:
    """Unit id (int) per row of ``frame`` (columns ``sample_id``, ``group``, optional ``identities``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    group = frame["group"].fill_null("\x00sample:" + frame["sample_id"]) if "group" in frame.columns else \
        pl.Series(["\x00sample:" + s for s in frame["sample_id"]])
    gkey = group  # identities and groups share one namespace: a group is the identity of its source
    df = pl.DataFrame({"row": np.arange(frame.height), "g": gkey})
    if "identities" in frame.columns:
        ids = frame["identities"].str.split("|").list.eval(pl.element().str.strip_chars()).list.eval(
            pl.element().filter(pl.element() != ""))
        edges = pl.DataFrame({"g": gkey, "i": ids}).explode("i").drop_nulls("i").with_columns(
            pl.col("i"))
    else:
        edges = pl.DataFrame({"g": [], "i": []}, schema={"g": pl.String, "i": pl.String})
    nodes = pl.concat([df["g"], edges["g"], edges["i"]]).unique(maintain_order=False).sort()
    index = pl.DataFrame({"key": nodes, "idx": np.arange(len(nodes))})
    gi = df.join(index, left_on="g", right_on="key", how="left").sort("row")["idx"].to_numpy()
    e = edges.join(index.rename({"idx": "a"}), left_on="g", right_on="key").join(
        index.rename({"idx": "b"}), left_on="i", right_on="key")
    n = len(nodes)
    a, b = e["a"].to_numpy(), e["b"].to_numpy()
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return pl.Series("unit", labels[gi].astype(np.int64))


def assign_splits(frame: pl.DataFrame, ratios: SplitRatios = SplitRatios(), seed: int = 0) -> pl.DataFrame:
    """``frame`` (sample_id, group, identities?, method, label) with ``unit`` and ``split`` added."""
    f = frame.with_columns(split_units(frame))
    f = f.with_columns(
        pl.when(pl.col("label") == "real").then(pl.lit("real")).otherwise(pl.col("method").fill_null("(none)"))
        .alias("_stratum_m"),
        pl.col("group").fill_null("\x00sample:" + pl.col("sample_id")).alias("_gkey"),
    )
    units = (f.group_by("unit").agg(
        pl.len().alias("n"),
        pl.col("_gkey").min().alias("key"),
        pl.col("_stratum_m").mode().sort().first().alias("stratum"),
    ))
    units = units.with_columns(pl.Series("h", string_hash(units["key"].to_list(), seed)))
    units = units.sort(["stratum", "h", "key"]).with_columns(
        ((pl.col("n").cum_sum().over("stratum") - pl.col("n") / 2) / pl.col("n").sum().over("stratum")).alias("pos"))
    t, v = ratios.train, ratios.train + ratios.validation
    units = units.with_columns(
        pl.when(pl.col("pos") < t).then(pl.lit("train"))
        .when(pl.col("pos") < v).then(pl.lit("validation")).otherwise(pl.lit("test")).alias("split"))
    return f.drop("_stratum_m", "_gkey").join(units.select("unit", "split"), on="unit", how="left")


def leaks(frame: pl.DataFrame) -> dict[str, list[str]]:
    """Groups and identities found in more than one split (empty lists = no leak)."""
    out = {}
    g = frame.drop_nulls("group").group_by("group").agg(pl.col("split").n_unique().alias("k")).filter(pl.col("k") > 1)
    out["group"] = sorted(g["group"].to_list())
    if "identities" in frame.columns:
        own = pl.col("identities").str.split("|").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        ids = frame.select(pl.concat_list([own, pl.concat_list(pl.col("group"))])
                           .alias("i"), "split").explode("i").drop_nulls("i").filter(pl.col("i") != "")
        i = ids.group_by("i").agg(pl.col("split").n_unique().alias("k")).filter(pl.col("k") > 1)
        out["identity"] = sorted(i["i"].to_list())
    else:
        out["identity"] = []
    return out
