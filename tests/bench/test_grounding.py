"""Grounding metrics of ``age`` (grounded_recall, grounded_precision, consistency) against an independent
reimplementation (``grounding_reference``): synthetic benches with known answers, and a real build."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from grounding_reference import Reference
from PIL import Image

from fifa.benchmarks.bench import BenchError
from fifa.benchmarks.scoring import score
from fifa.concept_tree.tree import ANCHORS, load_tree
from fifa.core.rle import decode, encode
from fifa.core.schemas import BENCH_SCHEMA

H, W = 40, 50
FIFA_BENCH = Path(sys.executable).parent / "fifa-bench"
TREE = load_tree()
REF = Reference()
#: reference nodes drawn for the synthetic rows: anchors, leaves under them, grouping parents
NODES = ["left_eye", "nose", "mouth", "chin", "right_cheek", "hair", "eyes"] + [
    n.id for n in TREE.leaves() if TREE.anchor_of(n.id) in ("left_eye", "nose", "mouth", "forehead")
][:12]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _cells() -> dict[str, np.ndarray]:
    """The anchors as a partition of the image into 19 cells (4 x 5 grid, the last cell joins the 19th)."""
    out = {}
    for k, a in enumerate(ANCHORS):
        m = np.zeros((H, W), dtype=bool)
        r, c = divmod(k, 5)
        m[r * 10 : (r + 1) * 10, c * 10 : (c + 1) * 10 if k < 18 else W] = True
        out[a] = m
    return out


CELLS = _cells()


def _node_mask(node: str, rng) -> np.ndarray:
    """A mask mostly inside the node's anchor cell(s), with a little spill."""
    anchors = REF.anchors_for(node)
    m = np.zeros((H, W), dtype=bool)
    for a in anchors:
        ys, xs = np.nonzero(CELLS[a])
        y0, x0 = ys.min() + int(rng.integers(0, 3)), xs.min() + int(rng.integers(0, 3))
        m[y0 : y0 + int(rng.integers(5, 9)), x0 : x0 + int(rng.integers(5, 10))] = True
    if rng.random() < 0.5:
        m[int(rng.integers(0, H)), int(rng.integers(0, W))] = True
    return m


def _row(k: int, label: str, refs: list[tuple[str, np.ndarray]], anchors: list[str], method: str) -> dict:
    return {
        "question_id": f"age-{k:03d}",
        "sample_id": f"s{k}",
        "task": "age",
        "image": {"bytes": _png(), "path": None},
        "question": "Explain.",
        "answer": "reference text",
        "label": label,
        "method": method,
        "category": "FS" if label == "fake" else "real",
        "masks": [encode(m) for _, m in refs],
        "mask_phrases": [TREE[n].name for n, _ in refs],
        "mask_node_ids": [n for n, _ in refs],
        "query_mask": None,
        "query_box": None,
        "history": [],
        "anchor_masks": [{"node_id": a, "mask": encode(CELLS[a])} for a in anchors],
    }


def write_bench(rows: list[dict], path: Path, drop: tuple[str, ...] = ()) -> Path:
    t = pa.Table.from_pylist(rows, schema=BENCH_SCHEMA)
    pq.write_table(t.drop_columns(list(drop)) if drop else t, path)
    return path


def _mark(node: str, style: str, phrase: str | None = None) -> str:
    phrase = phrase or "the " + TREE[node].name.lower() if node in TREE else phrase or node
    return f"<p>{phrase}</p> [SEG]" if style == "glamm" else f"[{phrase}]({node})"


def _answer(pairs: list[tuple[str, str]]) -> str:
    return "The image shows " + ", ".join(p for p, _ in pairs) + "."


