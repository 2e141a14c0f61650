"""Builders of small synthetic benches and submissions for the scorer tests (imported by the tests)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from fifa.core.rle import RLE_TYPE, encode

METHODS = {"FS": ["Deepfakes", "FaceSwap"], "FR": ["Face2Face", "NeuralTextures"], "FE": ["FaceApp"]}
WORDS = [
    "the",
    "left",
    "eye",
    "shows",
    "blurred",
    "edges",
    "and",
    "inconsistent",
    "lighting",
    "around",
    "the",
    "mouth",
    "region",
    "with",
    "unnatural",
    "skin",
    "texture",
    "near",
    "nose",
    "chin",
    "cheek",
    "boundary,",
    "blending",
    "artifacts;",
    "it's",
    "a",
    "face-swap!",
]


def png_bytes(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def ellipse(h, w, rng) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(1, h / 2), rng.uniform(1, w / 2)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def sentence(rng, lo=3, hi=15) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi))))


def make_bench(seed=0, n_det=40, n_cls=30, n_text=12, n_loc=10, n_age=10, size=(24, 32)) -> list[dict]:
    """A bench with every kind of task; ``size`` is (h, w) of every image."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = {"bytes": png_bytes(h, w), "path": None}
    rows = []

    def base(task, k):
        fake = bool(rng.random() < 0.6)
        cat = str(rng.choice(list(METHODS))) if fake else "real"
        method = str(rng.choice(METHODS[cat])) if fake else None
        return {
            "question_id": f"{task}-{k}",
            "sample_id": f"s{task}{k}",
            "task": task,
            "image": img,
            "question": "?",
            "label": "fake" if fake else "real",
            "method": method,
            "category": cat,
            "masks": [],
            "mask_phrases": [],
            "query_mask": None,
        }

    for k in range(n_det):
        r = base("det", k)
        r["answer"] = "yes" if r["label"] == "fake" else "no"
        rows.append(r)
    for k in range(n_cls):
        r = base("cls", k)
        r["answer"] = r["category"]
        rows.append(r)
    for task in ("toe", "fc"):
        for k in range(n_text):
            r = base(task, k)
            r["answer"] = sentence(rng)
            rows.append(r)
    for task, n in (("loc", n_loc), ("age", n_age)):
        for k in range(n):
            r = base(task, k)
            r["answer"] = sentence(rng) if task == "age" else ""
            if r["label"] == "fake":
                nm = 1 if task == "loc" else int(rng.integers(1, 4))
                r["masks"] = [encode(ellipse(h, w, rng)) for _ in range(nm)]
                r["mask_phrases"] = ["region"] * nm
            rows.append(r)
    return rows


def write_bench(rows: list[dict], path: Path) -> Path:
    mask_t = pa.list_(RLE_TYPE)
    schema = pa.schema(
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
            ("masks", mask_t),
            ("mask_phrases", pa.list_(pa.string())),
            ("query_mask", RLE_TYPE),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def make_submission(bench: list[dict], seed=1, size=None, p_drop=0.0) -> list[dict]:
    """A noisy but valid submission (list of JSON-able rows)."""
    rng = np.random.default_rng(seed)
    out = []
    phr_fake = ["Yes, it is fake.", "The face has been manipulated.", "yes", "It is a deepfake.", "not real"]
    phr_real = ["No.", "It is real.", "No signs of manipulation.", "not fake", "authentic"]
    cls_say = {"FS": "It is a face swap.", "FR": "face reenactment", "FE": "FE", "real": "This image is real."}
    for r in bench:
        if rng.random() < p_drop:
            continue
        s = {"question_id": r["question_id"]}
        t = r["task"]
        if t == "det":
            fake_pred = (r["label"] == "fake") != (rng.random() < 0.25)
            s["answer"] = str(rng.choice(phr_fake if fake_pred else phr_real))
            if rng.random() < 0.05:
                s["answer"] = "I cannot tell."
            s["score"] = float(np.clip(rng.normal(0.65 if r["label"] == "fake" else 0.35, 0.25), 0, 1))
        elif t == "cls":
            c = r["answer"] if rng.random() < 0.7 else str(rng.choice(list(cls_say)))
            s["answer"] = cls_say[c] if rng.random() < 0.5 else c
            if rng.random() < 0.05:
                s["answer"] = "no idea"
        elif t in ("toe", "fc", "age"):
            s["answer"] = r["answer"] if rng.random() < 0.2 else sentence(rng)
        if t in ("loc", "age"):
            h, w = size or (r["masks"][0]["size"] if r["masks"] else (24, 32))
            nm = int(rng.integers(0, 4))
            s["masks"] = [encode(ellipse(h, w, rng)) for _ in range(nm)]
            if r["masks"] and rng.random() < 0.3:
                s["masks"] = list(r["masks"])  # a perfect answer
        out.append(s)
    return out


def write_jsonl(rows: list[dict], path: Path) -> Path:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path
