"""Leak-free, method-stratified splits.

Split units are the connected components of groups linked through shared identities
(``identities``: ``|``-separated, e.g. FF++ fake ``000_003`` -> group ``000``, identities
``000|003``; null -> the group alone; a null group -> the sample alone). Groups and identities
share one namespace: the FF++ fake above links group ``000`` to group ``003`` (the real video of
identity ``003``). Neither a group nor an
identity can land in two splits.

How many units each split gets is a largest-remainder allocation of the ratios over the units
(:func:`unit_targets`): with at least three units, every split whose ratio is positive gets at least
one, so a pilot set of a few identities still has a validation split and a bench. The counts are
shared out over strata of units (their dominant method, ``real`` for pristine images) in proportion
to the strata's sizes (:func:`stratum_counts`); within a stratum, units are ordered by a hash of
(seed, unit). The ratios are therefore shares of units; rows follow them when units are alike in size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .rand import string_hash

SPLIT_NAMES = ("train", "validation", "test")
#: with at least this many split units, every split with a positive ratio gets one
MIN_UNITS = 3


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
    def parse(cls, text: str) -> SplitRatios:
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

    group = (
        frame["group"].fill_null("\x00sample:" + frame["sample_id"])
        if "group" in frame.columns
        else pl.Series(["\x00sample:" + s for s in frame["sample_id"]])
    )
    gkey = group  # identities and groups share one namespace: a group is the identity of its source
    df = pl.DataFrame({"row": np.arange(frame.height), "g": gkey})
    if "identities" in frame.columns:
        ids = (
            frame["identities"]
            .str.split("|")
            .list.eval(pl.element().str.strip_chars())
            .list.eval(pl.element().filter(pl.element() != ""))
        )
        edges = pl.DataFrame({"g": gkey, "i": ids}).explode("i").drop_nulls("i").with_columns(pl.col("i"))
    else:
        edges = pl.DataFrame({"g": [], "i": []}, schema={"g": pl.String, "i": pl.String})
    nodes = pl.concat([df["g"], edges["g"], edges["i"]]).unique(maintain_order=False).sort()
    index = pl.DataFrame({"key": nodes, "idx": np.arange(len(nodes))})
    gi = df.join(index, left_on="g", right_on="key", how="left").sort("row")["idx"].to_numpy()
    e = edges.join(index.rename({"idx": "a"}), left_on="g", right_on="key").join(
        index.rename({"idx": "b"}), left_on="i", right_on="key"
    )
    n = len(nodes)
    a, b = e["a"].to_numpy(), e["b"].to_numpy()
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return pl.Series("unit", labels[gi].astype(np.int64))


def unit_targets(n_units: int, ratios: SplitRatios) -> dict[str, int]:
    """Units per split: largest remainder of ``ratio * n_units``; with >= 3 units every split whose ratio
    is positive gets at least one (taken from the split with the most units). Ties go to the earlier split."""
    r = dict(zip(SPLIT_NAMES, (ratios.train, ratios.validation, ratios.test)))
    quota = {s: round(r[s] * n_units, 9) for s in SPLIT_NAMES}  # 0.7 * 10 is 7, not 6.999...
    out = {s: int(quota[s]) for s in SPLIT_NAMES}
    order = sorted(SPLIT_NAMES, key=lambda s: (-(quota[s] - out[s]), SPLIT_NAMES.index(s)))
    for s in order[: n_units - sum(out.values())]:
        out[s] += 1
    if n_units >= MIN_UNITS:
        for s in SPLIT_NAMES:
            if r[s] > 0 and out[s] == 0:
                donor = max(SPLIT_NAMES, key=lambda d: (out[d], -SPLIT_NAMES.index(d)))
                out[donor] -= 1
                out[s] += 1
    return out


def stratum_counts(strata: dict[str, int], targets: dict[str, int], seed: int = 0) -> dict[str, dict[str, int]]:
    """Units per (stratum, split) summing to ``strata`` per stratum and to ``targets`` per split.

    Every stratum first gets one train unit (smallest strata first while train's target allows: every
    method is trained on); the other units are shared out in proportion: each stratum gets the floor of
    ``n_left * target_left / units_left`` per split, and the units left over go to the (stratum, split)
    pairs with the largest fractional parts (ties in a seeded order of the strata), at most one per pair,
    then wherever a split still needs units."""
    names = sorted(strata, key=lambda s: (int(string_hash([s], seed)[0]), s))
    out = {m: dict.fromkeys(SPLIT_NAMES, 0) for m in names}
    for m in sorted(names, key=lambda m: strata[m])[: targets["train"]]:
        out[m]["train"] = 1 if strata[m] else 0
    left = {m: strata[m] - out[m]["train"] for m in names}
    need = {s: targets[s] - sum(out[m][s] for m in names) for s in SPLIT_NAMES}
    total = sum(left.values())
    frac = []
    for m in names:
        for s in SPLIT_NAMES:
            q = round(left[m] * need[s] / total, 9) if total else 0.0
            frac.append((-(q - int(q)), names.index(m), SPLIT_NAMES.index(s), m, s))
            out[m][s] += int(q)
    left = {m: strata[m] - sum(out[m].values()) for m in names}
    need = {s: targets[s] - sum(out[m][s] for m in names) for s in SPLIT_NAMES}
    for f, _, _, m, s in sorted(frac):
        if f < 0 and left[m] > 0 and need[s] > 0:
            out[m][s] += 1
            left[m] -= 1
            need[s] -= 1
    for m in names:
        for s in SPLIT_NAMES:
            k = min(left[m], need[s])
            out[m][s] += k
            left[m] -= k
            need[s] -= k
    return out


def assign_splits(frame: pl.DataFrame, ratios: SplitRatios = SplitRatios(), seed: int = 0) -> pl.DataFrame:
    """``frame`` (sample_id, group, identities?, method, label) with ``unit`` and ``split`` added.

    The units per split come from :func:`unit_targets` (largest remainder over all units), shared out
    over the method strata by :func:`stratum_counts`; within a stratum the units, in a seeded hash
    order, fill train, then validation, then test."""
    f = frame.with_columns(split_units(frame))
    f = f.with_columns(
        pl.when(pl.col("label") == "real")
        .then(pl.lit("real"))
        .otherwise(pl.col("method").fill_null("(none)"))
        .alias("_stratum_m"),
        pl.col("group").fill_null("\x00sample:" + pl.col("sample_id")).alias("_gkey"),
    )
    units = f.group_by("unit").agg(
        pl.col("_gkey").min().alias("key"), pl.col("_stratum_m").mode().sort().first().alias("stratum")
    )
    units = units.with_columns(pl.Series("h", string_hash(units["key"].to_list(), seed)))
    units = units.sort(["stratum", "h", "key"]).with_columns(pl.int_range(pl.len()).over("stratum").alias("rank"))
    strata = dict(units.group_by("stratum").len().iter_rows())
    counts = stratum_counts(strata, unit_targets(units.height, ratios), seed)
    cuts = pl.DataFrame(
        {
            "stratum": list(counts),
            "c_train": [c["train"] for c in counts.values()],
            "c_val": [c["train"] + c["validation"] for c in counts.values()],
        },
        schema={"stratum": pl.String, "c_train": pl.Int64, "c_val": pl.Int64},
    )
    units = units.join(cuts, on="stratum", how="left").with_columns(
        pl.when(pl.col("rank") < pl.col("c_train"))
        .then(pl.lit("train"))
        .when(pl.col("rank") < pl.col("c_val"))
        .then(pl.lit("validation"))
        .otherwise(pl.lit("test"))
        .alias("split")
    )
    return f.drop("_stratum_m", "_gkey").join(units.select("unit", "split"), on="unit", how="left")


def empty_splits(frame: pl.DataFrame, ratios: SplitRatios) -> list[str]:
    """Splits with a positive ratio that ``frame`` (with ``split``) leaves without a row."""
    present = set(frame["split"].unique().to_list())
    return [
        s for s, r in zip(SPLIT_NAMES, (ratios.train, ratios.validation, ratios.test)) if r > 0 and s not in present
    ]


def leaks(frame: pl.DataFrame) -> dict[str, list[str]]:
    """Groups and identities found in more than one split (empty lists = no leak)."""
    out = {}
    g = frame.drop_nulls("group").group_by("group").agg(pl.col("split").n_unique().alias("k")).filter(pl.col("k") > 1)
    out["group"] = sorted(g["group"].to_list())
    if "identities" in frame.columns:
        own = pl.col("identities").str.split("|").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        ids = (
            frame.select(pl.concat_list([own, pl.concat_list(pl.col("group"))]).alias("i"), "split")
            .explode("i")
            .drop_nulls("i")
            .filter(pl.col("i") != "")
        )
        i = ids.group_by("i").agg(pl.col("split").n_unique().alias("k")).filter(pl.col("k") > 1)
        out["identity"] = sorted(i["i"].to_list())
    else:
        out["identity"] = []
    return out
