"""fifa-data release and validate: layout, card, checksums, the real datasets library, reproducibility."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from build_helpers import run_data

from fifa.pipelines.buildinfo import MACHINE_PATH
from fifa.pipelines.release import ReleaseConfig, ReleaseError, release
from fifa.pipelines.validate import validate

CONFIG_SPLITS = {
    "instruct": ("train", "validation"),
    "bench": ("test",),
    "annotations": ("train", "validation", "test"),
}


@pytest.fixture(scope="module")
def releases(built, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("releases")
    ref = d / "ref"
    release(built, ref, ReleaseConfig(version="0.1.0"))
    emb = d / "emb"
    release(built, emb, ReleaseConfig(version="0.1.0", images="embed", max_shard_bytes=3_000_000, unit_rows=5))
    return {"ref": ref, "emb": emb}


def rows_in_build(built: Path, config: str, split: str) -> int:
    if config == "bench":
        return pq.read_metadata(built / "bench.parquet").num_rows
    return sum(pq.read_metadata(p).num_rows for p in (built / config).glob(f"{split}*.parquet"))


def test_layout_manifest_and_shards(built, releases):
    for rel in releases.values():
        man = json.loads((rel / "MANIFEST.json").read_text())
        files = {str(p.relative_to(rel)) for p in rel.rglob("*") if p.is_file()} - {"MANIFEST.json"}
        assert set(man["files"]) == files
        for f, entry in man["files"].items():
            assert hashlib.sha256((rel / f).read_bytes()).hexdigest() == entry["sha256"]
        for config, splits in CONFIG_SPLITS.items():
            for split in splits:
                shards = sorted((rel / "data" / config).glob(f"{split}-*.parquet"))
                n = len(shards)
                assert [s.name for s in shards] == [f"{split}-{k:05d}-of-{n:05d}.parquet" for k in range(n)]
                assert sum(pq.read_metadata(s).num_rows for s in shards) == rows_in_build(built, config, split)
    emb_train = sorted((releases["emb"] / "data" / "instruct").glob("train-*.parquet"))
    assert len(emb_train) > 1  # cut by bytes
    assert all(s.stat().st_size <= 3_000_000 for s in emb_train)  # estimates are uncompressed sizes


def test_card_header_and_content(releases, built):
    text = (releases["ref"] / "README.md").read_text()
    head = yaml.safe_load(text.split("---\n")[1])
    names = {c["config_name"]: c for c in head["configs"]}
    assert set(names) == set(CONFIG_SPLITS)
    assert [d["split"] for d in names["annotations"]["data_files"]] == list(CONFIG_SPLITS["annotations"])
    meta = json.loads((built / "build.json").read_text())
    assert meta["tree_version"] in text and "offline/none/offline-v3" in text
    assert "public domain" in text and "fifa-data forge" in text  # the forge's source and how to get its images
    assert "## How it was made" in text and "| `det` |" in text
    assert str(built) not in text and "/tmp/" not in (releases["ref"] / "release.json").read_text()


def test_datasets_loads_every_config_and_split(built, releases, tmp_path):
    import datasets

    cache = str(tmp_path / "hf-cache")  # a fresh cache: datasets may reuse an older folder's rows otherwise
    for name, rel in releases.items():
        layout = json.loads((rel / "release.json").read_text())["configs"]
        assert {c: set(v) for c, v in layout.items()} == {c: set(v) for c, v in CONFIG_SPLITS.items()}
        for config, splits in CONFIG_SPLITS.items():
            files = {s: sorted(str(p) for p in (rel / "data" / config).glob(f"{s}-*.parquet")) for s in splits}
            ds = datasets.load_dataset("parquet", data_files=files, cache_dir=cache)
            by_card = datasets.load_dataset(str(rel), config, cache_dir=cache)
            for s in splits:
                assert (
                    ds[s].num_rows
                    == by_card[s].num_rows
                    == rows_in_build(built, config, s)
                    == layout[config][s]["rows"]
                )
            assert set(by_card) == set(splits)
        default = datasets.load_dataset(str(rel), cache_dir=cache)  # no config name: the card's default, instruct
        assert {s: d.num_rows for s, d in default.items()} == {s: v["rows"] for s, v in layout["instruct"].items()}
        card = datasets.load_dataset(str(rel), "instruct", cache_dir=cache)
        row = card["train"][0]
        assert row["messages"][0]["role"] == "user"
        if name == "emb":
            assert isinstance(card["train"].features["image"], datasets.Image)
            from PIL import Image as PILImage

            img = card["train"][0]["image"]
            assert isinstance(img, PILImage.Image)
            bench = datasets.load_dataset(str(rel), "bench", cache_dir=cache)["test"]
            q = next(r for r in bench if r["task"] == "loc" and r["masks"])
            assert list(q["masks"][0]["size"]) == [q["image"].height, q["image"].width]
        else:
            assert row["image"]["bytes"] is None and not row["image"]["path"].startswith("/")


def test_two_releases_same_bytes(built, releases, tmp_path):
    again = tmp_path / "again"
    release(built, again, ReleaseConfig(version="0.1.0", images="embed", max_shard_bytes=3_000_000, unit_rows=5))
    a = json.loads((releases["emb"] / "MANIFEST.json").read_text())
    b = json.loads((again / "MANIFEST.json").read_text())
    assert a == b
    assert (releases["emb"] / "MANIFEST.json").read_bytes() == (again / "MANIFEST.json").read_bytes()


def test_validate_ok_and_cli(releases, tmp_path):
    for rel in releases.values():
        rep = validate(rel)
        assert rep.ok, rep.lines()
        assert rep.checked["masks"] > 100
    r = run_data("validate", str(releases["ref"]))
    assert r.returncode == 0 and r.stdout.startswith("ok:")


def _copy(rel: Path, tmp: Path) -> Path:
    dst = tmp / "r"
    shutil.copytree(rel, dst)
    return dst


def _rewrite(rel: Path, relpath: str, change) -> None:
    """Apply ``change`` to a file's rows and fix MANIFEST.json (so only the semantic problem remains)."""
    p = rel / relpath
    t = pq.read_table(p)
    rows = t.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), p)
    man = json.loads((rel / "MANIFEST.json").read_text())
    man["files"][relpath] = {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
    (rel / "MANIFEST.json").write_text(json.dumps(man))


def test_validate_finds_a_changed_file(releases, tmp_path):
    rel = _copy(releases["ref"], tmp_path)
    p = next((rel / "data" / "bench").glob("test-*.parquet"))
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    (rel / "extra.txt").write_text("x")
    lines = validate(rel).lines()
    assert any("[checksum] data/bench/test-00000-of-00001.parquet: sha256 differs" in x for x in lines)
    assert any("extra.txt: present but not listed" in x for x in lines)
    r = run_data("validate", str(rel))
    assert r.returncode == 1 and "sha256 differs" in r.stdout


def test_validate_finds_a_broken_mask(releases, tmp_path):
    rel = _copy(releases["ref"], tmp_path)
    relpath = "data/instruct/train-00000-of-00001.parquet"

    def change(rows):
        r = next(r for r in rows if r["task"] == "age" and r["masks"])
        r["masks"][0]["counts"] = "garbage!!"
        change.id = r["id"]

    _rewrite(rel, relpath, change)
    probs = [p for p in validate(rel).problems if p.kind == "mask"]
    assert len(probs) == 1 and change.id in probs[0].where and relpath in probs[0].where
    assert "does not decode" in probs[0].what


def test_validate_finds_marks_without_masks(releases, tmp_path):
    rel = _copy(releases["ref"], tmp_path)

    def change(rows):
        r = next(r for r in rows if r["task"] == "age" and len(r["masks"]) > 1)
        r["masks"] = r["masks"][:-1]
        change.id = r["id"]

    _rewrite(rel, "data/instruct/train-00000-of-00001.parquet", change)
    probs = [p for p in validate(rel).problems if p.kind == "marks"]
    assert len(probs) == 1 and change.id in probs[0].where and "mark(s)" in probs[0].what


def test_validate_finds_split_leakage(releases, tmp_path):
    rel = _copy(releases["ref"], tmp_path)
    test_file = "data/annotations/test-00000-of-00001.parquet"
    group = pq.read_table(rel / test_file).column("group")[0].as_py()

    other = pq.read_table(rel / test_file).to_pylist()
    # one more image of a test group, filed under train
    _rewrite(
        rel,
        "data/annotations/train-00000-of-00001.parquet",
        lambda rows: rows.append(
            dict(next(r for r in other if r["group"] == group), sample_id="leaked", split="train")
        ),
    )
    leaks = [str(p) for p in validate(rel).problems if p.kind == "leak"]
    assert any(f"group {group!r} is in more than one split" in x for x in leaks)


def test_release_bad_input(built, tmp_path):
    with pytest.raises(ReleaseError, match="not a build folder"):
        release(tmp_path, tmp_path / "r", ReleaseConfig(version="1"))
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "keep.txt").write_text("x")
    r = run_data("release", "--build", str(built), "--version", "1", "--out", str(tmp_path / "occupied"))
    assert r.returncode == 2 and "not a release folder" in r.stderr
    r = run_data("release", "--build", str(built), "--version", "1", "--out", str(tmp_path / "ok"), "--images", "zip")
    assert r.returncode == 2


