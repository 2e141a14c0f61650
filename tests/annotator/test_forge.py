"""`fifa-data forge`: deterministic pseudo-forgeries with exact truth, many identities, re-encoded pairs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from fifa.core import rle

BIN = Path(sys.executable).parent
MANIFEST = ["sample_id", "image_path", "source_path", "label", "method", "category", "group"]
FORGE_EXTRA = ["truth", "truth_target", "truth_mask", "edit"]
#: A few bases of both bundled identities: a colour crop, a greyscale crop, a small face in a frame.
BASES = ("crop1.9_384", "crop1.9_384_grey", "inframe128")
#: Edits that change every pixel they touch (a warp or a blur leaves flat patches as they were).
EVERY_PIXEL = ("SBI", "ColorShift", "RegionSwap", "Tint", "IrisRecolour")


def _digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.suffix in (".png", ".jpg"):
            h.update(p.relative_to(d).as_posix().encode())
            h.update(p.read_bytes())
    h.update(str(pq.read_table(d / "manifest.parquet").to_pylist()).encode())
    return h.hexdigest()


def _rgb(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB")).astype(np.int16)


def _forge_cli(out: Path, seed: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / "fifa-data"),
            "forge",
            "--out",
            str(out),
            "--n",
            "10",
            "--seed",
            str(seed),
            "--identities",
            "lfw",
            "--max-identities",
            "8",
            "--identity-size",
            "128",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def lossless(tmp_path_factory) -> Path:
    """Every edit kind twice, all saved losslessly, plus re-encoded pairs."""
    from fifa.annotator.forge import EDIT_TYPES, forge

    return forge(
        tmp_path_factory.mktemp("lossless"),
        n=2 * len(EDIT_TYPES),
        seed=5,
        base_tags=BASES,
        jpeg_fraction=0.0,
        jpeg_pair_fraction=0.0,
        reencoded_fraction=0.2,
    )


def test_forge_cli_is_deterministic_with_lfw_identities_as_groups(tmp_path):
    outs = []
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        p = _forge_cli(tmp_path / name, seed)
        assert p.returncode == 0, p.stderr[-2000:]
        assert "10 fakes" in p.stdout
        outs.append(tmp_path / name)
    assert _digest(outs[0]) == _digest(outs[1])
    assert _digest(outs[0]) != _digest(outs[2])
    t = pq.read_table(outs[0] / "manifest.parquet")
    assert t.column_names[: len(MANIFEST) + len(FORGE_EXTRA)] == MANIFEST + FORGE_EXTRA
    rows = t.to_pylist()
    by_path = {r["image_path"]: r for r in rows}
    fakes = [r for r in rows if r["label"] == "fake"]
    assert len(fakes) == 10
    for r in fakes:
        src = by_path[r["source_path"]]
        assert src["label"] == "real" and r["group"] == src["group"] and r["group"].startswith("lfw_")
        img = np.asarray(Image.open(outs[0] / r["image_path"]))
        assert img.shape == (128, 128, 3)
    assert len({r["group"] for r in rows}) >= 6  # one identity per lfw face: splits by group hold them out


def test_forge_cli_refuses_an_unknown_kind(tmp_path):
    p = _forge_cli(tmp_path / "x", 1, "--kinds", "Blur,Sharpen")
    assert p.returncode == 2 and "Sharpen" in p.stderr and "Traceback" not in p.stderr


def test_truth_is_exactly_where_the_lossless_fake_differs(lossless):
    """Recomputed from the written files, without any tolerance band: no pixel outside the truth mask
    differs from the source, and the truth holds no more than the pixels the edit left equal by chance."""
    rows = pq.read_table(lossless).to_pylist()
    fakes = [r for r in rows if r["label"] == "fake"]
    from fifa.annotator.forge import EDIT_TYPES

    assert {r["method"] for r in fakes} == set(EDIT_TYPES)
    for r in fakes:
        assert r["image_path"].endswith(".png") and r["source_path"].endswith(".png")
        truth = rle.decode(r["truth_mask"]).astype(bool)
        changed = (_rgb(lossless.parent / r["image_path"]) != _rgb(lossless.parent / r["source_path"])).any(axis=2)
        assert changed.any() and truth.any() and r["truth"]
        assert not (changed & ~truth).any(), (r["sample_id"], int((changed & ~truth).sum()))
        unchanged = 1 - (changed & truth).sum() / truth.sum()
        assert unchanged <= (0.01 if r["method"] in EVERY_PIXEL else 0.2), (r["sample_id"], unchanged)
        png = np.asarray(Image.open(lossless.parent / "masks" / f"{r['sample_id']}.png")) > 0
        assert (png == truth).all()


def test_subtle_edits_change_a_few_grey_levels(lossless):
    rows = [
        r
        for r in pq.read_table(lossless).to_pylist()
        if r["method"] in ("GentleWarp", "LightBlur", "Tint", "SkinSmooth")
    ]
    assert rows
    means = []
    for r in rows:
        truth = rle.decode(r["truth_mask"]).astype(bool)
        d = np.abs(_rgb(lossless.parent / r["image_path"]) - _rgb(lossless.parent / r["source_path"])).mean(axis=2)
        means.append(d[truth].mean())
        assert 0.5 <= means[-1] <= 16, (r["sample_id"], means[-1])
        assert json.loads(r["edit"])["mean_abs_change"] == pytest.approx(means[-1], abs=0.01)
    assert np.median(means) <= 8


def test_reencoded_pairs_are_real_rows_without_truth(lossless):
    rows = pq.read_table(lossless).to_pylist()
    pristine = {r["image_path"] for r in rows if r["pair_kind"] == "pristine"}
    neg = [r for r in rows if r["pair_kind"] == "reencoded"]
    assert len(neg) >= 4 and {json.loads(r["edit"])["reencode"] for r in neg} == {"jpeg", "resize"}
    for r in neg:
        assert r["label"] == "real" and r["category"] == "real" and r["method"] is None and r["truth"] == []
        assert r["source_path"] in pristine and not rle.decode(r["truth_mask"]).any()
        a, b = _rgb(lossless.parent / r["image_path"]), _rgb(lossless.parent / r["source_path"])
        assert a.shape == b.shape and (a != b).any()
    assert all(r["pair_kind"] == "forgery" for r in rows if r["label"] == "fake")


def test_jpeg_pairs_point_at_a_reencoded_source(tmp_path):
    from fifa.annotator.forge import forge

    man = forge(
        tmp_path / "j",
        n=6,
        seed=2,
        identities="lfw",
        max_identities=4,
        identity_size=128,
        jpeg_fraction=0.0,
        jpeg_pair_fraction=1.0,
        reencoded_fraction=0.0,
    )
    rows = pq.read_table(man).to_pylist()
    by_path = {r["image_path"]: r for r in rows}
    for r in (r for r in rows if r["label"] == "fake"):
        src = by_path[r["source_path"]]
        e = json.loads(r["edit"])
        assert r["image_path"].endswith(".jpg") and src["pair_kind"] == "reencoded"
        assert src["image_path"].endswith(f"_q{e['source_jpeg_q']}.jpg") and 75 <= e["fake_jpeg_q"] <= 95


def test_faces_without_a_detectable_face_are_skipped_and_counted(tmp_path):
    import skimage.data

    from fifa.annotator.forge import forge

    extra = tmp_path / "faces"
    extra.mkdir()
    Image.fromarray(skimage.data.coffee()).save(extra / "coffee.png")
    man = forge(tmp_path / "f", n=3, seed=1, faces=extra, identities="lfw", max_identities=3, identity_size=128)
    info = json.loads((man.parent / "forge.json").read_text())
    assert info["skipped_faces"] == len(info["skipped"]) >= 1 and "coffee" in info["skipped"]
    groups = {r["group"] for r in pq.read_table(man).to_pylist()}
    assert "coffee" not in groups and info["bases"] == len(groups)
