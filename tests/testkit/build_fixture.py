"""Test helpers: builds for the modeling tests and benchmarks.

:func:`real_chain_build` runs the real chain (``fifa-data forge`` -> ``fifa-annotate run`` ->
``fifa-data build``) through the library APIs. :func:`make_build` / :func:`write_build` write a
smaller hand-made build straight from forge output (exact truth masks, one phrasing per task), for
tests that need specific rows.

Hand-made builds: simple rows per forged image: det, cls, loc, age (one grounded mark over the truth mask), rq_box and
rq_mask (the truth region for a fake, a central patch for a real image). ``group`` is the identity;
the identities in ``bench_groups`` (or a seeded share of them) go to the bench only, so the bench
holds unseen faces. Images are referenced by paths relative to the build folder (the forge output
lives in ``BUILD/forged/``); ``embed_every`` embeds the bytes of every n-th bench image instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core import rle as rle_utils
from fifa.core.schemas import BENCH_SCHEMA, INSTRUCT_SCHEMA

DET_Q = "<image>\nIs this face forged?"
CLS_Q = "<image>\nWhich kind of forgery is this: FS, FE or real?"
LOC_Q = "<image>\nSegment the manipulated region."
AGE_Q = "<image>\nExplain the artifacts and show where they are."
RQ_Q = "<image>\nIs the marked region manipulated?"


def lfw_faces(dest: Path, n: int = 100, size: int = 128) -> Path:
    """scikit-image's lfw_subset faces (25 px grey), upscaled to ``size`` px RGB PNGs."""
    import cv2
    import skimage.data
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(skimage.data.lfw_subset()[:n]):
        g = cv2.resize((f * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        Image.fromarray(np.stack([g] * 3, -1)).save(dest / f"lfw_{i:03d}.png")
    return dest


def _phrase(node: str | None) -> str:
    return (node or "face").replace("_", " ")


def _rows_for(r: dict, size: tuple[int, int]) -> list[dict]:
    """Question/answer/mask rows of one forged image (task, question, answer with marks, masks, query)."""
    fake = r["label"] == "fake"
    h, w = size
    truth = r["truth_mask"]
    m = rle_utils.decode(truth) if fake else None
    if fake:
        ys, xs = np.nonzero(m)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        qmask = truth
    else:
        box = [w * 0.35, h * 0.35, w * 0.65, h * 0.65]
        sq = np.zeros((h, w), np.uint8)
        sq[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = 1
        qmask = rle_utils.encode(sq)
    target = _phrase(r["truth_target"])
    out = [
        dict(task="det", q=DET_Q, a="Yes, the face is fake." if fake else "No, the face is real.", masks=[]),
        dict(task="cls", q=CLS_Q, a=r["category"], masks=[]),
        dict(
            task="loc",
            q=LOC_Q,
            a="The manipulation is confined to [the manipulated region](artifact)."
            if fake
            else "No region is manipulated.",
            masks=[truth] if fake else [],
            phrases=["the manipulated region"],
        ),
        dict(
            task="age",
            q=AGE_Q,
            a=f"The [{target}]({r['truth_target'] or 'face'}) shows {r['method']} artifacts."
            if fake
            else "The face shows no artifacts.",
            masks=[truth] if fake else [],
            phrases=[target],
        ),
        dict(
            task="rq_box",
            q=RQ_Q,
            a=f"Yes, this region shows {r['method']} artifacts." if fake else "No, this region is authentic.",
            masks=[],
            box=box,
        ),
        dict(
            task="rq_mask",
            q=RQ_Q,
            a=f"Yes, this region shows {r['method']} artifacts." if fake else "No, this region is authentic.",
            masks=[],
            qmask=qmask,
        ),
    ]
    return out


def write_build(
    forged: Path,
    build: Path,
    bench_share: float = 0.2,
    seed: int = 0,
    val_share: float = 0.1,
    bench_groups: set[str] | None = None,
    embed_every: int = 0,
    tasks: tuple[str, ...] | None = None,
) -> Path:
    """Write ``build/instruct/{train,validation}.parquet`` and ``build/bench.parquet`` from a forge folder
    (which must be inside ``build``). Returns ``build``."""
    from fifa.core.marks import strip as to_plain

    man = pq.read_table(forged / "manifest.parquet").to_pylist()
    groups = sorted({r["group"] for r in man})
    rng = np.random.default_rng(seed)
    if bench_groups is None:
        perm = list(rng.permutation(groups))
        k = max(1, int(round(bench_share * len(groups))))
        bench_groups = set(perm[:k])
    rest = [g for g in groups if g not in bench_groups]
    val_groups = set(list(rng.permutation(rest))[: max(1, int(round(val_share * len(rest))))]) if val_share else set()
    instruct = {"train": [], "validation": []}
    bench = []
    for r in man:
        rel = (forged / r["image_path"]).relative_to(build).as_posix()
        size = tuple(r["truth_mask"]["size"])
        split = "test" if r["group"] in bench_groups else "validation" if r["group"] in val_groups else "train"
        for x in _rows_for(r, size):
            if tasks and x["task"] not in tasks:
                continue
            qid = f"{r['sample_id']}:{x['task']}"
            common = dict(
                sample_id=r["sample_id"],
                task=x["task"],
                label=r["label"],
                method=r["method"],
                category=r["category"],
                masks=x["masks"],
                query_mask=x.get("qmask"),
                query_box=x.get("box"),
                mask_phrases=x.get("phrases", [])[: len(x["masks"])],
            )
            if split == "test":
                emb = embed_every and len(bench) % embed_every == 0
                image = (
                    {"bytes": (forged / r["image_path"]).read_bytes(), "path": None}
                    if emb
                    else {"bytes": None, "path": rel}
                )
                bench.append(
                    dict(common, question_id=qid, image=image, question=x["q"], answer=to_plain(x["a"]), history=[])
                )
            else:
                instruct[split].append(
                    dict(
                        common,
                        id=qid,
                        image={"bytes": None, "path": rel},
                        messages=[{"role": "user", "content": x["q"]}, {"role": "assistant", "content": x["a"]}],
                        mask_node_ids=["artifact"] * len(x["masks"]),
                        group=r["group"],
                        split=split,
                    )
                )
    (build / "instruct").mkdir(parents=True, exist_ok=True)
    for split, rows in instruct.items():
        pq.write_table(
            pa.Table.from_pylist(rows, schema=INSTRUCT_SCHEMA),
            build / "instruct" / f"{split}.parquet",
            row_group_size=512,
        )
    pq.write_table(pa.Table.from_pylist(bench, schema=BENCH_SCHEMA), build / "bench.parquet")
    return build


#: Edit kinds a detector that sees only the fake can find on lfw_subset faces (grey 25 px crops, upscaled):
#: colour in a grey face, noise on a smooth one, blending seams. Warps and blurs of an already blurry
#: upscaled face leave nothing a single image shows (measured per kind in docs/train.md).
VISIBLE_KINDS = ("SBI", "ColorShift", "Noise", "Tint", "IrisRecolour", "RegionSwap")


def real_chain_build(
    work: Path,
    n: int = 600,
    seed: int = 0,
    identity_size: int = 128,
    kinds: tuple[str, ...] | None = VISIBLE_KINDS,
    test_share: float = 0.2,
    max_identities: int | None = None,
) -> Path:
    """``work/build`` made by the real chain on lfw_subset identities (each its own group, so the bench
    holds identities that training never saw). Reuses what an earlier call left in ``work``."""
    from fifa.annotator.forge import forge
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.pipelines.build import BuildConfig, build
    from fifa.pipelines.splits import SplitRatios

    forged, ann, out = work / "forged", work / "annotations", work / "build"
    if (out / "build.json").is_file():
        return out
    if not (forged / "manifest.parquet").is_file():
        forge(
            forged,
            n=n,
            seed=seed,
            identities="lfw",
            identity_size=identity_size,
            kinds=kinds,
            max_identities=max_identities,
        )
    # one worker: shards hold the rows in manifest order, so the build (and what trains on it) is the same
    # on every run; with two, completion order changes the rows' storage order and so the training order
    run_annotation(forged / "manifest.parquet", ann, AnnotateConfig(progress=False, workers=1))
    val = 0.1
    build([ann], out, BuildConfig(seed=seed, ratios=SplitRatios(1 - val - test_share, val, test_share)))
    return out


def make_build(build: Path, n: int = 60, seed: int = 0, faces: Path | None = None, **kw) -> Path:
    """forge (base images: the full faces and their mirrors) into ``build/forged`` and write the build."""
    from fifa.annotator.forge import forge

    forged = build / "forged"
    if not (forged / "manifest.parquet").is_file():
        forge(forged, n=n, seed=seed, faces=faces, base_tags=("full", "full_mirror"))
    return write_build(forged, build, seed=seed, **kw)
