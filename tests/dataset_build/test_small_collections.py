"""Pilot collections of 1, 2, 3 and 6 split units through build, release, validate, export and the real loaders.

With >= 3 units every split gets a unit; with fewer, the empty splits are named by the build and left out
(never registered) by the release, its card, ``fifa-data validate`` and the exports, so that
``datasets.load_dataset`` and LLaMA-Factory's loader never meet a split without rows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from build_helpers import build_config, run_data
from test_export import llamafactory_read

from fifa.pipelines.splits import SplitRatios

RATIOS = SplitRatios(0.8, 0.1, 0.1)


def regrouped(ann: Path, out: Path, n_units: int) -> Path:
    """A copy of the annotation folder whose rows fall into ``n_units`` unlinked groups."""
    shutil.copytree(ann, out, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
    shards = sorted((out / "annotations").glob("part-*.parquet"))
    groups = sorted({g for s in shards for g in pq.read_table(s, columns=["group"])["group"].to_pylist()})
    for s in shards:
        t = pq.read_table(s)
        new = [f"pilot{groups.index(g) % n_units}" for g in t["group"].to_pylist()]
        t = t.set_column(t.schema.get_field_index("group"), "group", pa.array(new, pa.string()))
        t = t.set_column(t.schema.get_field_index("identities"), "identities", pa.nulls(t.num_rows, pa.string()))
        pq.write_table(t, s)
    return out


@pytest.fixture(scope="module")
def pilots(annotated, tmp_path_factory) -> dict[int, dict]:
    from fifa.pipelines.build import build
    from fifa.pipelines.release import ReleaseConfig, release

    d = tmp_path_factory.mktemp("pilots")
    out = {}
    for n in (1, 2, 3, 6):
        ann = regrouped(annotated["ann"], d / f"ann{n}", n)
        b = build([ann], d / f"build{n}", build_config(ratios=RATIOS, seed=1))
        r = release(d / f"build{n}", d / f"rel{n}", ReleaseConfig(version="0.1"))
        out[n] = {"build": Path(b.out), "summary": b, "release": Path(r.out), "rel_summary": r}
    return out


EMPTY = {1: ["validation", "test"], 2: ["validation", "test"], 3: [], 6: []}


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_build_names_the_empty_splits(pilots, n):
    p = pilots[n]
    meta = json.loads((p["build"] / "build.json").read_text())
    assert meta["split_units"] == n and meta["empty_splits"] == EMPTY[n]
    warned = [w for w in p["summary"].warnings if "empty" in w]
    if EMPTY[n]:
        assert len(warned) == 1 and "validation, test empty" in warned[0] and f"{n} split unit" in warned[0]
    else:
        assert warned == [] and p["summary"].rows["validation"] > 0 and p["summary"].bench > 0


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_release_registers_only_splits_with_rows_and_datasets_loads_them(pilots, n, tmp_path):
    import datasets

    rel, s = pilots[n]["release"], pilots[n]["rel_summary"]
    meta = json.loads((rel / "release.json").read_text())
    want_empty = (
        {"instruct": ["validation"], "bench": ["test"], "annotations": ["validation", "test"]} if EMPTY[n] else {}
    )
    assert meta["empty_splits"] == s.empty == want_empty
    card = (rel / "README.md").read_text()
    head = yaml.safe_load(card.split("---\n")[1])
    registered = {c["config_name"]: [f["split"] for f in c["data_files"]] for c in head["configs"]}
    for config, splits in registered.items():
        assert all(meta["configs"][config][sp]["rows"] > 0 for sp in splits)
        assert not set(splits) & set(want_empty.get(config, []))
    assert sorted(p.name.split("-")[0] for p in (rel / "data" / "annotations").iterdir()) == (
        ["train"] if EMPTY[n] else ["test", "train", "validation"]
    )
    if EMPTY[n]:
        assert "bench" not in registered and "**Left out:" in card and "`bench` test" in card
    else:
        assert "Left out" not in card
    cache = str(tmp_path / "hf")
    assert sorted(datasets.get_dataset_config_names(str(rel))) == sorted(registered)
    for config, splits in registered.items():
        ds = datasets.load_dataset(str(rel), config, cache_dir=cache)
        assert {k: v.num_rows for k, v in ds.items()} == {sp: meta["configs"][config][sp]["rows"] for sp in splits}
    if EMPTY[n]:
        with pytest.raises(ValueError):  # what the user gets asking for the missing config: a clear refusal
            datasets.load_dataset(str(rel), "bench", cache_dir=cache)
    else:
        assert datasets.load_dataset(str(rel), "bench", cache_dir=cache)["test"].num_rows == pilots[n]["summary"].bench


@pytest.mark.parametrize("n", [1, 6])
def test_validate_accepts_a_left_out_split_and_says_so(pilots, n):
    from fifa.pipelines.validate import validate

    rep = validate(pilots[n]["release"])
    assert rep.ok, rep.lines()
    assert bool(rep.notes) == bool(EMPTY[n])
    if EMPTY[n]:
        assert any("bench/test is left out" in x for x in rep.notes)
        r = run_data("validate", str(pilots[n]["release"]))
        assert r.returncode == 0 and "note: bench/test is left out" in r.stdout


def test_validate_refuses_a_registered_empty_split(pilots, tmp_path):
    """A release that registers an empty split (as releases did before) is a problem, not a note."""
    from fifa.pipelines.release import CONFIGS
    from fifa.pipelines.validate import validate

    rel = tmp_path / "rel"
    shutil.copytree(pilots[2]["release"], rel)
    path = rel / "data" / "bench" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(CONFIGS["bench"][1].empty_table(), path)
    card = (rel / "README.md").read_text()
    head_end = card.index("\n---\n", 4)
    head = yaml.safe_load(card[4:head_end])
    head["configs"].append(
        {"config_name": "bench", "data_files": [{"split": "test", "path": "data/bench/test-*.parquet"}]}
    )
    (rel / "README.md").write_text("---\n" + yaml.safe_dump(head, sort_keys=False) + card[head_end + 1 :])
    lines = "\n".join(validate(rel).lines())
    assert (
        "bench/test but holds no row" in lines and "registers split 'test', which release.json lists as empty" in lines
    )


@pytest.mark.parametrize("n", [2, 3])
def test_exports_leave_an_empty_split_out_and_llamafactory_loads_the_rest(pilots, n, tmp_path):
    from fifa.pipelines.export import export

    out = tmp_path / "exp"
    out.mkdir()
    # a stale entry and file of an earlier export into the same folder must not survive
    (out / "llamafactory").mkdir()
    (out / "llamafactory" / "validation.json").write_text("[]\n")
    (out / "dataset_info.json").write_text(
        json.dumps({"mine": {"file_name": "x.json"}, "fifa_validation": {"file_name": "llamafactory/validation.json"}})
    )
    for fmt in ("llava", "llamafactory", "swift", "glamm"):
        s = export(pilots[n]["build"], fmt, out)
        want = ["validation"] if EMPTY[n] else []
        if fmt == "glamm":  # glamm carries age rows of fakes only: validation may hold none of them
            want = [sp for sp in ("train", "validation") if not s.rows[sp]]
        assert s.empty == want
        for sp in ("train", "validation"):
            files = list((out / fmt).glob(f"{sp}.*"))
            assert (len(files) == 1) == (sp not in s.empty) and (s.rows[sp] > 0) == (sp not in s.empty)
    info = json.loads((out / "dataset_info.json").read_text())
    assert "mine" in info  # other datasets of the folder are kept
    registered = sorted(k for k in info if k.startswith("fifa_"))
    assert registered == (["fifa_train"] if EMPTY[n] else ["fifa_train", "fifa_validation"])
    for name in registered:  # LLaMA-Factory 0.9.5's loader steps on every registered entry: rows, none refused
        kept, problems = llamafactory_read(out, name)
        assert kept and problems == []
    r = run_data("export", "--build", str(pilots[n]["build"]), "--format", "llamafactory", "--out", str(out))
    assert r.returncode == 0
    assert ("left out: split(s) validation" in r.stderr) == bool(EMPTY[n])
