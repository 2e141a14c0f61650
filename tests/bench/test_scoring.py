"""End to end: `fifa-bench score` / `score()` against independent computations.

One CLI run (with Java: PTB tokenizer + METEOR) is shared by the module.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_helpers import make_bench, make_submission, write_bench, write_jsonl
from PIL import Image
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score, roc_curve

from fifa.benchmarks import metrics_text
from fifa.benchmarks.report import Report
from fifa.benchmarks.scoring import score
from fifa.core.rle import decode

FIFA_BENCH = Path(sys.executable).parent / "fifa-bench"
JAVA = metrics_text.java_available()

# what make_submission says, and what it means (written here, not taken from the parser)
DET_TRUTH = {
    "Yes, it is fake.": 1,
    "The face has been manipulated.": 1,
    "yes": 1,
    "It is a deepfake.": 1,
    "not real": 1,
    "No.": 0,
    "It is real.": 0,
    "No signs of manipulation.": 0,
    "not fake": 0,
    "authentic": 0,
    "I cannot tell.": None,
}
CLS_TRUTH = {
    "It is a face swap.": "FS",
    "face reenactment": "FR",
    "FE": "FE",
    "This image is real.": "real",
    "FS": "FS",
    "FR": "FR",
    "real": "real",
    "no idea": None,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    rows = make_bench(seed=11, n_det=60, n_cls=40, n_text=15, n_loc=12, n_age=12)
    sub = make_submission(rows, seed=4, p_drop=0.06)
    bench_p = write_bench(rows, d / "bench.parquet")
    sub_p = write_jsonl(sub, d / "sub.jsonl")
    out = d / "out"
    r = subprocess.run(
        [
            str(FIFA_BENCH),
            "score",
            "--bench",
            str(bench_p),
            "--submission",
            str(sub_p),
            "--out",
            str(out),
            "--seed",
            "3",
            "--bootstrap",
            "200",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    return {
        "rows": rows,
        "sub": {s["question_id"]: s for s in sub},
        "out": out,
        "stdout": r.stdout,
        "report": json.loads((out / "report.json").read_text()),
        "bench": bench_p,
        "sub_path": sub_p,
    }


def _task(run, task):
    return [r for r in run["rows"] if r["task"] == task]


def test_report_files_and_layout(run):
    rep, out = run["report"], run["out"]
    assert set(rep) == {"det", "cls", "toe", "fc", "loc", "age", "_meta"}
    assert set(rep["det"]) == {"acc", "auc", "ap", "eer", "n"}
    assert set(rep["cls"]) == {"acc", "macro_f1", "n"}
    text_keys = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider", "n"} | ({"meteor"} if JAVA else set())
    assert set(rep["toe"]) == text_keys
    assert set(rep["loc"]) == {"giou", "ciou", "n"}
    assert set(rep["age"]) == text_keys | {"giou", "ciou", "miou"}
    for t, m in rep.items():
        if t == "_meta":
            continue
        assert m["n"] == len(_task(run, t))
        for k, v in m.items():
            if k not in ("n", "cider"):
                assert v is None or 0.0 <= v <= 1.0, (t, k, v)
    meta = rep["_meta"]
    assert meta["n_missing"] == len(run["rows"]) - len(run["sub"])
    assert sum(meta["tasks"][t]["missing"] for t in meta["tasks"]) == meta["n_missing"]
    for t in ("det", "cls", "toe", "loc", "age"):
        ci = meta["tasks"][t]["ci"]
        assert ci["metric"] == meta["tasks"][t]["main_metric"] and ci["low"] <= rep[t][ci["metric"]] <= ci["high"]
        assert ci["resamples"] == 200 and ci["seed"] == 3
    assert "by_method" in meta["tasks"]["det"] and "by_category" in meta["tasks"]["cls"]
    md = (out / "report.md").read_text()
    assert "| task | n |" in md and "## det by method" in md
    for png in ("roc.png", "confusion.png", "per_method.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] > 100
    assert "det/auc" in run["stdout"]


def test_det_matches_sklearn(run):
    ys, parsed, s = [], [], []
    for r in _task(run, "det"):
        y = 1 if r["label"] == "fake" else 0
        a = run["sub"].get(r["question_id"])
        p = DET_TRUTH[a["answer"]] if a else None
        ys.append(y)
        parsed.append(p)
        s.append(a["score"] if a else 1.0 - y)  # every present det row has a score; missing = wrong side
    ys, s = np.array(ys), np.array(s)
    rep = run["report"]["det"]
    assert rep["acc"] == pytest.approx(np.mean([p == y for p, y in zip(parsed, ys)]), abs=1e-12)
    assert rep["auc"] == pytest.approx(roc_auc_score(ys, s), abs=1e-12)
    assert rep["ap"] == pytest.approx(average_precision_score(ys, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(ys, s)
    assert rep["eer"] == pytest.approx(fpr[np.nanargmin(np.abs(1 - tpr - fpr))], abs=1e-12)
    meta = run["report"]["_meta"]["tasks"]["det"]
    assert meta["unparsed"] == sum(
        1
        for r in _task(run, "det")
        if r["question_id"] in run["sub"] and DET_TRUTH[run["sub"][r["question_id"]]["answer"]] is None
    )


def test_cls_matches_sklearn(run):
    refs, preds = [], []
    for r in _task(run, "cls"):
        a = run["sub"].get(r["question_id"])
        refs.append(r["answer"])
        preds.append(CLS_TRUTH[a["answer"]] if a else None)
    p = ["?" if x is None else x for x in preds]
    classes = sorted(set(refs))
    rep = run["report"]["cls"]
    assert rep["acc"] == pytest.approx(accuracy_score(refs, p), abs=1e-12)
    assert rep["macro_f1"] == pytest.approx(
        f1_score(refs, p, labels=classes, average="macro", zero_division=0), abs=1e-12
    )
    assert run["report"]["_meta"]["tasks"]["cls"]["classes"] == classes


@pytest.fixture(scope="module")
def coco_reference(run):
    """pycocoevalcap itself, as its README uses it, on every text task (one METEOR process)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    meteor = Meteor()
    out = {}
    for task in ("toe", "fc", "age"):
        rows = _task(run, task)
        gts = {k: [{"caption": r["answer"]}] for k, r in enumerate(rows)}
        res = {k: [{"caption": run["sub"].get(r["question_id"], {}).get("answer", "")}] for k, r in enumerate(rows)}
        tok = PTBTokenizer()
        g, s = tok.tokenize(gts), tok.tokenize(res)
        bleu, _ = Bleu(4).compute_score(g, s, verbose=0)
        out[task] = {f"bleu_{i + 1}": bleu[i] for i in range(4)}
        out[task]["rouge_l"] = Rouge().compute_score(g, s)[0]
        out[task]["cider"] = Cider().compute_score(g, s)[0]
        out[task]["meteor"] = meteor.compute_score(g, s)[0]
    del meteor
    return out


