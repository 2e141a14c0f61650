"""`fifa-tree segment` end to end: Parquet contract, overlays, per-image statuses, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fifa.concept_tree.tree import load_tree
from fifa.core import rle

FIFA_TREE = str(Path(sys.executable).parent / "fifa-tree")


def run(*args):
    return subprocess.run([FIFA_TREE, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, astronaut_rgb, grace_hopper_path):
    import skimage.data

    d = tmp_path_factory.mktemp("mixed")
    Image.fromarray(astronaut_rgb).save(d / "astronaut.png")
    (d / "sub").mkdir()
    (d / "sub" / "grace.jpg").write_bytes(grace_hopper_path.read_bytes())
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.png").write_text("not an image")
    data = grace_hopper_path.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    Image.fromarray(skimage.data.coffee()).save(d / "coffee.png")  # no face
    Image.new("RGB", (8, 8)).save(d / "tiny.png")
    return d


@pytest.fixture(scope="module")
def mixed_run(mixed_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("segout")
    res = run("segment", str(mixed_dir), "--out", str(out))
    return res, out


def test_exit_code_and_summary(mixed_run):
    res, _ = mixed_run
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr


def test_regions_parquet_contract(mixed_run, astronaut_rgb):
    _, out = mixed_run
    t = pq.read_table(out / "regions.parquet")
    for col in ("image", "node_id", "mask", "area"):
        assert col in t.column_names
    assert t.schema.field("mask").type == pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])
    df = t.to_pandas()
    assert set(df.image) == {"astronaut.png", "sub/grace.jpg"}
    tree = load_tree()
    astro = df[df.image == "astronaut.png"].set_index("node_id")
    assert set(astro.index) <= {n.id for n in tree.nodes}
    assert {"left_iris", "nose_tip", "left_eye", "face", "face_image", "background"} <= set(astro.index)
    for _, row in astro.iterrows():  # area column agrees with the mask, masks are image-sized
        m = row["mask"]
        assert list(m["size"]) == [512, 512]
        assert rle.area({"size": list(m["size"]), "counts": m["counts"]}) == row["area"] > 0
    assert astro.loc["face", "area"] == sum(
        astro.loc[n.id, "area"] for n in tree.leaves(under="face") if n.id in astro.index
    )


def test_statuses_with_reasons(mixed_run):
    _, out = mixed_run
    imgs = pq.read_table(out / "images.parquet").to_pandas().set_index("image")
    assert len(imgs) == 7
    assert imgs.loc["astronaut.png", "status"] == "ok"
    assert imgs.loc["sub/grace.jpg", "status"] == "ok"
    assert imgs.loc["coffee.png", "status"] == "no_face"
    expected = {
        "empty.jpg": "empty_file",
        "notes.png": "not_an_image",
        "truncated.jpg": "truncated",
        "tiny.png": "too_small",
    }
    for name, code in expected.items():
        assert imgs.loc[name, "status"] == "failed"
        assert imgs.loc[name, "error_code"] == code
        assert imgs.loc[name, "error"]


def test_overlays_written(mixed_run):
    _, out = mixed_run
    pngs = sorted(p.name for p in (out / "overlays").glob("*.png"))
    assert pngs == ["astronaut.png", "sub__grace.png"]
    im = np.asarray(Image.open(out / "overlays" / "astronaut.png"))
    assert im.shape[0] >= 512 and im.shape[1] > 512  # legend panel added on the right


def test_no_overlays_all_faces(tmp_path, astronaut_rgb, grace_hopper_rgb):
    import cv2

    canvas = np.full((320, 540, 3), 128, np.uint8)
    canvas[60:260, 10:210] = cv2.resize(astronaut_rgb[10:250, 60:300], (200, 200))
    canvas[10:310, 230:530] = cv2.resize(grace_hopper_rgb[40:400, 70:430], (300, 300))
    Image.fromarray(canvas).save(tmp_path / "two.png")
    out = tmp_path / "out"
    res = run("segment", str(tmp_path / "two.png"), "--out", str(out), "--no-overlays", "--all-faces")
    assert res.returncode == 0, res.stderr
    assert not (out / "overlays").exists()
    df = pq.read_table(out / "regions.parquet").to_pandas()
    assert sorted(df.face_index.unique()) == [0, 1]


def test_nothing_succeeded_exits_1(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"")
    res = run("segment", str(tmp_path), "--out", str(tmp_path / "o"))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "empty_file" in res.stderr


def test_missing_input_exits_2(tmp_path):
    res = run("segment", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "no such file" in res.stderr and "Traceback" not in res.stderr


def test_help_has_example():
    res = run("segment", "--help")
    assert res.returncode == 0 and "Example" in res.stdout and "fifa-tree segment" in res.stdout
