"""Every export read back the way its consumer reads it (docs/export.md, shared/notes/export-formats.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fifa.pipelines.export import FORMATS, ExportError, export

from build_helpers import run_data

MASK_ONLY = {"loc", "rq_mask"}


@pytest.fixture(scope="module")
def exported(built, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports")
    for fmt in FORMATS:
        export(built, fmt, out)
    return out


def instruct_rows(built: Path, split: str) -> pl.DataFrame:
    return pl.read_parquet(built / "instruct" / f"{split}.parquet")


def carried(built: Path, split: str) -> int:
    return instruct_rows(built, split).filter(~pl.col("task").is_in(list(MASK_ONLY))).height


def test_llava(built, exported):
    for split in ("train", "validation"):
        data = json.loads((exported / "llava" / f"{split}.json").read_text())
        assert len(data) == carried(built, split) > 0
        for item in data:
            assert set(item) == {"id", "image", "conversations"}
            conv = item["conversations"]
            assert [c["from"] for c in conv] == ["human", "gpt"] * (len(conv) // 2)
            assert conv[0]["value"].startswith("<image>\n")
            assert sum(c["value"].count("<image>") for c in conv) == 1
            assert "](" not in "".join(c["value"] for c in conv if c["from"] == "gpt")  # marks rendered plain
            assert (exported / item["image"]).is_file()


def llamafactory_read(dataset_dir: Path, name: str) -> list[dict]:
    """LLaMA-Factory's own steps for a local sharegpt dataset, re-stated (its package needs torch and
    transformers to import): ``get_dataset_list`` reads ``dataset_info.json`` (DatasetAttr.join: columns,
    tags), ``load_dataset`` reads the file with the datasets json builder, ``SharegptDatasetConverter``
    checks role tags by turn parity and an even message count and resolves images against ``media_dir``
    (= dataset_dir by default), and the multimodal plugin requires as many ``<image>`` tokens as images."""
    import datasets

    info = json.loads((dataset_dir / "dataset_info.json").read_text())[name]
    assert info["formatting"] == "sharegpt"
    cols = {"messages": "conversations", **info.get("columns", {})}
    tags = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
            **info.get("tags", {})}
    ds = datasets.load_dataset("json", data_files=str(dataset_dir / info["file_name"]), split="train")
    out = []
    accept = ((tags["user_tag"], "observation"), (tags["assistant_tag"], "function_call"))
    for ex in ds:
        msgs = ex[cols["messages"]]
        aligned = []
        for i, m in enumerate(msgs):
            assert m[tags["role_tag"]] in accept[i % 2], f"Invalid role tag in {msgs}"
            aligned.append({"role": "user" if i % 2 == 0 else "assistant", "content": m[tags["content_tag"]]})
        assert len(aligned) % 2 == 0, "Invalid message count"
        images = [os.path.join(str(dataset_dir), p) for p in ex[cols["images"]]]
        assert all(os.path.isfile(p) for p in images)
        assert sum(m["content"].count("<image>") for m in aligned) == len(images)
        out.append({"prompt": aligned[:-1], "response": aligned[-1:], "images": images})
    return out


def test_llamafactory_through_its_parser_and_converter_steps(built, exported):
    for split in ("train", "validation"):
        got = llamafactory_read(exported, f"fifa_{split}")
        assert len(got) == carried(built, split) > 0


def test_swift(built, exported):
    boxes = 0
    for split in ("train", "validation"):
        lines = (exported / "swift" / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == carried(built, split)
        for line in lines:
            item = json.loads(line)
            msgs = item["messages"]
            assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
            assert sum(m["content"].count("<image>") for m in msgs) == len(item["images"]) == 1
            assert all((exported / p).is_file() for p in item["images"])
            if "objects" in item:
                boxes += 1
                assert msgs[0]["content"].count("<bbox>") == len(item["objects"]["bbox"]) == 1
                x0, y0, x1, y1 = item["objects"]["bbox"][0]
                assert x1 > x0 and y1 > y0
    assert boxes == sum(instruct_rows(built, s).filter(pl.col("task") == "rq_box").height for s in ("train", "validation"))


def test_glamm_spans_and_masks(built, exported):
    from PIL import Image
    from pycocotools import mask as mask_utils

    n = 0
    for split in ("train", "validation"):
        data = json.loads((exported / "glamm" / f"{split}.json").read_text())
        age = instruct_rows(built, split).filter((pl.col("task") == "age") & (pl.col("masks").list.len() > 0))
        assert len(data) == age.height
        for item in data:
            assert item["caption"] == item["caption"].strip('"').strip()  # GLaMM strips these before indexing
            w, h = Image.open(exported / item["file_name"]).size
            for key, g in item["groundings"].items():
                s, e = g["token_positives"]
                assert item["caption"][s:e] == key.split("#")[0]
                m = sum(mask_utils.decode(r) for r in g["rle_masks"])  # as GranDf_gcg_ds does
                assert m.shape == (h, w) and np.count_nonzero(m) > 0
                n += 1
            assert item["answer"].count("<p>") == item["answer"].count("[SEG]") == len(item["groundings"])
            assert "<image>" not in item["question"]
    assert n > 10


def test_images_written_once_and_shared(built, exported):
    files = [p for p in (exported / "images").rglob("*") if p.is_file()]
    paths = pl.concat([instruct_rows(built, s) for s in ("train", "validation")])["image"].struct.field("path")
    assert len(files) == paths.n_unique()
    referenced = set()
    for split in ("train", "validation"):
        referenced |= {x["image"] for x in json.loads((exported / "llava" / f"{split}.json").read_text())}
        referenced |= {p for line in (exported / "swift" / f"{split}.jsonl").read_text().splitlines()
                       for p in json.loads(line)["images"]}
    assert referenced <= {str(p.relative_to(exported)) for p in files}


def test_export_is_deterministic_and_cli(built, exported, tmp_path):
    r = run_data("export", "--build", str(built), "--format", "llava", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "not carried" in r.stdout
    assert (tmp_path / "llava" / "train.json").read_bytes() == (exported / "llava" / "train.json").read_bytes()
    r = run_data("export", "--build", str(built), "--format", "coco", "--out", str(tmp_path))
    assert r.returncode == 2 and "unknown format" in r.stderr
    with pytest.raises(ExportError, match="not a build folder"):
        export(tmp_path, "llava", tmp_path / "x")
