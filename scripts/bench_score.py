#!/usr/bin/env python
"""Speed of `fifa-bench score`: end to end, text metrics vs pycocoevalcap, RLE masks vs numpy decoding.

Generates a bench and a submission with 100,000 det/cls answers, 20,000 text answers
and 10,000 mask answers (256x256, random ellipses), then times, in one run.
Texts are explanation-like sentences (1-3 "the REGION shows ARTIFACT" clauses and a
closing sentence, about 15-45 words); predictions are drawn the same way, 10% copy the
reference.

1. ``score()`` end to end (validation, parsing, every metric, 1000-resample bootstrap, report + plots);
2. the text metrics of ``fifa.benchmarks.metrics_text`` vs pycocoevalcap used as in its
   ``COCOEvalCap`` (per task: PTB tokenizer on references and on predictions, then Bleu(4),
   Meteor, Rouge, Cider), checking the numbers are equal;
3. the mask metrics on RLE (pycocotools merge/area/iou) vs decoding every mask to a numpy
   array (same giou/ciou/miou definitions), checking the numbers are equal.

Usage: python scripts/bench_score.py [--scale 1.0] [--out bench_score_out] [--skip-coco]
Prints a table and writes OUT/bench_score.json.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from benchkit import machine
from fifa.benchmarks.metrics_mask import mask_scores
from fifa.benchmarks.metrics_text import java_available, text_scores
from fifa.benchmarks.scoring import score
from fifa.core.rle import RLE_TYPE, encode
from fifa.core.tasks import TEXT_TASKS

METHODS = {
    "FS": ["Deepfakes", "FaceSwap", "FaceShifter"],
    "FR": ["Face2Face", "NeuralTextures"],
    "FE": ["FaceApp"],
    "EFS": ["StyleGAN2"],
}


def _png(h, w):
    b = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(b, format="PNG")
    return b.getvalue()


def _ellipse_pool(rng, k, h, w):
    yy, xx = np.mgrid[:h, :w]
    pool = []
    for _ in range(k):
        cy, cx, ry, rx = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, h / 3), rng.uniform(4, w / 3)
        pool.append(encode(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1))
    return pool


REGIONS = (
    "left eye",
    "right eye",
    "left eyebrow",
    "right eyebrow",
    "nose bridge",
    "nose tip",
    "left nostril",
    "upper lip",
    "lower lip",
    "mouth corners",
    "teeth",
    "chin",
    "left jawline",
    "right jawline",
    "forehead",
    "hairline",
    "left cheek",
    "right cheek",
    "left temple",
    "right temple",
    "left ear",
    "right ear",
    "neck",
    "philtrum",
    "eyelids",
    "under-eye area",
    "glabella",
    "cheekbones",
    "skin around the mouth",
    "face boundary",
)
ARTIFACTS = (
    "blurred edges",
    "an inconsistent skin tone",
    "unnatural specular highlights",
    "misaligned teeth",
    "double contours",
    "color bleeding",
    "over-smoothed texture",
    "a warped outline",
    "asymmetric pupils",
    "missing wrinkles",
    "a visible blending seam",
    "jagged boundaries",
    "mismatched lighting",
    "ghosting from the source face",
    "irregular reflections",
    "flat shading",
    "checkerboard patterns",
    "a plastic-like sheen",
    "distorted proportions",
    "an abrupt change in sharpness",
    "noise that differs from the background",
    "a shifted shadow direction",
    "a waxy appearance",
    "inconsistent grain",
)
CLOSINGS = (
    "These cues suggest that the identity was swapped.",
    "The expression appears to be transferred from another person.",
    "Overall the face looks synthesized by a generative model.",
    "Such traces are typical of {m}.",
    "The rest of the image looks consistent.",
    "This points to a local attribute edit.",
    "The background and hair remain natural, so the manipulation is confined to the face.",
)
LINKS = ("while", "and", "whereas", "and also", "moreover")


def _sentence(rng, lo=1, hi=3):
    parts = []
    for k in range(int(rng.integers(lo, hi + 1))):
        reg, art = rng.choice(REGIONS), rng.choice(ARTIFACTS)
        verb = rng.choice(["shows", "has", "exhibits", "contains", "is marked by"])
        if k == 0:
            parts.append(f"The {reg} {verb} {art}")
        else:
            parts.append(f"{rng.choice(LINKS)} the {reg} {verb} {art}")
    close = str(rng.choice(CLOSINGS)).format(m=rng.choice(sum(METHODS.values(), [])))
    return ", ".join(parts) + ". " + close


def generate(out: Path, scale: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_det, n_cls = int(60_000 * scale), int(40_000 * scale)
    n_text, n_mask = int(20_000 * scale), int(10_000 * scale)
    h = w = 256
    pool = _ellipse_pool(rng, 3000, h, w)
    img_small, img_mask = {"bytes": _png(64, 64), "path": None}, {"bytes": _png(h, w), "path": None}
    bench, sub = [], []
    cats = list(METHODS) + ["real"]
    fake_say = ["Yes.", "Yes, the face is forged.", "It is a deepfake.", "The face has been manipulated."]
    real_say = ["No.", "No, it is real.", "There are no signs of manipulation.", "not fake"]

    def row(task, k, answer, masks=(), image=img_small):
        fake = rng.random() < 0.6
        cat = str(rng.choice(cats[:-1])) if fake else "real"
        return {
            "question_id": f"{task}-{k}",
            "sample_id": f"{task}{k}",
            "task": task,
            "image": image,
            "question": "q",
            "answer": answer,
            "label": "fake" if fake else "real",
            "method": str(rng.choice(METHODS[cat])) if fake else None,
            "category": cat,
            "masks": list(masks),
            "mask_phrases": [],
            "query_mask": None,
        }

    for k in range(n_det):
        r = row("det", k, None)
        r["answer"] = "Yes" if r["label"] == "fake" else "No"
        bench.append(r)
        y = r["label"] == "fake"
        guess = y if rng.random() < 0.8 else not y
        sub.append(
            {
                "question_id": r["question_id"],
                "answer": str(rng.choice(fake_say if guess else real_say)),
                "score": float(np.clip(rng.normal(0.7 if y else 0.3, 0.2), 0, 1)),
                "masks": None,
            }
        )
    for k in range(n_cls):
        r = row("cls", k, None)
        r["answer"] = r["category"]
        bench.append(r)
        p = r["category"] if rng.random() < 0.7 else str(rng.choice(cats))
        sub.append(
            {"question_id": r["question_id"], "answer": f"The manipulation is {p}.", "score": None, "masks": None}
        )
    text_tasks = [t for t in TEXT_TASKS if t != "age"]
    n_age = n_mask // 2
    for k in range(n_text - n_age):
        t = text_tasks[k % len(text_tasks)]
        r = row(t, k, _sentence(rng))
        bench.append(r)
        ans = r["answer"] if rng.random() < 0.1 else _sentence(rng)
        sub.append({"question_id": r["question_id"], "answer": ans, "score": None, "masks": None})
    for k in range(n_mask):
        t = "loc" if k < n_mask - n_age else "age"
        r = row(t, k, _sentence(rng) if t == "age" else "", image=img_mask)
        if r["label"] == "fake":
            r["masks"] = [pool[i] for i in rng.integers(0, len(pool), 1 if t == "loc" else rng.integers(1, 4))]
        bench.append(r)
        pm = [pool[i] for i in rng.integers(0, len(pool), rng.integers(0, 4))]
        if r["masks"] and rng.random() < 0.3:
            pm = list(r["masks"])
        sub.append(
            {
                "question_id": r["question_id"],
                "answer": _sentence(rng) if t == "age" else "",
                "score": None,
                "masks": pm,
            }
        )
    rle_t = RLE_TYPE
    bench_schema = pa.schema(
        [
            ("question_id", pa.string()),
            ("sample_id", pa.string()),
            ("task", pa.string()),
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("label", pa.string()),
            ("method", pa.string()),
            ("category", pa.string()),
            ("masks", pa.list_(rle_t)),
            ("mask_phrases", pa.list_(pa.string())),
            ("query_mask", rle_t),
        ]
    )
    sub_schema = pa.schema(
        [("question_id", pa.string()), ("answer", pa.string()), ("score", pa.float64()), ("masks", pa.list_(rle_t))]
    )
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(bench, schema=bench_schema), out / "bench.parquet")
    pq.write_table(pa.Table.from_pylist(sub, schema=sub_schema), out / "submission.parquet")
    return bench, sub


# ------------------------------------------------------------------ baselines
def coco_baseline(tasks):
    """pycocoevalcap as COCOEvalCap uses it, per task."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = {}
    for t, (refs, hyps) in tasks.items():
        tok = PTBTokenizer()
        g = tok.tokenize({k: [{"caption": x}] for k, x in enumerate(refs)})
        r = tok.tokenize({k: [{"caption": x}] for k, x in enumerate(hyps)})
        b, _ = Bleu(4).compute_score(g, r, verbose=0)
        m = Meteor()
        out[t] = {
            "bleu_1": b[0],
            "bleu_2": b[1],
            "bleu_3": b[2],
            "bleu_4": b[3],
            "meteor": m.compute_score(g, r)[0],
            "rouge_l": Rouge().compute_score(g, r)[0],
            "cider": Cider().compute_score(g, r)[0],
        }
        del m
    return out


