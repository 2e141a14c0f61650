"""`fifa-data build --review A --review B --review-rule all|majority|any`: decisions combined by the rule,
reviewers in the provenance columns, agreement figures in build.json and the card."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from build_helpers import build_config, run_data

from fifa.pipelines.agreement import combine


def _file(path: Path, reviewer: str, decisions: dict) -> Path:
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "reviewer": reviewer,
                "decisions": [
                    {"sample_id": s, "decision": d, "note": f"{reviewer} on {s}", "at": "2026-12-01T10:00:00Z"}
                    for s, d in decisions.items()
                ],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def two_reviews(annotated, tmp_path_factory):
    from fifa.annotator.store import read_annotations

    d = tmp_path_factory.mktemp("reviews")
    ids = sorted(
        s
        for s, st in zip(*read_annotations(annotated["ann"], ["sample_id", "status"]).to_pydict().values())
        if st == "ok"
    )[:12]
    ana = {s: ("rejected" if i in (0, 1, 2) else "accepted") for i, s in enumerate(ids)}
    ben = {s: ("rejected" if i in (2, 3) else "accepted") for i, s in enumerate(ids[:10])}
    return {
        "ana": _file(d / "ana.json", "ana", ana),
        "ben": _file(d / "ben.json", "ben", ben),
        "decisions": {"ana": ana, "ben": ben},
    }


@pytest.mark.parametrize("rule", ["all", "majority", "any"])
def test_rule_decides_what_is_left_out_and_rows_name_their_reviewers(annotated, two_reviews, rule, tmp_path):
    from fifa.pipelines.build import build

    out = tmp_path / "b"
    s = build(
        [annotated["ann"]],
        out,
        build_config(review=(str(two_reviews["ana"]), str(two_reviews["ben"])), review_rule=rule, tasks=("det", "age")),
    )
    want = combine(two_reviews["decisions"], rule)
    rejected = sorted(k for k, (d, _) in want.items() if d == "rejected")
    assert s.left_out.get("rejected_by_review", 0) == len(rejected)
    rows = pl.read_parquet(out / "instruct" / "train.parquet")
    assert not set(rows["sample_id"]) & set(rejected)
    for r in rows.filter(pl.col("sample_id").is_in(list(want))).iter_rows(named=True):
        assert r["review"] == "accepted" and r["reviewers"] == want[r["sample_id"]][1]
    meta = json.loads((out / "build.json").read_text())["review"]
    assert meta["rule"] == rule and [f["reviewer"] for f in meta["files"]] == ["ana", "ben"]
    assert meta["rejected_ids"] == rejected
    pair = meta["agreement"]["pairs"][0]
    assert pair["reviewers"] == ["ana", "ben"] and pair["n"] == 10 and pair["agreement"] == 0.7
    assert meta["agreement"]["disputed"] == 3


def test_card_and_cli(annotated, two_reviews, tmp_path):
    from fifa.pipelines.release import ReleaseConfig, release

    out = tmp_path / "b"
    r = run_data(
        "build",
        "--annotations",
        str(annotated["ann"]),
        "--out",
        str(out),
        "--review",
        str(two_reviews["ana"]),
        "--review",
        str(two_reviews["ben"]),
        "--review-rule",
        "majority",
        "--tasks",
        "det,cls",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    release(out, tmp_path / "rel", ReleaseConfig(version="0.1"))
    card = (tmp_path / "rel" / "README.md").read_text()
    assert "Cohen's kappa ana/ben" in card and "Fleiss' kappa" in card and "3 disputed sample(s)" in card
    assert "agrees with the annotator's status" in card and "rule `majority`" in card
    bad = run_data(
        "build",
        "--annotations",
        str(annotated["ann"]),
        "--out",
        str(tmp_path / "c"),
        "--review",
        str(two_reviews["ana"]),
        "--review-rule",
        "most",
        "--no-progress",
    )
    assert bad.returncode == 2 and "--review-rule must be one of all, majority, any" in bad.stderr
