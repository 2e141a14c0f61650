"""Reading builds: epoch orders and task mixing, bad rows skipped and counted, marks -> [SEG], geometry."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fifa.core import rle
from fifa.core.errors import UserError
from fifa.core.marks import plain_generated as plain_answer
from fifa.core.schemas import INSTRUCT_SCHEMA
from fifa.modeling.data import InstructData, epoch_order, task_weights
from fifa.modeling.imaging import Letterbox


def test_epoch_order_is_seeded_and_mixes_tasks():
    tasks = np.array(["det"] * 100 + ["loc"] * 50 + ["age"] * 10, dtype=object)
    w = {"det": 0.5, "loc": 1.0, "age": 3.0}
    a = epoch_order(tasks, w, seed=0, epoch=0, chunk_rows=65536)
    assert np.array_equal(a, epoch_order(tasks, w, seed=0, epoch=0, chunk_rows=65536))
    assert not np.array_equal(a, epoch_order(tasks, w, seed=0, epoch=1, chunk_rows=65536))
    got = {t: int((tasks[a] == t).sum()) for t in w}
    assert got == {"det": 50, "loc": 50, "age": 30}
    first = tasks[a[:32]]  # storage order is gone: the first batch already mixes tasks
    assert len(set(first)) == 3
    local = epoch_order(tasks, {"det": 1, "loc": 1, "age": 1}, seed=0, epoch=0, chunk_rows=40)
    assert sorted(local.tolist()) == list(range(160))
    assert set(local[:40] // 40) == {local[0] // 40}  # windows of chunk_rows rows stay together


def test_tasks_the_config_asks_for_must_exist():
    assert task_weights({"det": 5, "loc": 3}, {}) == {"det": 1.0, "loc": 1.0}
    assert task_weights({"det": 5, "loc": 3}, {"det": 2}) == {"det": 2.0, "loc": 0.0}
    with pytest.raises(UserError, match=r"no rows for task\(s\) age, fc .*has: det, loc"):
        task_weights({"det": 5, "loc": 3}, {"age": 1, "fc": 1, "det": 1})


def _rows_with_bad_images(build):
    rows = pq.read_table(build / "instruct" / "train.parquet").to_pylist()
    good = [r for r in rows if r["task"] == "loc" and r["label"] == "fake"][:2]
    bad_bytes = dict(good[0], id="bad-bytes", image={"bytes": b"not an image at all", "path": None})
    missing = dict(good[0], id="missing", image={"bytes": None, "path": "forged/images/none.png"})
    bad_mask = dict(good[1], id="bad-mask", masks=[{"size": [7, 7], "counts": "0"}])
    return good + [bad_bytes, missing, bad_mask]


def test_bad_rows_are_skipped_and_counted(small_build, tmp_path):
    from micro_config import MICRO

    from fifa.modeling.collate import Collator, Encoder, InstructDataset
    from fifa.modeling.config import load_config
    from fifa.modeling.loading import create
    from fifa.modeling.train import training_texts

    b = tmp_path / "b"
    (b / "instruct").mkdir(parents=True)
    (b / "forged").symlink_to(small_build / "forged")
    pq.write_table(
        pa.Table.from_pylist(_rows_with_bad_images(small_build), schema=INSTRUCT_SCHEMA),
        b / "instruct" / "train.parquet",
    )
    data = InstructData(b)
    cfg = load_config(None, MICRO)
    loaded = create(cfg, list(training_texts(data)), [], None)
    enc = Encoder(loaded.tokenizer, loaded.fam, [], "category", 32, 160)
    batch = Collator(loaded.fam, 0)([InstructDataset(data, enc)[i] for i in range(len(data))])
    assert batch["n"] == 2
    assert batch["skipped"] == {
        "image: not_an_image": 1,
        "image: missing_file": 1,
        "mask does not decode or does not fit the image": 1,
    }


def test_empty_split_and_missing_build(tmp_path):
    with pytest.raises(UserError, match="build folder not found"):
        InstructData(tmp_path / "nope")
    (tmp_path / "instruct").mkdir()
    with pytest.raises(UserError, match="no instruction data for split 'train'"):
        InstructData(tmp_path)
    pq.write_table(INSTRUCT_SCHEMA.empty_table(), tmp_path / "instruct" / "train.parquet")
    with pytest.raises(UserError, match="has no rows"):
        InstructData(tmp_path)


def test_marks_render_as_seg_and_loc_gets_its_seg(small_build):
    from fifa.modeling.examples import Skip, expand_image, render_messages
    from fifa.modeling.family import Family

    fam = Family("llava", "llava", 32, 8, 1, 1, 4, (0.5,) * 3, (0.5,) * 3)

    class Tok:
        def convert_ids_to_tokens(self, i):
            return "<image>"

    msgs = [
        {"role": "user", "content": "<image>\nExplain."},
        {"role": "assistant", "content": "The [left eye](left_eye) and the [nose](nose) are blurred."},
    ]
    out = render_messages(msgs, region=False, n_masks=2)
    assert out[1]["content"] == "The <p>left eye</p> [SEG] and the <p>nose</p> [SEG] are blurred."
    assert expand_image("USER: <image>\nExplain.", fam, Tok()).count("<image>") == 16  # one per patch, 4x4
    loc = render_messages(
        [{"role": "user", "content": "Where?"}, {"role": "assistant", "content": "Here."}], region=True, n_masks=1
    )
    assert loc[1]["content"] == "Here. [SEG]" and loc[0]["content"] == "<image>\n<region>\nWhere?"
    with pytest.raises(Skip, match="more \\[SEG\\] marks than masks"):
        render_messages(msgs, region=False, n_masks=1)
    with pytest.raises(Skip, match="dropped the image"):
        expand_image("USER: Explain.", fam, Tok())
    assert plain_answer("The <p>left eye</p> [SEG] is blurred .") == "The left eye is blurred."


@pytest.mark.parametrize("h, w", [(60, 100), (100, 60), (64, 64)])
def test_letterbox_roundtrip_of_masks(h, w):
    m = np.zeros((h, w), bool)
    m[h // 4 : h // 2, w // 3 : w // 2 + 5] = True
    lb = Letterbox(h, w, 64)
    sq = lb.mask(m)
    back = lb.unbox_logits(sq * 2 - 1) > 0
    inter, union = (back & m).sum(), (back | m).sum()
    assert inter / union > 0.85
    x0, y0, x1, y1 = lb.box([w // 3, h // 4, w // 2 + 5, h // 2])
    ys, xs = np.nonzero(sq > 0.5)
    assert abs(xs.min() - x0) <= 1 and abs(ys.min() - y0) <= 1
    assert rle.area(rle.encode(back)) > 0
