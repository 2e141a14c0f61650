"""`fifa-data forge`: deterministic pseudo-forgeries with exact truth."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from fifa.concept_tree import rle

BIN = Path(sys.executable).parent


def _digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        if p.is_file() and p.suffix in (".png", ".jpg"):
            h.update(p.relative_to(d).as_posix().encode())
            h.update(p.read_bytes())
    t = pq.read_table(d / "manifest.parquet")
    h.update(str(t.to_pylist()).encode())
    return h.hexdigest()


def test_forge_cli_is_deterministic_and_truth_is_exact(tmp_path):
    outs = []
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        p = subprocess.run([str(BIN / "fifa-data"), "forge", "--out", str(tmp_path / name), "--n", "8", "--seed",
                            str(seed)], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(tmp_path / name)
    assert _digest(outs[0]) == _digest(outs[1])
    assert _digest(outs[0]) != _digest(outs[2])
    rows = pq.read_table(outs[0] / "manifest.parquet").to_pylist()
    fakes = [r for r in rows if r["label"] == "fake"]
    reals = {r["sample_id"]: r for r in rows if r["label"] == "real"}
    assert len(fakes) == 8 and len(reals) >= 4
    assert any(r["image_path"].endswith(".png") and "384" in r["image_path"] for r in reals.values())
    for r in fakes:
        assert r["truth"] and r["category"] in ("FS", "FE") and r["source_path"]
        m = rle.decode(r["truth_mask"])
        png = np.asarray(Image.open(outs[0] / "masks" / f"{r['sample_id']}.png")) > 0
        assert (m == png).all() and m.any()
        fake = np.asarray(Image.open(outs[0] / r["image_path"]).convert("RGB")).astype(int)
        src = np.asarray(Image.open(outs[0] / r["source_path"]).convert("RGB")).astype(int)
        assert fake.shape == src.shape
        if r["image_path"].endswith(".png"):  # lossless: outside the (feathered) edit, pixels are untouched
            grown = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).filter(
                __import__("PIL.ImageFilter", fromlist=["MaxFilter"]).MaxFilter(41))) > 0
            if r["method"] != "Warp":
                assert np.abs(fake - src)[~grown].max() <= 1
            assert np.abs(fake - src)[m].mean() > 1