def numpy_masks(refs, preds):
    """giou, ciou, miou by decoding every mask to pixels."""
    ious, inter, union, msum, mcnt = [], 0, 0, 0.0, 0
    for R, P in zip(refs, preds):
        Rd = [mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()}).astype(bool) for r in R]
        Pd = [mask_utils.decode({"size": p["size"], "counts": p["counts"].encode()}).astype(bool) for p in P]
        h, w = (R or P or [{"size": [1, 1]}])[0]["size"]
        ur = np.any(Rd, axis=0) if Rd else np.zeros((h, w), bool)
        up = np.any(Pd, axis=0) if Pd else np.zeros((h, w), bool)
        i, u = int((ur & up).sum()), int((ur | up).sum())
        ious.append(1.0 if u == 0 else i / u)
        inter += i
        union += u
        if not Rd:
            mcnt += 1
            msum += 1.0 if not any(p.any() for p in Pd) else 0.0
            continue
        mcnt += len(Rd)
        if not Pd:
            continue
        a = np.stack([p.ravel() for p in Pd]).astype(np.float32)
        b = np.stack([r.ravel() for r in Rd]).astype(np.float32)
        ii = a @ b.T
        uu = a.sum(1)[:, None] + b.sum(1)[None, :] - ii
        m = np.where(uu > 0, ii / np.maximum(uu, 1), 1.0)
        rr, cc = linear_sum_assignment(m, maximize=True)
        msum += float(m[rr, cc].sum())
    return {"giou": float(np.mean(ious)), "ciou": inter / union if union else 1.0, "miou": msum / mcnt}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--out", default="bench_score_out")
    ap.add_argument("--skip-coco", action="store_true", help="skip the pycocoevalcap baseline")
    args = ap.parse_args()
    out = Path(args.out)
    t0 = time.perf_counter()
    bench, sub = generate(out, args.scale)
    t_gen = time.perf_counter() - t0
    counts = {
        "det_cls": sum(r["task"] in ("det", "cls") for r in bench),
        "text": sum(r["task"] in TEXT_TASKS for r in bench),
        "masks": sum(r["task"] in ("loc", "age") for r in bench),
    }

    t0 = time.perf_counter()
    rep = score(out / "bench.parquet", out / "submission.parquet", bootstrap=1000)
    rep.write(out / "report")
    t_e2e = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep_nm = score(out / "bench.parquet", out / "submission.parquet", bootstrap=1000, meteor=False)
    rep_nm.write(out / "report_no_meteor")
    t_e2e_nm = time.perf_counter() - t0

    tasks = {}
    by_id = {s["question_id"]: s for s in sub}
    for r in bench:
        if r["task"] in TEXT_TASKS:
            refs, hyps = tasks.setdefault(r["task"], ([], []))
            refs.append(r["answer"])
            hyps.append(by_id[r["question_id"]]["answer"])
    t0 = time.perf_counter()
    ours, _ = text_scores(tasks)
    t_text = time.perf_counter() - t0
    t_coco, text_equal = None, None
    if not args.skip_coco and java_available():
        t0 = time.perf_counter()
        coco = coco_baseline(tasks)
        t_coco = time.perf_counter() - t0
        text_equal = all(abs(ours[t].summary[k] - v) < 1e-9 for t in coco for k, v in coco[t].items())

    mask_rows = [r for r in bench if r["task"] in ("loc", "age")]
    refs = [r["masks"] for r in mask_rows]
    preds = [by_id[r["question_id"]]["masks"] for r in mask_rows]
    t0 = time.perf_counter()
    ms = mask_scores(refs, preds, [False] * len(refs), with_miou=True).summary(True)
    t_rle = time.perf_counter() - t0
    t0 = time.perf_counter()
    npm = numpy_masks(refs, preds)
    t_np = time.perf_counter() - t0
    mask_equal = all(abs(ms[k] - npm[k]) < 1e-6 for k in ms)

    result = {
        "machine": {**machine(), "java": java_available()},
        "sizes": counts,
        "generate_s": round(t_gen, 2),
        "score_end_to_end_s": round(t_e2e, 2),
        "score_end_to_end_no_meteor_s": round(t_e2e_nm, 2),
        "text": {
            "ours_s": round(t_text, 2),
            "pycocoevalcap_s": None if t_coco is None else round(t_coco, 2),
            "speedup": None if t_coco is None else round(t_coco / t_text, 2),
            "equal": text_equal,
        },
        "masks": {
            "rle_s": round(t_rle, 3),
            "numpy_decode_s": round(t_np, 3),
            "speedup": round(t_np / t_rle, 2),
            "equal": mask_equal,
            "values": ms,
        },
        "report_main_metrics": rep.main_metrics(),
    }
    (out / "bench_score.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']}")
    print(f"sizes: {counts}")
    print(f"{'what':44s} {'seconds':>9s}")
    print(f"{'score() end to end (incl. report, plots)':44s} {t_e2e:9.2f}")
    print(f"{'score() end to end, --no-meteor':44s} {t_e2e_nm:9.2f}")
    print(f"{'text metrics, fifa (one PTB call, METEOR bg)':44s} {t_text:9.2f}")
    if t_coco is not None:
        print(
            f"{'text metrics, pycocoevalcap (COCOEvalCap way)':44s} {t_coco:9.2f}   "
            f"ratio {t_coco / t_text:.2f}x, equal={text_equal}"
        )
    print(f"{'mask metrics, RLE (pycocotools)':44s} {t_rle:9.2f}")
    print(f"{'mask metrics, numpy decode baseline':44s} {t_np:9.2f}   ratio {t_np / t_rle:.2f}x, equal={mask_equal}")
    print(f"wrote {out / 'bench_score.json'}")


if __name__ == "__main__":
    main()