def test_release_json_holds_no_machine_path(built, tmp_path):
    """``fifa-annotate run`` records settings as given: its response cache folder absolute, under the home
    folder (``openai.cache_dir``), and an absolute ``--data-root``. ``release.json`` carries the build settings
    without them (a real chain's release held ``/root/.cache/fifa-toolkit/llm``)."""
    from fifa.core.llm_cache import default_cache_dir

    b = built.parent / "build-with-cli-settings"  # beside the build: its relative image root still resolves
    if not b.exists():
        shutil.copytree(built, b)
    meta = json.loads((b / "build.json").read_text())
    cfg = meta["inputs"][0]["annotator"]["config"]
    cache, data_root = str(default_cache_dir()), str(Path.home() / "faces")
    cfg.setdefault("openai", {})["cache_dir"] = cache
    cfg["data_root"] = data_root
    (b / "build.json").write_text(json.dumps(meta))
    release(b, tmp_path / "r", ReleaseConfig(version="1"))
    text = (tmp_path / "r" / "release.json").read_text()
    assert cache not in text and data_root not in text and str(Path.home()) + "/" not in text
    got = json.loads(text)["build"]["inputs"][0]["annotator"]["config"]
    assert got["openai"]["cache_dir"] == got["data_root"] == MACHINE_PATH
    assert got["diff"] == cfg["diff"]  # the other settings are kept as they were
    assert validate(tmp_path / "r").ok
