"""Small build and release folders written with pyarrow per the shared schemas (viewer tests).

The builder is written in parallel; these folders follow DESIGN.md "Files and columns" and
`fifa.pipelines.schema` so the viewer can be tested on every input kind without it.
Images are crops of the public-domain sample faces; masks are geometric shapes (their exact
pixels are known, so a screenshot can be checked against them).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from fifa.annotator.store import rows_to_table
from fifa.core.rle import encode
from fifa.core.schemas import ANNOTATION_SCHEMA, BENCH_SCHEMA, INSTRUCT_SCHEMA

SIZE = 96  # side of every test image
METHODS = ["Deepfakes", "Face2Face", "FaceSwap", None]
#: Strings that must show literally in the page and never run.
HOSTILE_ID = 'evil"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
HOSTILE_TEXT = (
    "<script>window.__pwned=3;document.title='pwned'</script> The "
    "[edge <img src=x onerror=window.__pwned=4>](left_eye) is blurred & <b>odd</b>."
)


def faces(astronaut: np.ndarray, grace: np.ndarray) -> list[np.ndarray]:
    """Two face crops, SIZE x SIZE."""
    a = Image.fromarray(astronaut[20:240, 150:330]).resize((SIZE, SIZE))
    g = Image.fromarray(grace[60:400, 130:470]).resize((SIZE, SIZE))
    return [np.asarray(a), np.asarray(g)]


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def box_mask(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), bool)
    m[y0:y1, x0:x1] = True
    return m


#: Two masks per fake sample: a box on the image's left half (tall) and one at the bottom right (wide).
MASK_A = box_mask(10, 80, 5, 30)
MASK_B = box_mask(70, 90, 50, 92)


def sample_ids(n: int) -> list[str]:
    return [f"s{k:02d}" for k in range(n)]


def _instruct_rows(sid: str, k: int, split: str, image: dict, label: str, method: str | None) -> list[dict]:
    base = dict(
        sample_id=sid,
        image=image,
        label=label,
        method=method,
        category="FS" if label == "fake" else "real",
        group=f"g{k}",
        split=split,
        masks=[],
        mask_phrases=[],
        mask_node_ids=[],
        query_mask=None,
        query_box=None,
    )
    first = "<image>\n"
    rows = [
        dict(
            base,
            id=f"{sid}-det",
            task="det",
            messages=[
                {"role": "user", "content": first + "Is this face forged?"},
                {"role": "assistant", "content": "Yes." if label == "fake" else "No."},
            ],
        )
    ]
    if label == "fake":
        a, b = encode(MASK_A), encode(MASK_B)
        rows.append(
            dict(
                base,
                id=f"{sid}-age",
                task="age",
                masks=[a, b],
                mask_phrases=["left cheek", "lower lip"],
                mask_node_ids=["left_cheek", "lower_lip"],
                messages=[
                    {"role": "user", "content": first + "Explain the artifacts."},
                    {
                        "role": "assistant",
                        "content": "The [left cheek](left_cheek) is smeared and the [lower lip](lower_lip) has a seam.",
                    },
                ],
            )
        )
        rows.append(
            dict(
                base,
                id=f"{sid}-rq_box",
                task="rq_box",
                query_box=[50.0, 70.0, 92.0, 90.0],
                messages=[
                    {"role": "user", "content": first + "Is the boxed region manipulated?"},
                    {"role": "assistant", "content": "Yes, it has a seam."},
                ],
            )
        )
    return rows


def _bench_rows(sid: str, image: dict, label: str, method: str | None) -> list[dict]:
    base = dict(
        sample_id=sid,
        image=image,
        label=label,
        method=method,
        category="FS" if label == "fake" else "real",
        masks=[],
        mask_phrases=[],
        query_mask=None,
        query_box=None,
        history=[],
    )
    rows = [
        dict(
            base,
            question_id=f"{sid}-det",
            task="det",
            question="Is this face forged?",
            answer="yes" if label == "fake" else "no",
        )
    ]
    if label == "fake":
        rows.append(
            dict(
                base,
                question_id=f"{sid}-age",
                task="age",
                question="Explain.",
                answer="The left cheek is smeared; the lower lip has a seam.",
                masks=[encode(MASK_A), encode(MASK_B)],
                mask_phrases=["left cheek", "lower lip"],
            )
        )
        rows.append(
            dict(
                base,
                question_id=f"{sid}-loc",
                task="loc",
                question="Where?",
                answer="Here.",
                masks=[encode(MASK_A | MASK_B)],
            )
        )
    return rows


def write_build(root: Path, face_images: list[np.ndarray], n: int = 10, hostile: bool = True) -> Path:
    """A build with ``n`` samples: train / validation instruction rows and a bench.

    Images are embedded (even samples) or referenced by a path relative to the image root that
    build.json names (odd samples); sample ``s03`` names a file that does not exist.
    """
    root.mkdir(parents=True)
    (root / "instruct").mkdir()
    img_root = root.parent / f"{root.name}_images"
    img_root.mkdir()
    ins: dict[str, list] = {"train": [], "validation": []}
    bench: list[dict] = []
    for k, sid in enumerate(sample_ids(n)):
        rgb = face_images[k % len(face_images)]
        if k % 2 == 0:
            image = {"bytes": png(rgb), "path": None}
        else:
            Image.fromarray(rgb).save(img_root / f"{sid}.png")
            image = {"bytes": None, "path": f"{sid}.png" if sid != "s03" else "missing/s03.png"}
        label = "real" if k % 3 == 2 else "fake"
        method = METHODS[k % 4] if label == "fake" else None
        split = ("train", "train", "train", "validation", "test")[k % 5]
        if split == "test":
            bench += _bench_rows(sid, image, label, method)
        else:
            ins[split] += _instruct_rows(sid, k, split, image, label, method)
    if hostile:
        image = {"bytes": png(face_images[0]), "path": None}
        rows = _instruct_rows(HOSTILE_ID, 99, "train", image, "fake", "<b>Method</b>")
        rows[1]["messages"][1]["content"] = HOSTILE_TEXT
        rows[1]["masks"], rows[1]["mask_phrases"], rows[1]["mask_node_ids"] = [encode(MASK_A)], ["edge"], ["left_eye"]
        ins["train"] += rows
    for split, rows in ins.items():
        pq.write_table(pa.Table.from_pylist(rows, schema=INSTRUCT_SCHEMA), root / "instruct" / f"{split}.parquet")
    pq.write_table(pa.Table.from_pylist(bench, schema=BENCH_SCHEMA), root / "bench.parquet")
    (root / "build.json").write_text(
        json.dumps(
            {"version": "test", "seed": 0, "image_root": f"../{img_root.name}", "annotations": str(root.parent / "ann")}
        ),
        "utf-8",
    )
    (root / "stats.json").write_text(json.dumps({"samples": n, "rows": {"train": len(ins["train"])}}), "utf-8")
    return root


def write_release(root: Path, face_images: list[np.ndarray], n: int = 6) -> Path:
    """A release in the Hugging Face layout: instruct (train, validation), bench (test), annotations."""
    build = write_build(root.parent / f"{root.name}_build", face_images, n=n, hostile=False)
    data = root / "data"
    for config in ("instruct", "bench", "annotations"):
        (data / config).mkdir(parents=True)
    files = []
    for split in ("train", "validation"):
        t = pq.read_table(build / "instruct" / f"{split}.parquet")
        t = _embed(t, build)
        files.append(data / "instruct" / f"{split}-00000-of-00001.parquet")
        pq.write_table(t, files[-1])
    files.append(data / "bench" / "test-00000-of-00001.parquet")
    pq.write_table(_embed(pq.read_table(build / "bench.parquet"), build), files[-1])
    ann = []
    for sid in sample_ids(n)[:2]:
        ann.append(
            {
                "sample_id": sid,
                "status": "ok",
                "label": "fake",
                "method": "Deepfakes",
                "category": "FS",
                "artifact_mask": encode(MASK_A | MASK_B),
                "explanation": "The [left cheek](left_cheek) is smeared.",
                "segments": [{"node_id": "left_cheek", "phrase": "left cheek", "mask": encode(MASK_A)}],
            }
        )
    files.append(data / "annotations" / "train-00000-of-00001.parquet")
    pq.write_table(rows_to_table(ann), files[-1])
    (root / "README.md").write_text("---\nconfigs: []\n---\n# test release\n", "utf-8")
    manifest = {
        "version": "0.0.1",
        "files": {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files},
    }
    (root / "MANIFEST.json").write_text(json.dumps(manifest), "utf-8")
    return root


def _embed(t: pa.Table, build: Path) -> pa.Table:
    """Released images carry their bytes (a missing file stays a relative path)."""
    img_root = build.parent / f"{build.name}_images"
    out = []
    for im in t.column("image").to_pylist():
        if im["bytes"] is None and (img_root / im["path"]).is_file():
            im = {"bytes": (img_root / im["path"]).read_bytes(), "path": im["path"]}
        out.append(im)
    return t.set_column(t.column_names.index("image"), "image", pa.array(out, t.schema.field("image").type))


def hostile_annotations(src: Path, dst: Path) -> Path:
    """A copy of a real annotation run whose first fake row has a hostile sample_id and explanation."""
    rows = pq.read_table(next((src / "annotations").glob("part-*.parquet"))).to_pylist()
    fake = next(r for r in rows if r["label"] == "fake" and r["segments"])
    fake["sample_id"] = HOSTILE_ID
    fake["method"] = "<b>Method</b>"
    fake["explanation"] = HOSTILE_TEXT
    fake["segments"] = fake["segments"][:1]
    fake["error"] = "<script>window.__pwned=5</script>"
    (dst / "annotations").mkdir(parents=True)
    pq.write_table(rows_to_table([fake]), dst / "annotations" / "part-000001-test.parquet")
    assert set(ANNOTATION_SCHEMA.names) <= set(pq.read_schema(dst / "annotations" / "part-000001-test.parquet").names)
    return dst


def read_js(path: Path):
    """The payload of a site data file (``fifaViewerData(kind, n, {...});``)."""
    text = path.read_text("ascii")
    head = text.index("{")
    assert text.startswith("fifaViewerData(") and text.rstrip().endswith(");")
    return json.loads(text[head : text.rstrip().rindex(")")])


def site_samples(site: Path) -> dict[str, dict]:
    out = {}
    for p in sorted((site / "data").glob("p*.js")):
        for s in read_js(p)["samples"]:
            out[s["id"]] = s
    return out
