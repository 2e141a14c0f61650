"""Split units (groups linked by identities), stratification by method, determinism."""

from __future__ import annotations

import polars as pl
import pytest

from fifa.pipelines.splits import (
    SplitRatios,
    assign_splits,
    empty_splits,
    leaks,
    split_units,
    stratum_counts,
    unit_targets,
)


def ffpp_like(n_videos: int = 400) -> pl.DataFrame:
    """FF++-shaped rows: per source video a real and one fake per method; fakes name a second identity."""
    rows = []
    methods = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter"]
    for v in range(n_videos):
        g = f"{v:03d}"
        rows.append(dict(sample_id=f"real_{g}", group=g, identities=None, method=None, label="real"))
        partner = f"{(v * 7 + 3) % n_videos:03d}"
        for m in methods:
            ident = f"{g}|{partner}" if m in ("Deepfakes", "FaceSwap", "FaceShifter") else None
            rows.append(dict(sample_id=f"{m}_{g}_{partner}", group=g, identities=ident, method=m, label="fake"))
    return pl.DataFrame(rows)


def test_identities_link_groups_into_one_unit():
    f = pl.DataFrame(
        dict(
            sample_id=["a", "b", "c", "d", "e"],
            group=["000", "003", "003", "010", None],
            identities=["000|003", None, None, "010", None],
        )
    )
    u = split_units(f).to_list()
    assert u[0] == u[1] == u[2]  # 000 names identity 003 = group 003
    assert u[3] != u[0] and u[4] not in (u[0], u[3])  # a null group is its own unit


def test_no_group_or_identity_in_two_splits_and_ratios_per_method():
    f = assign_splits(ffpp_like(), SplitRatios(0.8, 0.1, 0.1), seed=0)
    lk = leaks(f)
    assert lk == {"group": [], "identity": []}
    share = f.group_by("method", "split").len().join(f.group_by("method").len().rename({"len": "n"}), on="method")
    for r in share.to_dicts():
        target = {"train": 0.8, "validation": 0.1, "test": 0.1}[r["split"]]
        assert r["len"] / r["n"] == pytest.approx(target, abs=0.06), r


def test_leak_detector_sees_a_cut_identity():
    f = pl.DataFrame(
        dict(
            sample_id=["a", "b", "c"],
            group=["A", "B", "C"],
            identities=["A|B", None, None],
            split=["train", "test", "test"],
        )
    )
    assert leaks(f) == {"group": [], "identity": ["B"]}
    g = f.with_columns(pl.Series("group", ["A", "C", "C"]))
    assert leaks(g)["group"] == []  # C is in test only
    assert leaks(g.with_columns(pl.Series("split", ["train", "train", "test"])))["group"] == ["C"]
    h = f.with_columns(pl.Series("split", ["train", "train", "train"]))
    assert leaks(h) == {"group": [], "identity": []}


def test_splits_are_deterministic_and_seeded():
    a = assign_splits(ffpp_like(100), seed=5)["split"].to_list()
    assert a == assign_splits(ffpp_like(100), seed=5)["split"].to_list()
    assert a != assign_splits(ffpp_like(100), seed=6)["split"].to_list()


def test_ratios_are_checked():
    with pytest.raises(ValueError):
        SplitRatios.parse("0.8,0.3,0.1")
    with pytest.raises(ValueError):
        SplitRatios.parse("a,b,c")
    assert SplitRatios.parse("0.7,0.1,0.2").test == 0.2


def units_frame(n_units: int, methods=("Deepfakes", "FaceSwap")) -> pl.DataFrame:
    """``n_units`` unlinked groups of 3 rows each (a real and two fakes of one method per group)."""
    rows = []
    for u in range(n_units):
        m = methods[u % len(methods)]
        rows.append(dict(sample_id=f"r{u}", group=f"g{u}", identities=None, method=None, label="real"))
        rows += [dict(sample_id=f"f{u}_{k}", group=f"g{u}", identities=None, method=m, label="fake") for k in range(2)]
    return pl.DataFrame(
        rows,
        schema={
            "sample_id": pl.String,
            "group": pl.String,
            "identities": pl.String,
            "method": pl.String,
            "label": pl.String,
        },
    )


