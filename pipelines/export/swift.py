"""ms-swift JSONL (the format of Veritas/HydraFake and DeepfakeJudge).

``DIR/swift/{split}.jsonl``: one ``{"messages": [{"role", "content"}], "images": [path]}`` per line,
paths relative to ``DIR`` (run ms-swift from ``DIR`` or prefix them). ``rq_box`` rows carry the box
the ms-swift way: the question holds ``<bbox>`` where the coordinates were and
``objects = {"ref": [], "bbox": [[x0, y0, x1, y1]]}`` (pixels, ``bbox_type`` real). Also kept: ``id``
(ms-swift drops it) and ``label``: the class as ms-swift's classification label, ``0`` real / ``1`` fake.
ms-swift reads ``label`` for classification (``--task_type seq_cls``: ``int(label)``, so the text
``"fake"`` failed on every row) and for KTO (desirability: not what this label means). Not carried:
``loc``, ``rq_mask`` (counted).
"""

from __future__ import annotations

from pathlib import Path

from .common import SPLITS, ImageStore, iter_rows, plain_messages, write_jsonl
from .llava import MASK_ONLY
from .registry import exporter

#: ``label`` -> ms-swift's integer class (``--task_type seq_cls --num_labels 2``)
LABEL_IDS = {"real": 0, "fake": 1}


def _box_text(box: list[float]) -> str:
    return "[" + ", ".join(str(int(round(v))) for v in box) + "]"


def items(build: Path, split: str, store: ImageStore, summary):
    for r in iter_rows(build, split):
        if r.task in MASK_ONLY:
            summary.skipped[r.task] = summary.skipped.get(r.task, 0) + 1
            continue
        msgs = plain_messages(r.messages)
        item = {"id": r.id, "messages": msgs, "images": [store.add(r.image)], "label": LABEL_IDS[r.label]}
        if r.task == "rq_box" and r.query_box:
            text = _box_text(r.query_box)
            if text in msgs[0]["content"]:
                msgs[0]["content"] = msgs[0]["content"].replace(text, "<bbox>", 1)
                item["objects"] = {"ref": [], "bbox": [list(r.query_box)], "bbox_type": "real"}
        yield item


@exporter("swift")
def write(build: Path, out: Path, store: ImageStore, summary) -> None:
    for split in SPLITS:
        path = out / "swift" / f"{split}.jsonl"
        summary.add_split(out, split, path, write_jsonl(path, items(build, split, store, summary)))
