"""Provenance columns of a build's rows (``fifa.core.schemas.PROVENANCE_FIELDS``), decided once per sample in pass 1.

``collection``: the manifest's (importers write it), else the source collection whose methods include the
sample's method (``data/sources.yaml``, the card's table; null for a real image without one); ``video`` and
``frame``: the manifest's (video importers); ``explainer``, ``tree_version``: the annotation's; ``review``
and ``reviewers``: the review's decision on the sample (``accepted``; rejected samples are left out) and
the reviewers who decided on it (none: not reviewed).
"""

from __future__ import annotations

import polars as pl

from fifa.core.schemas import PROVENANCE

REVIEW_FRAME = {"sample_id": pl.String, "review": pl.String, "reviewers": pl.List(pl.String)}


def method_collections(sources: dict) -> dict[str, str]:
    """method -> the first source collection (by name) that lists it."""
    out: dict[str, str] = {}
    for name in sorted(sources):
        for m in sources[name].get("methods") or []:
            out.setdefault(m, name)
    return out


def add_provenance(kept: pl.DataFrame, review: pl.DataFrame | None, sources: dict) -> pl.DataFrame:
    """``kept`` (index columns) with the provenance columns filled (one join, vectorised)."""
    by_method = method_collections(sources)
    guess = pl.col("method").replace_strict(by_method, default=None, return_dtype=pl.String)
    f = kept.with_columns(pl.coalesce(pl.col("collection"), guess).alias("collection"))
    r = review if review is not None else pl.DataFrame(schema=REVIEW_FRAME)
    f = f.drop([c for c in ("review", "reviewers") if c in f.columns]).join(
        r.select(list(REVIEW_FRAME)), on="sample_id", how="left", maintain_order="left"
    )
    f = f.with_columns(pl.col("reviewers").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    assert all(c in f.columns for c in PROVENANCE)
    return f
