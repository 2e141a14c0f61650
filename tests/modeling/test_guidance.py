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
from fifa.core.marks import parse as parse_marks
from fifa.core.records import BenchQuestion
from fifa.modeling.config import load_config
from fifa.modeling.loading import from_checkpoint
from fifa.modeling.predict import Predictor, bench_resolver


@pytest.fixture(scope="module")
def guided(small_build, tmp_path_factory):
    from fifa.modeling.train import train

    out = tmp_path_factory.mktemp("guided") / "ck"
    cfg = load_config(
        None,
        [
            *MICRO,
            "train.max_steps=40",
            "train.save_every=40",
            "data.tasks.age=3",
            "heads.cls_field=method",
            "predict.max_new_tokens=40",
        ],
    )
    train(cfg, small_build, out, progress=False)
    loaded = from_checkpoint(out)
    rows = BenchQuestion.from_arrow(pq.read_table(small_build / "bench.parquet"))
    return loaded, rows, bench_resolver(small_build / "bench.parquet")


def _run(loaded, rows, resolve):
    """Predictions with what the heads read at the first step, per row."""
    p = Predictor(loaded.model.eval(), loaded.tokenizer, loaded.fam, "cpu", 40, "head", "head")
    seen = []
    real = p._generate

    def spy(batch, img_out, feats, pix, tasks, named=None):
        gen, states, first = real(batch, img_out, feats, pix, tasks, named)
        seen.extend(zip(tasks, first.head_p, first.query_p, first.classes, first.mark_p, first.named_region))
        return gen, states, first

    p._generate = spy
    with torch.no_grad():
        out = p(rows, resolve)
    return p, out, seen


def test_cls_answers_name_the_heads_class(guided):
    loaded, rows, resolve = guided
    rows = [r for r in rows if r.task == "cls"][:16]
    p, out, seen = _run(loaded, rows, resolve)
    classes = loaded.model.heads.classes
    assert "real" in classes and len(classes) > 2  # methods + real (real rows carry no method)
    assert set(loaded.model.heads.class_openings) <= set(classes)
    for pred, (_task, fake_p, _, cls, _, _) in zip(out, seen):
        assert cls == ("real" if fake_p < 0.5 else cls) and (cls != "real" or fake_p < 0.5)
        assert parse_cls(pred["answer"], classes) == cls, pred["answer"]


def test_rq_answers_say_the_query_heads_verdict(guided):
    loaded, rows, resolve = guided
    rows = [r for t in ("rq_name", "rq_mask", "rq_box") for r in [x for x in rows if x.task == t][:6]]
    p, out, seen = _run(loaded, rows, resolve)
    named = 0
    for pred, (_task, fake_p, query_p, _, mark_p, k) in zip(out, seen):
        # a question naming a region of the mark head's vocabulary: the mean of both heads' probabilities
        likely = query_p if k is None else (query_p + mark_p[k]) / 2
        named += k is not None
        yes = likely >= 0.5 and fake_p >= 0.5
        assert re.match(r"\s*(yes|no)\b", pred["answer"], re.I).group(1).lower() == ("yes" if yes else "no"), pred
    assert len(seen) == len(rows)


def _drive(p: Predictor, mark_p: list[float], wants: list[int], steps: int) -> list[int]:
    """Greedy decoding of one age row whose model always prefers the tokens of ``wants`` (in that order) under
    the guide's mark rule, from the step after the opening."""
    from fifa.modeling.guide import HeadGuide

    guide = HeadGuide(p, None, None, None, None, ["age"])
    guide.set_marks(0, mark_p)
    guide.step = 1
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
    want = [
        opener,
        *p.region_phrase_ids[2],
        p.phrase_close,
        p.seg_id,
        opener,
        *p.region_phrase_ids[0],
        p.phrase_close,
        p.seg_id,
    ]
    assert got[: len(want)] == want  # the two likely regions, most likely first, each closed with its [SEG]
    assert opener not in got[len(want) :]  # then no mark opens: no region left with p >= 0.5
    assert tok.decode(p.region_phrase_ids[2]).strip() == regions[2]["phrase"]
    assert _drive(p, [0.0] * len(regions), [opener, word], 4)[0] == opener  # the model may open a first mark
    # on an image the detection head calls real the heads' probabilities are zeros: no mark after the first
    # opened one is allowed, and predictions of such images carry empty masks (test below)


def test_age_predictions_pair_each_mark_with_a_mask(guided):
    loaded, rows, resolve = guided
    rows = [r for r in rows if r.task == "age"][:12]
    p, out, seen = _run(loaded, rows, resolve)
    for pred, (_task, fake_p, _, _, mark_p, _) in zip(out, seen):
        assert mark_p is not None and len(mark_p) == len(loaded.model.heads.regions)
        n_seg = pred["answer"].count("[SEG]")
        if fake_p >= 0.5:
            assert len(pred["masks"]) == max(1, n_seg) and pred["masks"]
        else:
            assert set(mark_p) == {0.0} and len(pred["masks"]) == n_seg


