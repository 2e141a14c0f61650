"""Marks named from the artifact mask (modeling/mark_plan.py, ``predict.mark_source: mask``).

- The regions an answer marks are those the annotator would choose on the same mask and segmentation (covered
  leaves rolled up to their parents, strongest share first, at most five), each named by the annotator's
  phrase and carrying its index in the mark head's vocabulary (-1 outside it).
- In prediction, an age answer is written again with the marks its first answer's masks cover, and each
  mark's mask stays inside the region it names.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from fifa.annotator.regions import select_regions
from fifa.modeling.mark_plan import MAX_MARKS, artifact_of, plan_from_mask, region_phrase


@pytest.fixture(scope="module")
def face(grace_hopper_rgb):
    from fifa.concept_tree.segmentation.segment import Segmenter

    seg = Segmenter()
    try:
        found = seg.segment(grace_hopper_rgb)
    finally:
        seg.close()
    assert found.ok
    return found


def _phrases(seen: list[str]):
    def phrase_ids(node: str) -> tuple[int, ...]:
        seen.append(node)
        return (len(node),)

    return phrase_ids


def test_marks_are_the_regions_the_annotator_would_choose(face):
    artifact = face.mask("left_eyebrow") | face.mask("nose")
    seen: list[str] = []
    plan = plan_from_mask(face, artifact, _phrases(seen), {"nose": 7})
    nodes = [m.node for m in plan]
    assert sorted(nodes) == ["left_eyebrow", "nose"]  # the leaves roll up to the two regions edited
    assert nodes == select_regions(face, artifact).chosen  # strongest share first, as the annotator orders
    assert seen == nodes and [m.phrase for m in plan] == [(len(n),) for n in nodes]
    assert {m.node: m.region for m in plan} == {"nose": 7, "left_eyebrow": -1}  # -1: outside the vocabulary


def test_at_most_five_marks_and_none_for_another_size(face):
    from fifa.concept_tree.tree import load_tree

    tree, present = load_tree(), set(face.areas())
    leaves = {}  # one leaf under each of eight parents with three or more leaves found: none rolls up
    for leaf in face.leaf_ids:
        parent = tree[leaf].parent
        if leaf in present and parent not in leaves and sum(c in present for c in tree[parent].children) >= 3:
            leaves[parent] = leaf
    patchy = np.logical_or.reduce([face.mask(leaf) for leaf in list(leaves.values())[:8]])
    plan = plan_from_mask(face, patchy, _phrases([]), {})
    assert len(select_regions(face, patchy).chosen) > MAX_MARKS and len(plan) == MAX_MARKS
    assert plan_from_mask(face, patchy[:-1], _phrases([]), {}) == []  # a mask of another size marks nothing


def test_artifact_is_the_union_of_an_answers_masks():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[0, 0], b[3, 3] = True, True
    assert artifact_of([a, b]).sum() == 2 and artifact_of([a, b])[3, 3]
    assert artifact_of([]) is None and artifact_of([np.zeros((4, 4), bool)]) is None


def test_region_phrase_is_the_annotators():
    assert region_phrase("left_eyebrow", "Left eyebrow") == "the left eyebrow"
    assert region_phrase("tzone", "T-zone") == "the T-zone"  # an initialism keeps its capitals


@pytest.fixture(scope="module")
def micro(small_build, tmp_path_factory):
    from micro_config import MICRO

    from fifa.modeling.config import load_config
    from fifa.modeling.loading import from_checkpoint
    from fifa.modeling.train import train

    out = tmp_path_factory.mktemp("mark_plan") / "ck"
    cfg = load_config(None, [*MICRO, "train.max_steps=40", "train.save_every=40", "data.tasks.age=3"])
    train(cfg, small_build, out, progress=False)
    return from_checkpoint(out)


def test_a_given_plan_is_announced_and_named_in_order(micro):
    from fifa.modeling.guide import HeadGuide, PlannedMark
    from fifa.modeling.predict import Predictor

    p = Predictor(micro.model.eval(), micro.tokenizer, micro.fam, "cpu", 40, "head", "head", mark_source="mask")
    tok = p.tok
    outside = next(n for n in ("columella", "left_tragus", "philtrum", "glabella") if n not in p.vocabulary)
    plan = [PlannedMark(outside, tuple(p._phrase_ids(outside)), -1), PlannedMark("left_cheek", (5, 6), 2)]
    guide = HeadGuide(p, None, None, None, None, ["age"], None, [plan])
    guide.set_marks(0, [0.9] * len(micro.model.heads.regions))  # the head finds every region likely
    guide.step = 1
    one = tok(" 1", add_special_tokens=False)["input_ids"][-1]
    word = tok.convert_tokens_to_ids("<unk>")
    ids = [tok.convert_tokens_to_ids("<|assistant|>")]
    for k in range(24):
        scores = torch.zeros((1, len(tok)))
        scores[0, one] = 12.0 if k == 0 else 0.0  # the model would say "in 1 region"
        scores[0, p.phrase_open], scores[0, word] = 10.0, 9.0
        ids.append(int(guide(torch.tensor([ids]), scores)[0].argmax()))
    got = ids[1:]
    assert p.count_of[got[0]][0] == 2  # "in 2 regions": the plan's count, not the head's 0.9s
    want = [p.phrase_open, *plan[0].phrase, p.phrase_close, p.seg_id, p.phrase_open, 5, 6, p.phrase_close, p.seg_id]
    assert got[1 : 1 + len(want)] == want and p.phrase_open not in got[1 + len(want) :]
    assert [m.node for m in guide.seg_regions[0].values()] == [outside, "left_cheek"]
    name = p.anchor_masks.tree[outside].name.lower()
    assert tok.decode(list(plan[0].phrase)).strip() == f"the {name}"  # the annotator's phrase, outside the vocabulary


def test_each_marks_mask_stays_in_its_own_region(micro, grace_hopper_rgb, face):
    from fifa.modeling.guide import PlannedMark
    from fifa.modeling.predict import Predictor

    p = Predictor(micro.model.eval(), micro.tokenizer, micro.fam, "cpu", mark_source="mask")
    p._rgbs = [("gh.jpg", grace_hopper_rgb)]
    everywhere = np.ones(grace_hopper_rgb.shape[:2], bool)
    kept = p._in_region(everywhere, 0, "left_eyeball")
    assert (kept == face.mask("left_eyeball")).all()  # the eyeball itself, not its anchor (the left eye)
    assert p.cut_level == "node" and Predictor(micro.model, micro.tokenizer, micro.fam, "cpu").anchor_masks is None
    raw = [[(everywhere, PlannedMark("nose", (1,), -1)), (everywhere, None)]]
    p._raw_masks = lambda *a: raw
    from fifa.core.rle import decode

    masks = p._masks([[]], None, None, None, None, None, [0.9], [{}])
    assert (decode(masks[0][0]).astype(bool) == face.mask("nose")).all()  # a mark outside the vocabulary, cut
    assert decode(masks[0][1]).all()  # a [SEG] without a mark keeps its mask
    assert not decode(p._masks([[]], None, None, None, None, None, [0.1], [{}])[0][0]).any()  # a real image


def test_age_answers_are_written_again_from_their_masks(micro, small_build):
    from fifa.core.records import BenchQuestion
    from fifa.modeling.predict import Predictor, bench_resolver

    age = [r for r in BenchQuestion.from_arrow(pq.read_table(small_build / "bench.parquet")) if r.task == "age"]
    rows = [r for r in age if r.label == "fake"][:4] + [r for r in age if r.label == "real"][:4]
    p = Predictor(micro.model.eval(), micro.tokenizer, micro.fam, "cpu", 40, "head", "head", mark_source="mask")
    calls, real = [], p._generate

    def spy(*a):
        out = real(*a)
        if not calls:  # a 40-step detection head calls every face real: here it is right
            out[2].head_p = [0.9 if r.label == "fake" else 0.1 for r in rows]
        calls.append((a[6] if len(a) > 6 else None, out[2].head_p))
        return out

    p._generate = spy
    raw = p._raw_masks  # a 40-step model's masks are near empty: its first answers' masks cover the face
    p._raw_masks = lambda *a: [[(np.ones_like(m), k) for m, k in row] for row in raw(*a)]
    with torch.no_grad():
        p(rows, bench_resolver(small_build / "bench.parquet"))
    (first, _), (plans, _) = calls
    assert first is None and [plan is not None for plan in plans] == [True] * 4 + [False] * 4
    assert all(1 <= len(plan) <= MAX_MARKS for plan in plans[:4])  # a face the head calls real: the head's plan
