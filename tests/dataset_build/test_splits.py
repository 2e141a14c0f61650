"""Split units (groups linked by identities), stratification by method, determinism."""

from __future__ import annotations

import polars as pl
import pytest

from fifa.pipelines.splits import SplitRatios, assign_splits, leaks, split_units


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
    f = pl.DataFrame(dict(sample_id=["a", "b", "c", "d", "e"], group=["000", "003", "003", "010", None],
                          identities=["000|003", None, None, "010", None]))
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
    f = pl.DataFrame(dict(sample_id=["a", "b", "c"], group=["A", "B", "C"], identities=["A|B", None, None],
                          split=["train", "test", "test"]))
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
