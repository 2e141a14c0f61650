"""Agreement between reviewers: Cohen's kappa (against scikit-learn), Fleiss' kappa (against the published
worked example), the combination rules, and `fifa-data review-stats` on real files."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from fifa.pipelines.agreement import agreement, cohen_kappa, combine, fleiss_kappa

BIN = Path(sys.executable).parent


def test_cohen_kappa_equals_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(3)
    for n in (5, 17, 200):
        for p in (0.2, 0.5, 0.9):
            a = ["accepted" if rng.random() < p else "rejected" for _ in range(n)]
            b = [x if rng.random() < 0.7 else ("rejected" if x == "accepted" else "accepted") for x in a]
            assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(["accepted"] * 4, ["accepted"] * 4) is None  # chance agreement 1: undefined
    assert cohen_kappa([], []) is None


def test_fleiss_kappa_of_the_worked_example():
    """Fleiss (1971) as worked in Wikipedia's "Fleiss' kappa": 10 items, 14 raters, 5 categories -> 0.210."""
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(counts) == pytest.approx(0.2099, abs=1e-4)
    assert fleiss_kappa([[2, 0], [2, 0]]) is None
    # two raters: Fleiss' kappa is Scott's pi
    assert fleiss_kappa([[2, 0], [1, 1], [0, 2], [2, 0]]) == pytest.approx(0.4667, abs=1e-4)


def test_combination_rules():
    reviews = {
        "ana": {"s1": "accepted", "s2": "rejected", "s3": "accepted", "s4": "accepted"},
        "ben": {"s1": "accepted", "s2": "accepted", "s3": "rejected"},
        "cem": {"s1": "accepted", "s2": "accepted", "s3": "rejected", "s5": "rejected"},
    }
    got = {r: {s: d for s, (d, _) in combine(reviews, r).items()} for r in ("all", "majority", "any")}
    assert got["all"] == {"s1": "accepted", "s2": "rejected", "s3": "rejected", "s4": "accepted", "s5": "rejected"}
    assert got["majority"] == {"s1": "accepted", "s2": "accepted", "s3": "rejected", "s4": "accepted", "s5": "rejected"}
    assert got["any"] == {"s1": "accepted", "s2": "accepted", "s3": "accepted", "s4": "accepted", "s5": "rejected"}
    assert combine(reviews, "all")["s3"][1] == ["ana", "ben", "cem"]
    tie = {"ana": {"x": "accepted"}, "ben": {"x": "rejected"}}
    assert combine(tie, "majority")["x"][0] == "rejected"  # a tie rejects
    with pytest.raises(ValueError):
        combine(reviews, "most")


def test_agreement_figures_and_disputed_samples():
    reviews = {
        "ana": {"s1": "accepted", "s2": "rejected", "s3": "accepted", "s4": "accepted"},
        "ben": {"s1": "accepted", "s2": "rejected", "s3": "rejected", "s4": "accepted"},
    }
    f = agreement(reviews, status={"s1": "ok", "s2": "failed", "s3": "ok", "s4": "ok"})
    assert f["pairs"][0]["n"] == 4 and f["pairs"][0]["agreement"] == 0.75
    assert f["pairs"][0]["cohen_kappa"] == pytest.approx(0.5)
    assert f["fleiss"]["n"] == 4 and f["fleiss"]["kappa"] == pytest.approx(0.4667, abs=1e-4)
    assert [a["agreement"] for a in f["annotator"]] == [1.0, 0.75]
    assert f["disputed"] == 1 and f["disputed_samples"] == [
        {"sample_id": "s3", "decisions": {"ana": "accepted", "ben": "rejected"}}
    ]


def _file(path: Path, reviewer, decisions: dict) -> Path:
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "reviewer": reviewer,
                "decisions": [
                    {"sample_id": s, "decision": d, "note": "", "at": "2026-12-01T10:00:00Z"}
                    for s, d in decisions.items()
                ],
            }
        )
    )
    return path


def test_review_stats_command(tmp_path):
    a = _file(tmp_path / "a.json", "ana", {"s1": "accepted", "s2": "rejected", "s3": "accepted"})
    b = _file(tmp_path / "b.json", "ben", {"s1": "accepted", "s2": "accepted", "s3": "accepted"})
    c = _file(tmp_path / "c.json", "cem", {"s1": "accepted", "s2": "rejected", "s3": "accepted"})
    r = subprocess.run(
        [str(BIN / "fifa-data"), "review-stats", str(a), str(b), str(c), "--json", str(tmp_path / "f.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "cohen kappa ana / cem: 1.000" in r.stdout and "fleiss kappa:" in r.stdout
    assert "disputed samples: 1" in r.stdout and "s2: ana rejected, ben accepted, cem rejected" in r.stdout
    assert json.loads((tmp_path / "f.json").read_text())["fleiss"]["raters"] == 3
    unnamed = _file(tmp_path / "u.json", None, {"s1": "accepted"})
    r = subprocess.run(
        [str(BIN / "fifa-data"), "review-stats", str(a), str(unnamed)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "no reviewer name" in r.stderr and "Traceback" not in r.stderr
    same = _file(tmp_path / "a2.json", "ana", {"s1": "rejected"})
    r = subprocess.run(
        [str(BIN / "fifa-data"), "review-stats", str(a), str(same)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "already has a file" in r.stderr


def test_blind_decisions_carry_what_the_reviewer_saw(tmp_path):
    from fifa.pipelines.review import ReviewError, dump_review, load_review

    p = tmp_path / "r.json"
    p.write_text(
        json.dumps(
            {
                "version": 1,
                "reviewer": "ana",
                "decisions": [
                    {
                        "sample_id": "s1",
                        "decision": "accepted",
                        "note": "",
                        "at": "2026-12-01T10:00:00Z",
                        "blind": True,
                        "seen": "smooth cheeks",
                    },
                    {"sample_id": "s2", "decision": "rejected", "note": "", "at": "2026-12-01T10:01:00Z"},
                ],
            }
        )
    )
    got = load_review(p)
    assert (got["s1"].blind, got["s1"].seen) == (True, "smooth cheeks") and (got["s2"].blind, got["s2"].seen) == (
        False,
        None,
    )
    again = dump_review(got.values(), "ana")["decisions"]
    assert again[0]["seen"] == "smooth cheeks" and "seen" not in again[1]
    p.write_text(
        json.dumps(
            {
                "version": 1,
                "reviewer": "ana",
                "decisions": [
                    {"sample_id": "s1", "decision": "accepted", "note": "", "at": "2026-12-01T10:00:00Z", "blind": True}
                ],
            }
        )
    )
    with pytest.raises(ReviewError, match="blind decision needs 'seen'"):
        load_review(p)
