"""LLaMA-Factory ShareGPT JSON (hiyouga/LLaMA-Factory ``data/README.md``).

``DIR/llamafactory/{split}.json``: ``[{"conversations": [{"from": "human"|"gpt", "value"}], "images": [path]}]``
and ``DIR/dataset_info.json`` with the entries ``fifa_train`` / ``fifa_validation``
(``file_name``, ``formatting: sharegpt``, ``columns: {messages, images}``, ``tags``). Use
``dataset_dir: DIR``; image paths are relative to it (LLaMA-Factory's ``media_dir`` defaults to
``dataset_dir``). Each sample holds one ``<image>`` token and one image. Not carried: ``loc``,
``rq_mask`` (counted).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..parquet_io import write_json
from .common import SPLITS, ImageStore, iter_rows, write_json_list
from .llava import MASK_ONLY, conversations

DATASET_INFO = "dataset_info.json"


def entry(split: str) -> dict:
    return {
        "file_name": f"llamafactory/{split}.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "images": "images"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }


def items(build: Path, split: str, store: ImageStore, summary):
    for r in iter_rows(build, split):
        if r["task"] in MASK_ONLY:
            summary.skipped[r["task"]] = summary.skipped.get(r["task"], 0) + 1
            continue
        yield {"conversations": conversations(r["messages"]), "images": [store.add(r["image"])]}


def write(build: Path, out: Path, store: ImageStore, summary) -> None:
    for split in SPLITS:
        path = out / "llamafactory" / f"{split}.json"
        summary.rows[split] = write_json_list(path, items(build, split, store, summary))
        summary.files.append(str(path.relative_to(out)))
    info_path = out / DATASET_INFO
    info = json.loads(info_path.read_text("utf-8")) if info_path.is_file() else {}
    info.update({f"fifa_{s}": entry(s) for s in SPLITS})
    write_json(info, info_path)
    summary.files.append(DATASET_INFO)