def test_age_answer_announces_the_mark_heads_count(guided):
    loaded, rows, resolve = guided
    model, tok = loaded.model, loaded.tokenizer
    p = Predictor(model.eval(), tok, loaded.fam, "cpu", 40, "head", "head")
    one, two = (tok(f" {n}", add_special_tokens=False)["input_ids"][-1] for n in (1, 2))
    assert p.count_of[one][0] == 1 and p.count_of[two][0] == 2
    mark_p = [0.1] * len(model.heads.regions)
    mark_p[3] = mark_p[5] = 0.8
    word = tok.convert_tokens_to_ids("<unk>")
    got = _drive(p, mark_p, [one, word], 3)  # the model would say "in 1 region"; the head finds two
    assert got[:2] == [two, one]  # the first number is the count; later ones are the model's own
    assert _drive(p, [0.0] * len(mark_p), [two, word], 1) == [one]  # at least one region is announced


def test_named_region_reads_the_question_longest_match_first():
    from fifa.modeling.guide import named_region

    regions = [
        {"id": "temple", "phrase": "the temple"},
        {"id": "right_upper_temple", "phrase": "the right upper temple"},
        {"id": "nose", "phrase": "nose"},
    ]
    assert named_region("Is the right upper temple manipulated?", regions) == 1
    assert named_region("Was the TEMPLE edited?", regions) == 0
    assert named_region("Has the nose-tip been edited?", regions) == 2  # words, not characters
    assert named_region("Is the mouth manipulated?", regions) is None and named_region(None, regions) is None


def test_rq_name_verdict_is_the_mean_of_the_query_and_mark_heads(guided):
    from fifa.modeling.guide import HeadGuide

    loaded, _, _ = guided
    p = Predictor(loaded.model.eval(), loaded.tokenizer, loaded.fam, "cpu", 40, "head", "head")
    n = len(loaded.model.heads.regions)
    guide = HeadGuide(p, None, None, None, None, ["rq_name"] * 4, [0, 0, None, 0])
    guide.head_p = [0.9, 0.9, 0.9, 0.1]
    guide.query_p = [0.3, 0.3, 0.6, 0.9]
    guide.mark_p = [[0.8] + [0.0] * (n - 1), [0.6] + [0.0] * (n - 1), None, [0.9] * n]
    yes = [guide._opening(b, "rq_name") == [[t] for t in p.yes_opening] for b in range(4)]
    assert yes == [True, False, True, False]  # 0.55 yes, 0.45 no, query alone, real image: no


def test_each_guided_mark_gives_its_seg_the_named_region(guided):
    """The [SEG] a guided mark ends with carries the region it names (its learned embedding joins the query)."""
    from fifa.modeling.guide import HeadGuide

    loaded, _, _ = guided
    model, tok = loaded.model, loaded.tokenizer
    assert (
        model.heads.mask.regions is not None and model.heads.mask.regions.num_embeddings == len(model.heads.regions) + 1
    )
    p = Predictor(model.eval(), tok, loaded.fam, "cpu", 40, "head", "head")
    guide = HeadGuide(p, None, None, None, None, ["age"])
    mark_p = [0.0] * len(model.heads.regions)
    mark_p[4], mark_p[1] = 0.9, 0.8
    guide.set_marks(0, mark_p)
    guide.step = 1
    ids, word = [p.phrase_open], tok.convert_tokens_to_ids("<unk>")
    for _ in range(30):
        scores = torch.zeros((1, len(tok)))
        scores[0, p.phrase_open], scores[0, word] = 10.0, 9.0
        ids.append(int(guide(torch.tensor([ids]), scores)[0].argmax()))
    segs = [j for j, t in enumerate(ids[1:], start=1) if t == p.seg_id]
    assert len(segs) == 2 and {j: m.region for j, m in guide.seg_regions[0].items()} == {segs[0]: 4, segs[1]: 1}
    assert [guide.seg_regions[0][j].node for j in segs] == [model.heads.regions[k]["id"] for k in (4, 1)]


def test_encoder_gives_each_seg_its_marked_region(guided, small_build):
    import numpy as np

    from fifa.modeling.collate import Encoder
    from fifa.modeling.data import InstructData

    loaded, _, _ = guided
    regions = [r["id"] for r in loaded.model.heads.regions]
    data = InstructData(small_build, "train")
    enc = Encoder(loaded.tokenizer, loaded.fam, [], "category", 32, 160, None, regions)
    seen = 0
    for i in np.flatnonzero(data.tasks == "age").tolist():
        row = data.rows.row(i)
        ex = enc(row, data.resolve_image)
        nodes = [n for m in row["messages"] if m["role"] == "assistant" for n, _ in parse_marks(m["content"])]
        assert len(ex.seg_regions) == len(ex.masks)
        assert ex.seg_regions.tolist() == [regions.index(n) if n in regions else -1 for n in nodes][: len(ex.masks)]
        seen += int((ex.seg_regions >= 0).sum())
    assert seen > 0
    loc = next(i for i in np.flatnonzero(data.tasks == "loc").tolist() if data.rows.row(i)["masks"])
    assert enc(data.rows.row(loc), data.resolve_image).seg_regions.tolist() == [-1]  # an appended [SEG]
