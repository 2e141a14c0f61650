"""Head guidance of generation (modeling/guide.py): answers open as the heads decide and the model writes the rest.

- ``cls``: the answer opens with the words training answers of the head's class open with, so the scorer's
  parser reads the head's class; an image the detection head calls real is ``real``.
- ``rq_*``: the answer's yes / no is the query head's verdict (no on an image the detection head calls real).
- ``age``: every mark the model opens names the region the mark head ranks highest among those not named yet,
  followed by its [SEG] and so by a mask; an image the detection head calls real gets no mark.
"""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest
import torch
from micro_config import MICRO

from fifa.benchmarks.parsing import parse_cls
from fifa.modeling.config import load_config
from fifa.modeling.loading import from_checkpoint
from fifa.modeling.predict import Predictor, bench_resolver


@pytest.fixture(scope="module")
def guided(small_build, tmp_path_factory):
    from fifa.modeling.train import train

    out = tmp_path_factory.mktemp("guided") / "ck"
    cfg = load_config(None, [*MICRO, "train.max_steps=40", "train.save_every=40", "data.tasks.age=3",
                             "heads.cls_field=method", "predict.max_new_tokens=40"])
    train(cfg, small_build, out, progress=False)
    loaded = from_checkpoint(out)
    rows = pq.read_table(small_build / "bench.parquet").to_pylist()
    return loaded, rows, bench_resolver(small_build / "bench.parquet")


def _run(loaded, rows, resolve):
    """Predictions with what the heads read at the first step, per row."""
    p = Predictor(loaded.model.eval(), loaded.tokenizer, loaded.fam, "cpu", 40, "head", "head")
    seen = []
    real = p._generate

    def spy(batch, img_out, feats, pix, tasks):
        gen, states, first = real(batch, img_out, feats, pix, tasks)
        seen.extend(zip(tasks, first.head_p, first.query_p, first.classes, first.mark_p))
        return gen, states, first

    p._generate = spy
    with torch.no_grad():
        out = p(rows, resolve)
    return p, out, seen


def test_cls_answers_name_the_heads_class(guided):
    loaded, rows, resolve = guided
    rows = [r for r in rows if r["task"] == "cls"][:16]
    p, out, seen = _run(loaded, rows, resolve)
    classes = loaded.model.heads.classes
    assert "real" in classes and len(classes) > 2  # methods + real (real rows carry no method)
    assert set(loaded.model.heads.class_openings) <= set(classes)
    for pred, (_task, fake_p, _, cls, _) in zip(out, seen):
        assert cls == ("real" if fake_p < 0.5 else cls) and (cls != "real" or fake_p < 0.5)
        assert parse_cls(pred["answer"], classes) == cls, pred["answer"]


def test_rq_answers_say_the_query_heads_verdict(guided):
    loaded, rows, resolve = guided
    rows = [r for t in ("rq_name", "rq_mask", "rq_box") for r in [x for x in rows if x["task"] == t][:6]]
    p, out, seen = _run(loaded, rows, resolve)
    verdicts = set()
    for pred, (_task, fake_p, query_p, _, _) in zip(out, seen):
        yes = query_p >= 0.5 and fake_p >= 0.5
        verdicts.add(yes)
        assert re.match(r"\s*(yes|no)\b", pred["answer"], re.I).group(1).lower() == ("yes" if yes else "no"), pred
    assert len(seen) == len(rows)


def _drive(p: Predictor, mark_p: list[float], wants: list[int], steps: int) -> list[int]:
    """Greedy decoding of one age row whose model always prefers the tokens of ``wants`` (in that order) under
    the guide's mark rule, from the step after the opening."""
    from fifa.modeling.guide import HeadGuide

    guide = HeadGuide(p, None, None, None, None, ["age"])
    guide.mark_p, guide.step = [mark_p], 1
    ids = [p.tok.convert_tokens_to_ids("<|assistant|>")]
    for _ in range(steps):
        scores = torch.zeros((1, len(p.tok)))
        for rank, t in enumerate(wants):
            scores[0, t] = 10.0 - rank
        scores = guide(torch.tensor([ids]), scores)
        ids.append(int(scores[0].argmax()))
    return ids[1:]


def test_age_marks_name_the_mark_heads_regions(guided):
    loaded, rows, resolve = guided
    model, tok = loaded.model, loaded.tokenizer
    regions = model.heads.regions
    assert len(regions) >= 3 and model.heads.marks is not None
    assert {"id": "nose", "phrase": "nose"} in regions  # the vocabulary comes from the answers' marks
    p = Predictor(model.eval(), tok, loaded.fam, "cpu", 40, "head", "head")
    mark_p = [0.1] * len(regions)
    mark_p[2], mark_p[0], mark_p[1] = 0.9, 0.7, 0.3
    opener, word = p.phrase_open, tok.convert_tokens_to_ids("<unk>")
    got = _drive(p, mark_p, [opener, word], 40)
    want = [opener, *p.region_phrase_ids[2], p.phrase_close, p.seg_id,
            opener, *p.region_phrase_ids[0], p.phrase_close, p.seg_id]
    assert got[:len(want)] == want  # the two likely regions, most likely first, each closed with its [SEG]
    assert opener not in got[len(want):]  # then no mark opens: no region left with p >= 0.5
    assert tok.decode(p.region_phrase_ids[2]).strip() == regions[2]["phrase"]
    assert _drive(p, [0.0] * len(regions), [opener, word], 4)[0] == opener  # the model may open a first mark
    # on an image the detection head calls real the heads' probabilities are zeros: no mark after the first
    # opened one is allowed, and predictions of such images carry empty masks (test below)


def test_age_predictions_pair_each_mark_with_a_mask(guided):
    loaded, rows, resolve = guided
    rows = [r for r in rows if r["task"] == "age"][:12]
    p, out, seen = _run(loaded, rows, resolve)
    for pred, (_task, fake_p, _, _, mark_p) in zip(out, seen):
        assert mark_p is not None and len(mark_p) == len(loaded.model.heads.regions)
        n_seg = pred["answer"].count("[SEG]")
        if fake_p >= 0.5:
            assert len(pred["masks"]) == max(1, n_seg) and pred["masks"]
        else:
            assert set(mark_p) == {0.0} and len(pred["masks"]) == n_seg