def synthetic(seed: int, n: int = 70):
    """A bench of age rows and a submission mixing every kind of answer; also (answer, masks) per row."""
    rng = np.random.default_rng(seed)
    rows, sub = [], []
    kinds = [
        "perfect",
        "glamm",
        "wrong_names",
        "shifted",
        "unresolvable",
        "fewer_masks",
        "artifact",
        "missing",
        "real_pred",
        "real_plain",
    ]
    for k in range(n):
        kind = kinds[k % len(kinds)]
        present = [a for a in ANCHORS if rng.random() > 0.15]
        method = ["Deepfakes", "FaceSwap"][k % 2]
        if kind.startswith("real"):
            rows.append(_row(k, "real", [], present, method))
            if kind == "real_pred":
                node = str(rng.choice(NODES))
                sub.append(
                    {
                        "question_id": rows[-1]["question_id"],
                        "answer": _answer([(_mark(node, "ours"), 0)]),
                        "masks": [encode(_node_mask(node, rng))],
                    }
                )
            else:
                sub.append({"question_id": rows[-1]["question_id"], "answer": "It is real.", "masks": []})
            continue
        refs = [
            (str(x), _node_mask(str(x), rng)) for x in rng.choice(NODES, size=int(rng.integers(1, 4)), replace=False)
        ]
        rows.append(_row(k, "fake", refs, present, method))
        if kind == "missing":
            continue
        marks, masks = [], []
        for node, m in refs:
            if kind == "wrong_names":  # another anchor's name, the right mask
                other = next(a for a in ("nose", "hair", "chin") if REF.key(a) != REF.key(node))
                marks.append(_mark(other, "glamm"))
            else:
                marks.append(_mark(node, "glamm" if kind == "glamm" else "ours"))
            if kind == "shifted":
                m = np.roll(m, int(rng.integers(0, 6)), axis=1)
            masks.append(encode(m))
        if kind == "unresolvable":
            marks.insert(1, "<p>the flux capacitor</p> [SEG]")
            masks.insert(1, encode(_node_mask("nose", rng)))
        if kind == "fewer_masks":
            masks = masks[:-1]
        if kind == "artifact":
            marks.append("[the manipulated area](artifact)")
            masks.append(encode(np.logical_or.reduce([m for _, m in refs])))
        sub.append({"question_id": rows[-1]["question_id"], "answer": _answer([(x, 0) for x in marks]), "masks": masks})
    return rows, sub


def _expected(rows, sub, keep=lambda r: True):
    by_q = {s["question_id"]: s for s in sub}
    args = []
    for r in rows:
        if not keep(r):
            continue
        s = by_q.get(r["question_id"])
        args.append(
            (
                s["answer"] if s else None,
                s.get("masks") if s else None,
                r["mask_node_ids"],
                r["masks"],
                {a["node_id"]: a["mask"] for a in r["anchor_masks"]},
            )
        )
    return REF.metrics(args)