@pytest.mark.skipif(not JAVA, reason="java not installed")
@pytest.mark.parametrize("task", ["toe", "fc", "age"])
def test_text_equals_pycocoevalcap(run, coco_reference, task):
    rep = run["report"][task]
    for k, v in coco_reference[task].items():
        assert rep[k] == pytest.approx(v, abs=1e-12), k
    assert run["report"]["_meta"]["tokenizer"] == "ptb" and run["report"]["_meta"]["meteor"] is True


def _iou(a, b):
    u = (a | b).sum()
    return 1.0 if u == 0 else (a & b).sum() / u


@pytest.mark.parametrize("task", ["loc", "age"])
def test_masks_match_brute_force(run, task):
    ious, inter, union, terms = [], 0, 0, []
    for r in _task(run, task):
        a = run["sub"].get(r["question_id"])
        R = [decode(m) for m in r["masks"]]
        P = [decode(m) for m in (a.get("masks") or [])] if a else []
        ur = np.any(R, axis=0) if R else np.zeros((24, 32), bool)
        up = np.any(P, axis=0) if P else np.zeros((24, 32), bool)
        ious.append(_iou(ur, up) if a else 0.0)
        inter += (ur & up).sum()
        union += (ur | up).sum()
        if not R:
            terms.append(1.0 if a and not any(p.any() for p in P) else 0.0)
            continue
        best = 0.0
        k = min(len(P), len(R))
        for rs in itertools.permutations(range(len(R)), k):
            for ps in itertools.permutations(range(len(P)), k):
                best = max(best, sum(_iou(P[p], R[q]) for p, q in zip(ps, rs)))
        terms += [best / len(R)] * len(R)
    rep = run["report"][task]
    assert rep["giou"] == pytest.approx(np.mean(ious), abs=1e-12)
    assert rep["ciou"] == pytest.approx(inter / union, abs=1e-12)
    if task == "age":
        assert rep["miou"] == pytest.approx(np.mean(terms), abs=1e-12)


