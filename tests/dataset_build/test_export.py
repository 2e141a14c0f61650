"""Every export read back the way its consumer reads it (docs/export.md, shared/notes/export-formats.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from build_helpers import run_data

from fifa.pipelines.export import FORMATS, ExportError, export

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


# LLaMA-Factory's data loading, re-stated from its own code (PyPI ``llamafactory==0.9.5``; CI has no torch stack
# for it). Each step names the function it re-states, all under ``src/llamafactory/``:
#   data/parser.py       DatasetAttr (field defaults), DatasetAttr.join, get_dataset_list
#   data/loader.py       _load_single_dataset, ``load_from == "file"`` branch; extras/constants.py FILEEXT2TYPE
#   data/converter.py    SharegptDatasetConverter.__call__, DatasetConverter._find_medias
#   data/processor/supervised.py  SupervisedDatasetProcessor.preprocess_dataset (which examples it drops)
#   data/mm_plugin.py    MMPluginMixin._validate_messages over ``prompt + response`` (IMAGE_PLACEHOLDER "<image>")
# The real functions were run on a real export (docs/export.md, "Verified with"): same rows, none dropped.
LF_ATTR_DEFAULTS = {
    "formatting": "alpaca",
    "ranking": False,
    "subset": None,
    "split": "train",
    "folder": None,
    "num_samples": None,
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
LF_COLUMNS = [
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
]
LF_TAGS = ["role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag"]
LF_FILEEXT2TYPE = {"arrow": "arrow", "csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "txt": "text"}


def llamafactory_attr(dataset_info: dict, name: str) -> dict:
    """``get_dataset_list([name], dataset_dir)[0]`` as a dict. Note ``DatasetAttr.join``: once an entry has
    ``columns`` (``tags``), every column (tag) it does not name becomes None, not the default."""
    entry = dataset_info[name]  # get_dataset_list: "Undefined dataset {name}" when missing
    assert not {"hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"} & set(entry)
    attr = dict(LF_ATTR_DEFAULTS, load_from="file", dataset_name=entry["file_name"])
    for key, default in (
        ("formatting", "alpaca"),
        ("ranking", False),
        ("subset", None),
        ("split", "train"),
        ("folder", None),
        ("num_samples", None),
    ):
        attr[key] = entry.get(key, default)
    if "columns" in entry:
        attr.update({c: entry["columns"].get(c) for c in LF_COLUMNS})
    if "tags" in entry:
        attr.update({t: entry["tags"].get(t) for t in LF_TAGS})
    return attr


def llamafactory_read(dataset_dir: Path, name: str) -> tuple[list[dict], list[str]]:
    """(aligned examples that training keeps, problems): what LLaMA-Factory 0.9.5 makes of a dataset entry.
    A problem is an example its converter marks broken or its supervised processor drops, an image that does
    not resolve under ``media_dir`` (= ``dataset_dir`` by default; the plugin then fails to open it), or an
    ``<image>`` count that differs from the images (``_validate_messages`` raises)."""
    import datasets

    attr = llamafactory_attr(json.loads((dataset_dir / "dataset_info.json").read_text()), name)
    local_path = os.path.join(str(dataset_dir), attr["dataset_name"])
    assert os.path.isfile(local_path), f"File {local_path} not found."
    data_path = LF_FILEEXT2TYPE[os.path.splitext(local_path)[-1][1:]]
    ds = datasets.load_dataset(
        path=data_path, name=attr["subset"], data_dir=attr["folder"], data_files=[local_path], split=attr["split"]
    )
    assert attr["formatting"] == "sharegpt" and not attr["ranking"] and not attr["kto_tag"]
    media_dir = str(dataset_dir)
    tag_mapping = {
        attr["user_tag"]: "user",
        attr["assistant_tag"]: "assistant",
        attr["observation_tag"]: "observation",
        attr["function_tag"]: "function",
        attr["system_tag"]: "system",
    }
    accept_tags = ((attr["user_tag"], attr["observation_tag"]), (attr["assistant_tag"], attr["function_tag"]))
    kept, problems = [], []
    for i, example in enumerate(ds):
        messages = example[attr["messages"]]
        if attr["system_tag"] and messages and messages[0][attr["role_tag"]] == attr["system_tag"]:
            messages = messages[1:]
        aligned, broken = [], False
        for turn_idx, message in enumerate(messages):
            if message[attr["role_tag"]] not in accept_tags[turn_idx % 2]:
                problems.append(f"{name}[{i}]: Invalid role tag")
                broken = True
                break
            aligned.append({"role": tag_mapping[message[attr["role_tag"]]], "content": message[attr["content_tag"]]})
        if len(aligned) % 2 != 0:
            problems.append(f"{name}[{i}]: Invalid message count")
            broken = True
        prompt, response = ([], []) if broken else (aligned[:-1], aligned[-1:])
        if len(prompt) % 2 != 1 or len(response) != 1:  # SupervisedDatasetProcessor: "Dropped invalid example"
            problems.append(f"{name}[{i}]: dropped by the supervised processor")
            continue
        images = example[attr["images"]] if attr["images"] else None  # _find_medias
        images = None if images is None else [images] if not isinstance(images, list) else images[:] or None
        for k, p in enumerate(images or []):
            if os.path.isfile(os.path.join(media_dir, p)):
                images[k] = os.path.join(media_dir, p)
            else:
                problems.append(f"{name}[{i}]: Media {p} does not exist in `media_dir`")
        n_tokens = sum(m["content"].count("<image>") for m in prompt + response)
        if n_tokens != len(images or []):
            problems.append(f"{name}[{i}]: The number of images does not match the number of <image> tokens")
        kept.append({"_prompt": prompt, "_response": response, "_images": images})
    return kept, problems


def test_llamafactory_through_its_own_loader_steps(built, exported):
    for split in ("train", "validation"):
        got, problems = llamafactory_read(exported, f"fifa_{split}")
        assert problems == []
        assert len(got) == carried(built, split) > 0
        assert all(len(x["_images"]) == 1 and os.path.isabs(x["_images"][0]) for x in got)
        assert any(len(x["_prompt"]) > 1 for x in got)  # fc: multi-turn conversations survive
    assert (
        llamafactory_attr(json.loads((exported / "dataset_info.json").read_text()), "fifa_train")["messages"]
        == "conversations"
    )


def test_llamafactory_restatement_finds_what_its_loader_rejects(tmp_path):
    """The re-statement is not vacuous: samples LLaMA-Factory 0.9.5 drops or fails on are reported."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    good = {
        "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}],
        "images": ["images/a.png"],
    }
    bad = [
        {**good, "conversations": good["conversations"][:1]},  # odd message count
        {**good, "conversations": [{"from": "user", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]},
        {**good, "images": ["images/missing.png"]},
        {**good, "images": ["images/a.png", "images/a.png"]},  # two images, one <image>
    ]
    (tmp_path / "d.json").write_text(json.dumps([good, *bad]))
    entry = {
        "file_name": "d.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "images": "images"},
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps({"d": entry}))
    kept, problems = llamafactory_read(tmp_path, "d")
    assert len(kept) == 3  # the good one, and the two whose images are wrong (they fail later, in the plugin)
    text = "\n".join(problems)
    assert "d[1]: Invalid message count" in text and "d[2]: Invalid role tag" in text
    assert "d[3]: Media images/missing.png does not exist" in text and "d[4]: The number of images" in text
    # DatasetAttr.join: ``columns`` without ``messages`` leaves it None (not "conversations")
    assert llamafactory_attr({"d": {"file_name": "d.json", "columns": {"images": "images"}}}, "d")["messages"] is None


# ms-swift 4.6.0 (PyPI ``ms-swift``), re-stated from swift/dataset/preprocessor/core.py: what
# ``RowPreprocessor._check_messages`` / ``_check_objects`` accept, the columns ``remove_useless_columns``
# keeps (``standard_keys``: ``id`` is dropped), and swift/template/base.py ``Template._seq_cls_encode``,
# which reads ``int(label)`` (``label`` is ms-swift's classification / KTO column).
SWIFT_ROLES = {"system", "user", "tool_call", "tool_response", "tool", "assistant"}
SWIFT_OBJECT_KEYS = ["ref", "bbox", "bbox_type", "image_id"]


def test_swift(built, exported):
    boxes = 0
    labels = {}
    for split in ("train", "validation"):
        lines = (exported / "swift" / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == carried(built, split)
        want = dict(zip(*instruct_rows(built, split).select("id", "label").to_dict(as_series=False).values()))
        for line in lines:
            item = json.loads(line)
            msgs = item["messages"]
            assert msgs and all(m["role"] in SWIFT_ROLES and m["content"] is not None for m in msgs)
            assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
            assert sum(m["content"].count("<image>") for m in msgs) == len(item["images"]) == 1
            assert all((exported / p).is_file() for p in item["images"])
            # the class as ms-swift's integer label (int(label) in _seq_cls_encode; "fake" raised ValueError)
            assert type(item["label"]) is int and item["label"] == int(want[item["id"]] == "fake")
            labels[item["label"]] = labels.get(item["label"], 0) + 1
            if "objects" in item:
                boxes += 1
                assert set(item["objects"]) <= set(SWIFT_OBJECT_KEYS)  # _check_objects keeps only these keys
                assert all(len(b) in (2, 4) for b in item["objects"]["bbox"])
                assert msgs[0]["content"].count("<bbox>") == len(item["objects"]["bbox"]) == 1
                assert item["objects"]["bbox_type"] == "real" and item["objects"]["ref"] == []
                x0, y0, x1, y1 = item["objects"]["bbox"][0]
                assert x1 > x0 and y1 > y0
    assert boxes == sum(
        instruct_rows(built, s).filter(pl.col("task") == "rq_box").height for s in ("train", "validation")
    )
    assert set(labels) == {0, 1}


def glamm_tag_caption(caption, tokens):
    """groundingLMM (e74865f) dataset/gcg_datasets/GranDf_gcg_ds.py, GCGBaseDataset.create_conversations'
    ``tag_caption``, verbatim: the answer GLaMM trains on."""
    for start, end in sorted(tokens, key=lambda x: x[0], reverse=True):
        caption = f"{caption[:start]}<p> {caption[start:end]} </p> [SEG]{caption[end:]}"
    return caption


def glamm_parse_annotations(ann_info, image_folder):
    """GCGBaseDataset._parse_annotations (same file), verbatim but for ``self``."""
    from PIL import Image
    from pycocotools import mask

    image_path = os.path.join(image_folder, ann_info["file_name"])
    annotations = {"labels": [], "caption": [], "masks": [], "tokens_positive": [], "file_name": ann_info["file_name"]}
    width, height = Image.open(image_path).size
    annotations["caption"] = ann_info["caption"].strip('"').strip()

    for word, grounding in ann_info["groundings"].items():
        annotations["labels"].append(word)
        annotations["tokens_positive"].append(grounding["token_positives"])

        # Convert segmentation to binary mask
        binary_mask = np.zeros((height, width), dtype=np.uint8)
        for rle in grounding["rle_masks"]:
            m = mask.decode(rle).astype(np.uint8)
            binary_mask += m.squeeze()
        annotations["masks"].append(binary_mask)

    return annotations


def test_glamm_through_its_dataset_code(built, exported):
    n = 0
    for split in ("train", "validation"):
        data = json.loads((exported / "glamm" / f"{split}.json").read_text())
        age = instruct_rows(built, split).filter((pl.col("task") == "age") & (pl.col("masks").list.len() > 0))
        assert len(data) == age.height
        for item in data:
            ann = glamm_parse_annotations(item, str(exported))  # image_dir = DIR
            assert ann["caption"] == item["caption"]  # GLaMM's strip('"').strip() would shift every span
            assert len(ann["labels"]) == len(item["groundings"]) > 0  # GLaMM resamples items without groundings
            # process_data: phrases sorted by start (the JSON's keys are sorted by name), masks stacked (one per
            # phrase, the image's size, none empty); tag_caption needs spans that do not overlap
            order = sorted(range(len(ann["tokens_positive"])), key=lambda x: ann["tokens_positive"][x][0])
            spans = [ann["tokens_positive"][i] for i in order]
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
            masks = np.stack([ann["masks"][i] for i in order], axis=0)
            assert masks.shape[0] == len(order) and all(np.count_nonzero(m) > 0 for m in masks)
            for label, (s, e) in zip(ann["labels"], ann["tokens_positive"]):
                assert ann["caption"][s:e] == label.split("#")[0]
                n += 1
            assert item["answer"] == glamm_tag_caption(ann["caption"], ann["tokens_positive"])
            assert "<image>" not in item["question"]
    assert n > 10


def test_images_written_once_and_shared(built, exported):
    files = [p for p in (exported / "images").rglob("*") if p.is_file()]
    paths = pl.concat([instruct_rows(built, s) for s in ("train", "validation")])["image"].struct.field("path")
    assert len(files) == paths.n_unique()
    referenced = set()
    for split in ("train", "validation"):
        referenced |= {x["image"] for x in json.loads((exported / "llava" / f"{split}.json").read_text())}
        referenced |= {
            p
            for line in (exported / "swift" / f"{split}.jsonl").read_text().splitlines()
            for p in json.loads(line)["images"]
        }
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


def test_a_registered_format_is_exported_and_listed(built, tmp_path):
    """Exporters live in one registry (pipelines/export/registry.py): a format registered there is one that
    `export` writes and FORMATS lists; a name registered twice is refused."""
    from fifa.pipelines.export.registry import EXPORTERS, exporter

    assert tuple(EXPORTERS) == FORMATS and set(FORMATS) == {"llava", "llamafactory", "swift", "glamm"}
    seen = []

    @exporter("counting")
    def write(build, out, store, summary) -> None:
        seen.append(Path(build))
        summary.rows = {"train": 1}

    try:
        s = export(built, "counting", tmp_path)
        assert seen == [Path(built)] and s.format == "counting" and s.rows == {"train": 1}
        with pytest.raises(ValueError, match="registered twice"):
            exporter("counting")(write)
    finally:
        EXPORTERS.pop("counting", None)
    with pytest.raises(ExportError, match="unknown format 'counting'"):
        export(built, "counting", tmp_path)