def _score(rows, sub, tmp_path, **kw):
    return score(
        write_bench(rows, tmp_path / "bench.parquet"),
        sub,
        bootstrap=kw.pop("bootstrap", 0),
        use_java=False,
        meteor=False,
        **kw,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_answers_equal_the_reimplementation(tmp_path, seed):
    rows, sub = synthetic(seed)
    rep = _score(rows, sub, tmp_path, bootstrap=200, seed=5)
    want = _expected(rows, sub)
    got = {k: rep.tasks["age"][k] for k in want}
    assert got == pytest.approx(want, abs=1e-12)
    assert 0 < want["grounded_recall"] < 1 and 0 < want["grounded_precision"] < 1 and 0 < want["consistency"] < 1
    tm = rep.meta["tasks"]["age"]
    for method in ("Deepfakes", "FaceSwap"):
        w = _expected(rows, sub, keep=lambda r, m=method: r["method"] == m)
        assert {k: tm["by_method"][method][k] for k in w} == pytest.approx(w, abs=1e-12)
    for k, v in want.items():
        ci = tm["cis"][k]
        assert ci["metric"] == k and ci["low"] <= v <= ci["high"] and ci["low"] < ci["high"]


def test_dataframe_bench_scores_like_its_parquet(tmp_path):
    import pandas as pd

    rows, sub = synthetic(11, n=30)
    want = _score(rows, sub, tmp_path).tasks["age"]
    got = score(pd.DataFrame(rows), sub, bootstrap=0, use_java=False, meteor=False).tasks["age"]
    assert {k: got[k] for k in ("grounded_recall", "grounded_precision", "consistency")} == {
        k: want[k] for k in ("grounded_recall", "grounded_precision", "consistency")
    }


def _single(kind_rows, kind_sub, tmp_path):
    rep = _score(kind_rows, kind_sub, tmp_path)
    return {k: rep.tasks["age"].get(k) for k in ("grounded_recall", "grounded_precision", "consistency")}


def _fakes(rng, n=6, nodes=("left_eye", "nose", "mouth")):
    return [_row(k, "fake", [(x, _node_mask(x, rng)) for x in nodes], list(ANCHORS), "Deepfakes") for k in range(n)]


def test_perfect_answers_score_one(tmp_path):
    rows = _fakes(np.random.default_rng(1))
    sub = [
        {
            "question_id": r["question_id"],
            "masks": r["masks"],
            "answer": _answer([(f"[{p}]({i})", 0) for p, i in zip(r["mask_phrases"], r["mask_node_ids"])]),
        }
        for r in rows
    ]
    got = _single(rows, sub, tmp_path)
    assert got["grounded_recall"] == 1.0 and got["grounded_precision"] == 1.0
    assert got["consistency"] == pytest.approx(_expected(rows, sub)["consistency"], abs=1e-12)
    assert got["consistency"] > 0.9


def test_wrong_region_names_with_right_masks_match_nothing(tmp_path):
    rows = _fakes(np.random.default_rng(2))
    swap = {"left_eye": "the nose", "nose": "the mouth", "mouth": "the left eye"}
    sub = [
        {
            "question_id": r["question_id"],
            "masks": r["masks"],
            "answer": _answer([(f"<p>{swap[i]}</p> [SEG]", 0) for i in r["mask_node_ids"]]),
        }
        for r in rows
    ]
    got = _single(rows, sub, tmp_path)
    assert got["grounded_recall"] == 0.0 and got["grounded_precision"] == 0.0
    assert got["consistency"] < 0.2  # each mask lies outside the region its text names
    assert got == pytest.approx(_expected(rows, sub), abs=1e-12)


def test_right_names_with_shifted_masks(tmp_path):
    rows = _fakes(np.random.default_rng(3))
    for shift, matched in ((1, True), (12, False)):
        sub = [
            {
                "question_id": r["question_id"],
                "masks": [encode(np.roll(decode(m), shift, axis=1)) for m in r["masks"]],
                "answer": _answer([(f"[{p}]({i})", 0) for p, i in zip(r["mask_phrases"], r["mask_node_ids"])]),
            }
            for r in rows
        ]
        got = _single(rows, sub, tmp_path)
        assert got == pytest.approx(_expected(rows, sub), abs=1e-12)
        assert (got["grounded_recall"] == 1.0) is matched and (got["grounded_recall"] == 0.0) is not matched


def test_unresolvable_phrases_count_against_precision_only(tmp_path):
    rows = _fakes(np.random.default_rng(4))
    sub = [
        {
            "question_id": r["question_id"],
            "masks": r["masks"] + [r["masks"][0]],
            "answer": _answer(
                [(f"[{p}]({i})", 0) for p, i in zip(r["mask_phrases"], r["mask_node_ids"])]
                + [("<p>a sparkly unicorn</p>[SEG]", 0)]
            ),
        }
        for r in rows
    ]
    got = _single(rows, sub, tmp_path)
    assert got["grounded_recall"] == 1.0 and got["grounded_precision"] == pytest.approx(3 / 4)
    assert got == pytest.approx(_expected(rows, sub), abs=1e-12)
    # the unresolved pair is left out of consistency: the same as without it
    plain = [
        {**s, "masks": s["masks"][:-1], "answer": s["answer"].replace(", <p>a sparkly unicorn</p>[SEG]", "")}
        for s in sub
    ]
    (tmp_path / "p").mkdir()
    assert _single(rows, plain, tmp_path / "p")["consistency"] == got["consistency"]


def test_bench_without_grounding_columns_scores_the_rest_and_says_so(tmp_path):
    rows, sub = synthetic(7, n=20)
    full = _score(rows, sub, tmp_path)
    for drop, missing in (
        (("mask_node_ids",), {"grounded_recall", "grounded_precision"}),
        (("anchor_masks",), {"consistency"}),
        (("mask_node_ids", "anchor_masks"), {"grounded_recall", "grounded_precision", "consistency"}),
    ):
        p = write_bench(rows, tmp_path / f"b-{len(drop)}-{drop[0]}.parquet", drop=drop)
        rep = score(p, sub, bootstrap=0, use_java=False, meteor=False)
        age = rep.tasks["age"]
        assert not missing & set(age)
        assert set(rep.meta["tasks"]["age"]["not_computed"]) == missing
        assert any("not computed" in w and all(m in w for m in missing) for w in rep.meta["warnings"])
        for k in ("giou", "miou", "rouge_l"):
            assert age[k] == full.tasks["age"][k]
        for k in {"grounded_recall", "grounded_precision", "consistency"} - missing:
            assert age[k] == full.tasks["age"][k]


def test_null_grounding_values_on_age_rows_mean_not_computed(tmp_path):
    """A release of an older build (columns cast to the new schema) or a build whose segmenter could not
    start (pipelines/bench_anchors.py) has nulls there: not computed, never 0."""
    rows, sub = synthetic(9, n=10)
    rep = _score([{**r, "anchor_masks": None} for r in rows], sub, tmp_path)
    assert "consistency" not in rep.tasks["age"] and "grounded_recall" in rep.tasks["age"]
    assert set(rep.meta["tasks"]["age"]["not_computed"]) == {"consistency"}


def test_broken_grounding_columns_refuse_the_bench(tmp_path):
    rows, sub = synthetic(8, n=10)
    bad = [dict(r) for r in rows]
    bad[0]["mask_node_ids"] = bad[0]["mask_node_ids"] + ["nose"] if bad[0]["masks"] else ["nose"]
    with pytest.raises(BenchError, match="mask_node_ids do not follow"):
        score(write_bench(bad, tmp_path / "a.parquet"), sub, bootstrap=0, use_java=False, meteor=False)
    bad = [dict(r) for r in rows]
    # anchor masks are checked when read (the anchors a submission names): never given to pycocotools
    bad[0]["anchor_masks"] = [{"node_id": a, "mask": {"size": [H, W], "counts": "0"}} for a in ANCHORS]
    with pytest.raises(BenchError, match=r"'age-000' has an invalid anchor mask for '\w+'"):
        score(write_bench(bad, tmp_path / "b.parquet"), sub, bootstrap=0, use_java=False, meteor=False)
    bad[0]["anchor_masks"] = [{"node_id": a, "mask": encode(np.ones((H + 1, W), dtype=bool))} for a in ANCHORS]
    with pytest.raises(BenchError, match="differs from image size"):
        score(write_bench(bad, tmp_path / "c.parquet"), sub, bootstrap=0, use_java=False, meteor=False)


# ------------------------------------------------------------------ a real build: real faces, real segmentation
@pytest.fixture(scope="module")
def real_build(tmp_path_factory):
    from fifa.annotator.forge import forge
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.pipelines.build import BuildConfig, build
    from fifa.pipelines.splits import SplitRatios

    d = tmp_path_factory.mktemp("grounding-build")
    manifest = forge(d / "forged", n=8, seed=11)
    run_annotation(manifest, d / "ann", AnnotateConfig(progress=False, workers=1))
    build(
        [d / "ann"],
        d / "build",
        BuildConfig(seed=3, ratios=SplitRatios(0.0, 0.0, 1.0), bench_per_class=None, tasks=("age", "det")),
    )
    return d / "build" / "bench.parquet"


def test_build_writes_node_ids_and_anchor_masks(real_build):
    t = pq.read_table(real_build).to_pylist()
    age = [r for r in t if r["task"] == "age"]
    assert {r["label"] for r in age} == {"fake", "real"}
    for r in t:
        if r["task"] != "age":
            assert r["mask_node_ids"] == [] and r["anchor_masks"] == []
            continue
        assert len(r["mask_node_ids"]) == len(r["masks"]) == len(r["mask_phrases"])
        assert all(i in TREE for i in r["mask_node_ids"])
        ids = [a["node_id"] for a in r["anchor_masks"]]
        assert set(ids) <= set(ANCHORS) and {"nose", "mouth", "left_eye", "right_eye"} <= set(ids)
        ams = [decode(a["mask"]).astype(bool) for a in r["anchor_masks"]]
        assert sum(int(m.sum()) for m in ams) == int(np.logical_or.reduce(ams).sum())  # disjoint
        if r["masks"]:
            assert ams[0].shape == tuple(r["masks"][0]["size"])


def test_real_images_with_and_without_predictions(real_build, tmp_path):
    rows = [r for r in pq.read_table(real_build).to_pylist() if r["task"] == "age"]
    sub = []
    for k, r in enumerate(rows):
        amap = {a["node_id"]: a["mask"] for a in r["anchor_masks"]}
        if r["label"] == "fake":  # the reference's own pairs
            marks = [f"[{p}]({i})" for p, i in zip(r["mask_phrases"], r["mask_node_ids"])]
            sub.append(
                {
                    "question_id": r["question_id"],
                    "answer": "The image shows " + ", ".join(marks) + ".",
                    "masks": r["masks"],
                }
            )
        elif k % 2:  # a real image with a prediction: the nose, drawn on the nose
            sub.append(
                {
                    "question_id": r["question_id"],
                    "answer": "Artifacts on <p>the nose</p> [SEG].",
                    "masks": [amap["nose"]],
                }
            )
        else:  # ... and without
            sub.append({"question_id": r["question_id"], "answer": "The face is authentic.", "masks": []})
    rep = score(real_build, sub, bootstrap=0, use_java=False, meteor=False)
    want = _expected(rows, sub)
    got = {k: rep.tasks["age"][k] for k in want}
    assert got == pytest.approx(want, abs=1e-12)
    assert got["grounded_recall"] == 1.0
    n_ref = sum(len(r["masks"]) for r in rows)
    n_real_pred = sum(1 for s in sub if "nose" in s["answer"])
    assert n_real_pred and got["grounded_precision"] == pytest.approx(n_ref / (n_ref + n_real_pred))
    assert 0.5 < got["consistency"] < 1.0


def test_cli_report_has_grounding_metrics(real_build, tmp_path):
    sub = tmp_path / "sub.jsonl"
    rows = [r for r in pq.read_table(real_build).to_pylist() if r["task"] == "age"]
    sub.write_text(
        "".join(
            json.dumps(
                {
                    "question_id": r["question_id"],
                    "masks": r["masks"],
                    "answer": " ".join(f"[{p}]({i})" for p, i in zip(r["mask_phrases"], r["mask_node_ids"])),
                }
            )
            + "\n"
            for r in rows
        )
    )
    out = tmp_path / "out"
    r = subprocess.run(
        [
            str(FIFA_BENCH),
            "score",
            "--bench",
            str(real_build),
            "--submission",
            str(sub),
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--no-meteor",
            "--no-plots",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    assert rep["age"]["grounded_recall"] == 1.0 and rep["age"]["grounded_precision"] == 1.0
    assert set(rep["_meta"]["tasks"]["age"]["cis"]) == {"grounded_recall", "grounded_precision", "consistency"}
    assert "grounded_recall" in (out / "report.md").read_text()