@pytest.mark.parametrize(
    "n_units, want", [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (1, 1, 1)), (6, (4, 1, 1)), (100, (80, 10, 10))]
)
def test_units_per_split_largest_remainder_with_one_per_split_from_three_units(n_units, want):
    ratios = SplitRatios(0.8, 0.1, 0.1)
    assert tuple(unit_targets(n_units, ratios).values()) == want
    for seed in range(5):
        f = assign_splits(units_frame(n_units), ratios, seed=seed)
        got = f.group_by("split").agg(pl.col("unit").n_unique()).to_dict(as_series=False)
        per = dict(zip(got["split"], got["unit"]))
        assert tuple(per.get(s, 0) for s in ("train", "validation", "test")) == want
        assert leaks(f) == {"group": [], "identity": []}
        assert empty_splits(f, ratios) == [s for s, k in zip(("train", "validation", "test"), want) if not k]


def test_a_zero_ratio_split_stays_empty_and_is_not_reported():
    ratios = SplitRatios(0.9, 0.1, 0.0)
    assert unit_targets(3, ratios) == {"train": 2, "validation": 1, "test": 0}
    f = assign_splits(units_frame(3), ratios)
    assert set(f["split"]) == {"train", "validation"} and empty_splits(f, ratios) == []


def test_six_linked_units_each_its_own_method_give_every_split_one():
    """The issue's pilot set: six identity-linked groups, every unit a different dominant method."""
    rows = []
    for u in range(6):
        for k in range(2):  # two groups per unit, linked through a shared identity
            g = f"g{u}{k}"
            rows.append(dict(sample_id=f"r{g}", group=g, identities=None, method=None, label="real"))
            rows += [
                dict(sample_id=f"f{g}{j}", group=g, identities=f"{g}|id{u}", method=f"M{u}", label="fake")
                for j in range(3)
            ]
    f = assign_splits(pl.DataFrame(rows), SplitRatios(0.8, 0.1, 0.1), seed=2)
    assert f["unit"].n_unique() == 6 and leaks(f) == {"group": [], "identity": []}
    assert f.group_by("split").agg(pl.col("unit").n_unique()).sort("split").rows() == [
        ("test", 1),
        ("train", 4),
        ("validation", 1),
    ]
    # which units go to validation and test follows the seed
    picks = {
        tuple(assign_splits(pl.DataFrame(rows), seed=s).filter(pl.col("split") == "test")["group"].unique())
        for s in range(8)
    }
    assert len(picks) > 1


def test_stratum_counts_follow_the_strata_and_the_targets():
    targets = unit_targets(100, SplitRatios(0.8, 0.1, 0.1))
    got = stratum_counts({"a": 50, "b": 30, "c": 20}, targets)
    assert got == {
        "a": {"train": 40, "validation": 5, "test": 5},
        "b": {"train": 24, "validation": 3, "test": 3},
        "c": {"train": 16, "validation": 2, "test": 2},
    }
    odd = stratum_counts({"a": 7, "b": 5, "c": 1}, unit_targets(13, SplitRatios(0.6, 0.2, 0.2)), seed=4)
    assert {m: sum(v.values()) for m, v in odd.items()} == {"a": 7, "b": 5, "c": 1}
    assert {s: sum(v[s] for v in odd.values()) for s in ("train", "validation", "test")} == unit_targets(
        13, SplitRatios(0.6, 0.2, 0.2)
    )
    assert odd["a"]["train"] in (4, 5) and odd["b"]["train"] in (3, 4)  # proportional within one unit


def test_every_method_is_trained_on_while_trains_share_allows():
    strata = {"real": 12, "Noise": 2, **dict.fromkeys(("Blur", "Tint", "Warp", "Swap", "Shift", "Smooth"), 1)}
    targets = unit_targets(20, SplitRatios(0.6, 0.2, 0.2))
    for seed in range(6):
        got = stratum_counts(strata, targets, seed)
        assert all(v["train"] >= 1 for v in got.values()), got
        assert {s: sum(v[s] for v in got.values()) for s in targets} == targets
    few = stratum_counts(dict.fromkeys("abcdef", 1), unit_targets(6, SplitRatios(0.8, 0.1, 0.1)))
    assert sorted(v["train"] for v in few.values()) == [0, 0, 1, 1, 1, 1]  # train's 4 units cannot cover 6 methods
