"""scripts/compare_demo.py: two demo outputs compared by content (names, times, row order and paths aside)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import compare_demo


def _demo(root: Path, part: str, order: list[int], t0: float) -> Path:
    """A small demo-like output: an annotation shard (random part name, worker order, absolute paths, CPU times),
    a run file with times, a ledger, a MANIFEST, an overlay image, a text file and trained weights."""
    ids = [f"fake_{i:05d}" for i in range(6)]
    run = root / "annotate" / "run"
    (run / "annotations").mkdir(parents=True)
    rows = [
        {"sample_id": ids[i], "image_path": str(root / "forged" / f"{ids[i]}.png"), "regions": [f"r{i}", "nose"],
         "score": i / 7, "time_cpu_s": t0 + i}
        for i in order
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), run / "annotations" / f"part-000001-{part}.parquet")
    (run / "run.json").write_text(json.dumps({"counts": {"ok": 6}, "invocations": [{"started": f"T{t0}"}]}))
    (run / "ledger.jsonl").write_text(
        json.dumps({"shard": f"part-000001-{part}.parquet", "ids": [ids[i] for i in order]})
    )
    (root / "release").mkdir()
    (root / "release" / "MANIFEST.json").write_text(
        json.dumps({"files": {"data/x.parquet": {"bytes": int(t0), "sha256": part}, "README.md": {"sha256": "abc"}}})
    )
    (root / "release" / "README.md").write_text(f"# Release\nimages under {root / 'forged'}\n")
    img = np.zeros((8, 8, 3), np.uint8)
    img[2:5, 3:6] = 200
    (root / "annotate" / "overlays").mkdir()
    Image.fromarray(img).save(root / "annotate" / "overlays" / "fake_00001.png")
    (root / "train" / "ckpt" / "adapter").mkdir(parents=True)
    (root / "train" / "ckpt" / "adapter" / "adapter_model.safetensors").write_bytes(bytes([int(t0) % 256]) * 16)
    return root


def _other_run(root: Path) -> Path:
    return _demo(root, "9f8e7d6c", [3, 0, 5, 1, 4, 2], 7.0)


@pytest.fixture
def pair(tmp_path) -> tuple[Path, Path]:
    return _demo(tmp_path / "a", "1a2b3c4d", [0, 1, 2, 3, 4, 5], 1.0), _other_run(tmp_path / "b")


def test_two_runs_that_differ_in_names_times_order_and_paths_only_are_identical(pair, capsys):
    a, b = pair
    res = compare_demo.compare(a, b)
    assert res.identical, res.differences
    assert res.compared == {"parquet": 1, "json": 3, "text": 1, "bytes": 1}
    assert list(res.skipped) == ["train/ckpt/adapter/adapter_model.safetensors"]  # trained weights: listed only
    assert compare_demo.main([str(a), str(b)]) == 0
    assert "identical content" in capsys.readouterr().out

    moved = a.parent / "moved"  # a demo moved after it was written: its paths name the old folder
    shutil.copytree(b, moved)
    assert not compare_demo.compare(a, moved).identical
    assert compare_demo.main([str(a), str(moved), "--written-b", str(b)]) == 0


def _shard(root: Path) -> Path:
    return next((root / "annotate" / "run" / "annotations").glob("part-*.parquet"))


def test_one_changed_value_in_a_table_is_reported(pair, tmp_path, capsys):
    a, b = pair
    c = _other_run(tmp_path / "c")
    rows = pq.read_table(_shard(c)).to_pylist()
    rows[2]["regions"] = ["r5", "mouth"]  # one value of one row (fake_00005)
    pq.write_table(pa.Table.from_pylist(rows), _shard(c))
    res = compare_demo.compare(a, c)
    assert res.differences == ["annotate/run/annotations/part-000001-*.parquet: sample_id='fake_00005': "
                               "regions: ['r5', 'nose'] != ['r5', 'mouth']"]  # fmt: skip
    assert compare_demo.main([str(a), str(c), "--quiet"]) == 1
    assert "DIFFERENT annotate/run/annotations" in capsys.readouterr().out


def test_a_changed_pixel_a_json_value_a_missing_row_or_file_are_reported(pair, tmp_path):
    a, b = pair
    c = _other_run(tmp_path / "c")
    img = np.asarray(Image.open(c / "annotate" / "overlays" / "fake_00001.png")).copy()
    img[0, 0, 0] = 1
    Image.fromarray(img).save(c / "annotate" / "overlays" / "fake_00001.png")
    (c / "annotate" / "run" / "run.json").write_text(json.dumps({"counts": {"ok": 5}, "invocations": [{}]}))
    manifest = json.loads((c / "release" / "MANIFEST.json").read_text())
    manifest["files"]["README.md"]["sha256"] = "abd"  # a hash of a non-Parquet file is compared
    (c / "release" / "MANIFEST.json").write_text(json.dumps(manifest))
    (c / "release" / "README.md").unlink()
    found = "\n".join(compare_demo.compare(a, c).differences)
    assert "annotate/overlays/fake_00001.png: bytes differ" in found
    assert "annotate/run/run.json: record 0: .counts.ok: 6 != 5" in found
    assert "release/MANIFEST.json: record 0: .files.README.md.sha256: abc != abd" in found
    assert f"release/README.md: only in {a}" in found

    pq.write_table(pq.read_table(_shard(c)).slice(1), _shard(c))
    assert "6 rows against 5" in "\n".join(compare_demo.compare(a, c).differences)


def test_not_a_folder_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        compare_demo.main([str(tmp_path), str(tmp_path / "missing")])
    assert e.value.code == 2
