"""DeepfakeBench dataset JSON importer, on JSON laid out as its preprocessing/rearrange.py writes it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest
from import_trees import dfb_json, edit, face_frame, moving

from fifa.pipelines.cli import main
from fifa.pipelines.importers import DFBConfig, import_deepfakebench


def _cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as e:
        main(["import", "deepfakebench", *argv])
    return e.value.code


def _frames(rgb_dir: Path, rel: str, images) -> list[str]:
    """Write frames NNN.png under rgb_dir/rel; their paths as DeepfakeBench's released JSONs hold them
    (relative to rgb_dir, Windows separators)."""
    d = rgb_dir / rel
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for k, img in images:
        cv2.imwrite(str(d / f"{k:03d}.png"), img)
        out.append(f"{rel}/{k:03d}.png".replace("/", "\\"))
    return out


@pytest.fixture(scope="module")
def dfb(tmp_path_factory, astronaut_rgb, grace_hopper_rgb):
    """rgb/ with FF++ c23 frames of 000, 001 and Deepfakes 000_001, 001_000; FF-DF.json as rearrange.py
    writes it ({FF-DF: {FF-real: ..., FF-DF: ...}}, split -> c23 -> video) and a Celeb-DF-v2.json
    (no compression level, a test video repeated as val)."""
    tmp = tmp_path_factory.mktemp("dfb")
    rgb = tmp / "datasets" / "rgb"
    bases = {"000": face_frame(astronaut_rgb), "001": face_frame(grace_hopper_rgb)}
    ks = [0, 10, 20, 30]
    yt = "FaceForensics++/original_sequences/youtube/c23/frames"
    df = "FaceForensics++/manipulated_sequences/Deepfakes/c23/frames"
    real = {
        v: {"label": "FF-real", "frames": _frames(rgb, f"{yt}/{v}", [(k, moving(b, k // 10)) for k in ks])}
        for v, b in bases.items()
    }
    fake = {
        f"{a}_{b}": {
            "label": "FF-DF",
            "frames": _frames(rgb, f"{df}/{a}_{b}", [(k, edit(bases[a], k // 10, "colour")) for k in ks]),
            "masks": [],
        }
        for a, b in (("000", "001"), ("001", "000"))
    }
    split = {"000": "train", "001": "test"}
    doc = {
        "FF-DF": {
            "FF-real": {
                s: {"c23": {v: e for v, e in real.items() if split[v] == s}, "c40": {}}
                for s in ("train", "val", "test")
            },
            "FF-DF": {
                s: {"c23": {v: e for v, e in fake.items() if split[v[:3]] == s}} for s in ("train", "val", "test")
            },
        }
    }
    ffdf = dfb_json(tmp / "dataset_json" / "FF-DF.json", doc)
    celeb_real = _frames(rgb, "Celeb-DF-v2/Celeb-real/frames/id3_0002", [(0, moving(bases["001"], 0))])
    celeb_fake = _frames(rgb, "Celeb-DF-v2/Celeb-synthesis/frames/id3_id7_0002", [(0, edit(bases["001"], 0, "colour"))])
    entry_r = {"label": "CelebDFv2_real", "frames": celeb_real}
    entry_f = {"label": "CelebDFv2_fake", "frames": celeb_fake}
    celeb = dfb_json(
        tmp / "dataset_json" / "Celeb-DF-v2.json",
        {
            "Celeb-DF-v2": {
                "CelebDFv2_real": {"train": {}, "val": {"id3_0002": entry_r}, "test": {"id3_0002": entry_r}},
                "CelebDFv2_fake": {"train": {}, "val": {"id3_id7_0002": entry_f}, "test": {"id3_id7_0002": entry_f}},
            }
        },
    )
    return tmp, rgb, ffdf, celeb


def test_ffpp_json_rows_pairs_and_splits(dfb, tmp_path):
    tmp, rgb, ffdf, celeb = dfb
    out = tmp / "m.parquet"  # next to datasets/: paths stay inside the manifest's folder
    rep = import_deepfakebench([ffdf, celeb], out, DFBConfig(root=rgb))
    rows = {r["sample_id"]: r for r in pq.read_table(out).to_pylist()}
    assert rep.failures == [] and len(rows) == 2 * 4 + 2 * 4 + 2
    f = rows["dfb/FF-DF/c23/FF-DF/001_000/020"]
    assert (f["label"], f["method"], f["category"], f["group"], f["identities"], f["official_split"]) == (
        "fake",
        "Deepfakes",
        "FS",
        "001",
        "001|000",
        "test",
    )
    assert f["image_path"] == "datasets/rgb/FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/001_000/020.png"
    assert f["source_path"] == rows["dfb/FF-DF/c23/FF-real/001/020"]["image_path"]
    assert rows["dfb/FF-DF/c23/FF-real/000/000"]["official_split"] == "train"
    c = rows["dfb/Celeb-DF-v2/CelebDFv2_fake/id3_id7_0002/000"]
    assert (c["method"], c["group"], c["identities"], c["official_split"]) == (
        "CelebDF",
        "id3_0002",
        "CelebDF:id3|CelebDF:id7",
        "validation|test",
    )
    assert c["source_path"] == rows["dfb/Celeb-DF-v2/CelebDFv2_real/id3_0002/000"]["image_path"]
    for r in rows.values():
        assert (out.parent / r["image_path"]).is_file()
    assert not rep.notes  # nothing outside the manifest's folder


def test_frames_option_and_outside_paths_note(dfb, tmp_path):
    _, rgb, ffdf, _ = dfb
    out = tmp_path / "sub" / "m.jsonl"
    rep = import_deepfakebench([ffdf], out, DFBConfig(root=rgb, frames=2))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted({r["frame"] for r in rows}) == [0, 30] and len(rows) == 4 * 2
    assert rows[0]["image_path"].startswith("../")  # relative to the manifest's folder, outside it
    assert any("--data-root" in n for n in rep.notes)


def test_missing_frames_are_recorded(dfb, tmp_path):
    tmp, rgb, ffdf, _ = dfb
    doc = json.loads(ffdf.read_text())
    doc["FF-DF"]["FF-DF"]["train"]["c23"]["000_001"]["frames"].append(
        "FaceForensics++\\manipulated_sequences\\Deepfakes\\c23\\frames\\000_001\\040.png"
    )
    broken = dfb_json(tmp_path / "FF-DF.json", doc)
    rep = import_deepfakebench([broken], tmp_path / "m.parquet", DFBConfig(root=rgb))
    assert rep.rows == 16
    assert [(f.item, f.stage) for f in rep.failures] == [("dfb/FF-DF/c23/FF-DF/000_001/040", "missing")]


def test_unknown_label_names_it_and_the_file(dfb, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FIFA_METHODS", raising=False)
    _, rgb, ffdf, _ = dfb
    doc = json.loads(ffdf.read_text())
    doc["FF-DF"]["MyLab_fake"] = doc["FF-DF"].pop("FF-DF")
    p = dfb_json(tmp_path / "x.json", doc)
    assert _cli(str(p), "--root", str(rgb), "--out", str(tmp_path / "m.parquet")) == 2
    err = capsys.readouterr().err
    assert "MyLab" in err and "methods.yaml" in err and "Traceback" not in err
    mine = tmp_path / "mine.yaml"
    mine.write_text("methods:\n  MyLab: {category: FR, definition: ours.}\n")
    assert _cli(str(p), "--root", str(rgb), "--out", str(tmp_path / "m.parquet"), "--methods", str(mine)) == 0


def test_wrong_inputs_are_clear_errors(dfb, tmp_path, capsys):
    _, rgb, ffdf, _ = dfb
    ddvqa_like = dfb_json(tmp_path / "dd.json", {"0_000_001": {"0": {"question": "q", "answer": ["a"]}}})
    assert _cli(str(ddvqa_like), "--root", str(rgb), "--out", str(tmp_path / "m.parquet")) == 2
    assert "no train/val/test splits" in capsys.readouterr().err
    assert _cli(str(ffdf), "--out", str(tmp_path / "m.parquet")) == 2  # relative paths, no --root
    err = capsys.readouterr().err
    assert "--root" in err and "rgb_dir" in err
    notjson = tmp_path / "n.json"
    notjson.write_text("{nope")
    assert _cli(str(notjson), "--out", str(tmp_path / "m.parquet")) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_dfdc_split_stored_as_a_video_is_skipped_with_a_note(tmp_path, astronaut_rgb):
    """DeepfakeBench's DFDC writer stores one test video as the `val` split itself; absolute paths."""
    img = tmp_path / "frames" / "aaa" / "000.png"
    img.parent.mkdir(parents=True)
    cv2.imwrite(str(img), face_frame(astronaut_rgb))
    entry = {"label": "DFDC_Fake", "frames": [str(img)]}
    p = dfb_json(tmp_path / "DFDC.json", {"DFDC": {"DFDC_Fake": {"train": {}, "test": {"aaa": entry}, "val": entry}}})
    rep = import_deepfakebench([p], tmp_path / "m.parquet")
    row = pq.read_table(tmp_path / "m.parquet").to_pylist()[0]
    assert rep.rows == 1 and (row["method"], row["category"], row["group"], row["identities"]) == (
        "DFDC",
        "FS",
        "aaa",
        None,
    )
    assert any("single video entry" in n for n in rep.notes)