def test_python_api_accepts_dataframes_and_matches_files(run):
    bench_df = pd.read_parquet(run["bench"])
    sub_df = pd.DataFrame([s for s in run["sub"].values() if s["question_id"].startswith(("det", "cls", "loc"))])
    a = score(bench_df, sub_df, bootstrap=0, use_java=False)
    b = score(
        run["bench"],
        [s for s in run["sub"].values() if s["question_id"].startswith(("det", "cls", "loc"))],
        bootstrap=0,
        use_java=False,
    )
    for t in ("det", "cls", "loc"):
        assert a.tasks[t] == b.tasks[t] == dict(run["report"][t].items())
    assert isinstance(a, Report) and a.main_metrics()["det/auc"] == run["report"]["det"]["auc"]


def test_without_java_meteor_is_omitted_and_said(run, monkeypatch):
    monkeypatch.setattr(metrics_text.shutil, "which", lambda name: None)
    rep = score(run["bench"], run["sub_path"], bootstrap=0)
    assert "meteor" not in rep.tasks["toe"] and "rouge_l" in rep.tasks["toe"]
    assert any(w.startswith("meteor omitted: java not found") for w in rep.warnings)
    assert rep.meta["tokenizer"] == "fallback" and rep.meta["meteor"] is False


@pytest.mark.skipif(not JAVA, reason="java not installed")
def test_no_meteor_option(run):
    rep = score(run["bench"], run["sub_path"], bootstrap=0, meteor=False)
    assert "meteor" not in rep.tasks["toe"] and rep.meta["tokenizer"] == "ptb"
    assert rep.tasks["toe"]["cider"] == pytest.approx(run["report"]["toe"]["cider"], abs=1e-12)
    assert "meteor omitted: disabled (--no-meteor)" in rep.warnings


def test_fallback_tokenizer():
    assert metrics_text.fallback_tokenize("It's a Face-Swap! (blurry) eyes...") == "it s a face swap blurry eyes"


def test_seeded_bootstrap_is_reproducible(run):
    a = score(run["bench"], run["sub_path"], bootstrap=100, seed=7, use_java=False)
    b = score(run["bench"], run["sub_path"], bootstrap=100, seed=7, use_java=False)
    c = score(run["bench"], run["sub_path"], bootstrap=100, seed=8, use_java=False)
    assert a.meta["tasks"]["det"]["ci"] == b.meta["tasks"]["det"]["ci"] != c.meta["tasks"]["det"]["ci"]


def test_one_class_det_bench_says_auc_undefined(tmp_path):
    rows = [r for r in make_bench(seed=2, n_det=10, n_cls=0, n_text=0, n_loc=0, n_age=0) if r["label"] == "fake"]
    p = write_bench(rows, tmp_path / "b.parquet")
    rep = score(p, [{"question_id": r["question_id"], "answer": "yes"} for r in rows])
    assert rep.tasks["det"]["auc"] is None and rep.tasks["det"]["eer"] is None and rep.tasks["det"]["acc"] == 1.0
    assert any("auc undefined: one class only" in w for w in rep.warnings)
    assert rep.meta["tasks"]["det"]["main_metric"] == "acc"
    rep.write(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["det"]["auc"] is None


def test_compare_leaderboard(run, tmp_path):
    other = tmp_path / "other"
    rep = score(run["bench"], run["sub_path"], bootstrap=0, use_java=False)
    rep.write(other, plots=False)
    r = subprocess.run(
        [str(FIFA_BENCH), "compare", str(run["out"]), str(other), "--format", "md"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("| run | det/auc | cls/acc |") and len(lines) == 4
    assert f"{run['report']['det']['auc']:.4f}" in lines[2]
    r = subprocess.run(
        [str(FIFA_BENCH), "compare", str(run["out"]), str(other), "--sort", "det/auc"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "leaderboard" in r.stdout
    r = subprocess.run([str(FIFA_BENCH), "compare", str(tmp_path / "nothing")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [[], ["score"], ["compare"]])
def test_help_has_examples(args):
    r = subprocess.run([str(FIFA_BENCH), *args, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Example" in r.stdout and "fifa-bench" in r.stdout
