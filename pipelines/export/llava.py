"""LLaVA conversation JSON (haotian-liu/LLaVA ``docs/Finetune_Custom_Data.md``).

``DIR/llava/{split}.json``: ``[{"id", "image", "conversations": [{"from": "human"|"gpt", "value"}]}]``,
``image`` relative to ``--image_folder DIR``; the first human turn starts with ``<image>\\n``.
Grounding marks become plain phrases. Not carried: ``loc`` and ``rq_mask`` rows (their answer
or question is a mask), counted in the summary.
"""

from __future__ import annotations

from pathlib import Path

from .common import SPLITS, ImageStore, iter_rows, plain_messages, write_json_list
from .registry import exporter

MASK_ONLY = ("loc", "rq_mask")
ROLE = {"user": "human", "assistant": "gpt"}


def conversations(messages: list[dict]) -> list[dict]:
    return [{"from": ROLE[m["role"]], "value": m["content"]} for m in plain_messages(messages)]


def items(build: Path, split: str, store: ImageStore, summary) -> object:
    for r in iter_rows(build, split):
        if r.task in MASK_ONLY:
            summary.skipped[r.task] = summary.skipped.get(r.task, 0) + 1
            continue
        yield {"id": r.id, "image": store.add(r.image), "conversations": conversations(r.messages)}


@exporter("llava")
def write(build: Path, out: Path, store: ImageStore, summary) -> None:
    for split in SPLITS:
        path = out / "llava" / f"{split}.json"
        summary.add_split(out, split, path, write_json_list(path, items(build, split, store, summary)))
