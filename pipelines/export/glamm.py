"""GLaMM GranD-f grounded captions for ``age`` (mbzuai-oryx/groundingLMM ``GranDf_gcg_ds.py``).

``DIR/glamm/{split}.json``: ``[{"file_name", "caption", "groundings": {phrase: {"token_positives":
[start, end], "rle_masks": [RLE]}}, "id", "question", "answer"}]``: ``caption`` is the plain
explanation and ``caption[start:end]`` the phrase; ``rle_masks`` the phrase's COCO RLE;
``answer`` the explanation as GLaMM renders it (below). ``file_name`` is relative to ``DIR``
(GLaMM's ``image_dir``). A phrase marked twice gets keys ``phrase``, ``phrase#2``, ... (GLaMM
uses the key only as a label). Only ``age`` rows of fakes with masks are written (GLaMM skips
samples without groundings); the other rows are counted as skipped.

``answer`` is exactly the target GLaMM trains on: its ``GCGBaseDataset.create_conversations`` tags the
caption with ``<p> phrase </p> [SEG]`` (a space inside each tag) at ``token_positives``, and
:func:`tag_caption` is that function verbatim (groundingLMM e74865f, GranDf_gcg_ds.py).
"""

from __future__ import annotations

from pathlib import Path

from fifa.core import marks

from .common import SPLITS, ImageStore, iter_rows, write_json_list
from .registry import exporter


def grounded_caption(text: str, masks: list[dict]) -> tuple[str, dict]:
    """(plain caption, groundings) of a marked text whose k-th mark has ``masks[k]``."""
    out, pos, caption_len, groundings = [], 0, 0, {}
    for k, m in enumerate(marks.find(text)):
        before = text[pos : m.start]
        out.append(before)
        caption_len += len(before)
        phrase = m.phrase
        start = caption_len
        out.append(phrase)
        caption_len += len(phrase)
        key, n = phrase, 1
        while key in groundings:
            n += 1
            key = f"{phrase}#{n}"
        groundings[key] = {
            "token_positives": [start, caption_len],
            "rle_masks": [{"size": list(masks[k]["size"]), "counts": masks[k]["counts"]}],
        }
        pos = m.end
    out.append(text[pos:])
    return "".join(out), groundings


def tag_caption(caption: str, tokens: list) -> str:
    """GLaMM's own ``tag_caption`` (groundingLMM e74865f, dataset/gcg_datasets/GranDf_gcg_ds.py,
    ``GCGBaseDataset.create_conversations``), verbatim: the training answer GLaMM makes of a caption."""
    for start, end in sorted(tokens, key=lambda x: x[0], reverse=True):
        caption = f"{caption[:start]}<p> {caption[start:end]} </p> [SEG]{caption[end:]}"
    return caption


def items(build: Path, split: str, store: ImageStore, summary):
    for r in iter_rows(build, split):
        if r.task != "age" or not r.masks:
            key = r.task if r.task != "age" else "age (real image: no grounding)"
            summary.skipped[key] = summary.skipped.get(key, 0) + 1
            continue
        text = r.messages[-1]["content"]
        caption, groundings = grounded_caption(text, r.masks)
        yield {
            "id": r.id,
            "file_name": store.add(r.image),
            "caption": caption,
            "groundings": groundings,
            "question": r.messages[0]["content"].replace("<image>\n", "", 1),
            "answer": tag_caption(caption, [g["token_positives"] for g in groundings.values()]),
        }


@exporter("glamm")
def write(build: Path, out: Path, store: ImageStore, summary) -> None:
    for split in SPLITS:
        path = out / "glamm" / f"{split}.json"
        summary.add_split(out, split, path, write_json_list(path, items(build, split, store, summary)))
