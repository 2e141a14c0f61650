"""LLaMA-Factory ShareGPT JSON (hiyouga/LLaMA-Factory ``data/README.md``).

``DIR/llamafactory/{split}.json``: ``[{"conversations": [{"from": "human"|"gpt", "value"}], "images": [path]}]``
and ``DIR/dataset_info.json`` with the entries ``fifa_train`` / ``fifa_validation`` (a split without
rows gets neither a file nor an entry)
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
from .registry import exporter

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
        if r.task in MASK_ONLY:
            summary.skipped[r.task] = summary.skipped.get(r.task, 0) + 1
            continue
        yield {"conversations": conversations(r.messages), "images": [store.add(r.image)]}


@exporter("llamafactory")
def write(build: Path, out: Path, store: ImageStore, summary) -> None:
    for split in SPLITS:
        path = out / "llamafactory" / f"{split}.json"
        summary.add_split(out, split, path, write_json_list(path, items(build, split, store, summary)))
    info_path = out / DATASET_INFO
    info = json.loads(info_path.read_text("utf-8")) if info_path.is_file() else {}
    for s in SPLITS:  # an empty split is not registered: LLaMA-Factory's loader refuses a dataset without rows
        info.pop(f"fifa_{s}", None)
        if s not in summary.empty:
            info[f"fifa_{s}"] = entry(s)
    write_json(info, info_path)
    summary.files.append(DATASET_INFO)
