"""Plain folder importer (real/, fake/<method>/, optional source/) and the manifest's identities column."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from PIL import Image

from fifa.annotator.manifest import read_manifest
from fifa.pipelines.cli import main
from fifa.pipelines.importers import FoldersConfig, import_folders
from fifa.pipelines.manifest import ManifestError, join_identities, write_manifest


def _cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(["import", "folders", *argv])
    return e.value.code


def _save(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def tree(tmp_path, astronaut_rgb, grace_hopper_rgb):
    root = tmp_path / "set"
    a, g = astronaut_rgb[:256, :256], grace_hopper_rgb[:256, :256]
    _save(root / "real" / "alice" / "a1.jpg", a)
    _save(root / "real" / "bob.png", g)
    _save(root / "source" / "alice" / "a1.jpg", a)
    _save(root / "source" / "bob.png", g)
    _save(root / "source" / "x" / "dup.png", g)
    _save(root / "source" / "y" / "dup.png", g)
    _save(root / "fake" / "FaceApp" / "alice" / "a1.jpg", 255 - a)  # same relative path as its source
    _save(root / "fake" / "FaceApp" / "bob.jpg", 255 - g)  # same stem, other suffix
    _save(root / "fake" / "SimSwap" / "dup.png", 255 - g)  # two candidate sources: none chosen
    _save(root / "fake" / "SimSwap" / "lonely.png", 255 - g)
    return root


def test_rows_sources_and_groups(tree):
    out = tree / "manifest.parquet"
    assert _cli(str(tree), "--out", str(out)) == 0
    rows = {r["sample_id"]: r for r in pq.read_table(out).to_pylist()}
    assert set(rows) == {
        "folders/real/alice/a1.jpg",
        "folders/real/bob.png",
        "folders/fake/FaceApp/alice/a1.jpg",
        "folders/fake/FaceApp/bob.jpg",
        "folders/fake/SimSwap/dup.png",
        "folders/fake/SimSwap/lonely.png",
    }
    r = rows["folders/fake/FaceApp/alice/a1.jpg"]
    assert (r["source_path"], r["method"], r["category"], r["group"]) == (
        "source/alice/a1.jpg",
        "FaceApp",
        "FE",
        "alice",
    )
    assert rows["folders/fake/FaceApp/bob.jpg"]["source_path"] == "source/bob.png"
    assert rows["folders/fake/SimSwap/dup.png"]["source_path"] is None
    assert rows["folders/real/alice/a1.jpg"]["group"] == "alice" and rows["folders/real/bob.png"]["group"] == "bob"
    assert rows["folders/real/bob.png"]["category"] == "real" and rows["folders/real/bob.png"]["method"] is None
    report = json.loads((tree / "manifest.import.json").read_text())
    assert any("2 fake(s) without a matching image" in n and "1 with several" in n for n in report["notes"])
    # the annotator reads it back, paths inside the manifest's folder
    back = {m.sample_id: m for m in read_manifest(out)}
    assert back["folders/fake/FaceApp/bob.jpg"].source_path == str(tree / "source" / "bob.png")


def test_unknown_method_and_wrong_folder(tree, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FIFA_METHODS", raising=False)
    (tree / "fake" / "Sorcery").mkdir()
    assert _cli(str(tree), "--out", str(tmp_path / "m.csv")) == 2
    err = capsys.readouterr().err
    assert "Sorcery" in err and "methods.yaml" in err
    assert _cli(str(tree / "real"), "--out", str(tmp_path / "m.csv")) == 2
    err = capsys.readouterr().err
    assert "neither real/ nor fake/" in err and "pass its parent" in err


def test_empty_method_folder_is_recorded(tree, tmp_path):
    (tree / "fake" / "StyleGAN").mkdir()
    out = tmp_path / "elsewhere" / "m.jsonl"
    rep = import_folders(tree, out, FoldersConfig(prefix="mine"))
    assert rep.rows == 6 and [f.stage for f in rep.failures] == ["missing"]
    first = json.loads(out.read_text().splitlines()[0])
    assert first["sample_id"].startswith("mine/") and first["image_path"].startswith("../")
    assert any("--data-root" in n for n in rep.notes)


def test_identities_column_is_optional_and_checked(tmp_path):
    base = {"image_path": "a.png", "label": "fake", "method": "Deepfakes", "category": "FS", "group": "000"}
    write_manifest([{"sample_id": "a", **base}], tmp_path / "plain.parquet")
    assert pq.read_table(tmp_path / "plain.parquet").to_pylist()[0].get("identities") is None  # absent or null
    rows = [
        {"sample_id": "a", **base, "identities": join_identities(["000", "003", "000"])},
        {"sample_id": "b", **base, "identities": None},
    ]
    for suffix in (".parquet", ".csv", ".jsonl"):
        write_manifest(rows, tmp_path / f"m{suffix}")
    t = pq.read_table(tmp_path / "m.parquet")
    assert t.column_names[:8] == [
        "sample_id",
        "image_path",
        "source_path",
        "label",
        "method",
        "category",
        "group",
        "identities",
    ]
    assert t.column("identities").to_pylist() == ["000|003", None]
    assert (tmp_path / "m.csv").read_text().splitlines()[1].endswith('"000|003"')
    with pytest.raises(ManifestError, match="identities"):
        write_manifest([{"sample_id": "a", **base, "identities": "000||003"}], tmp_path / "bad.parquet")
