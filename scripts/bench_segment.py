"""Benchmark `fifa-tree segment` against a plain decode + MediaPipe FaceMesh script, and
measure the segmentation quality targets (partition, left/right, stability).

    .venv/bin/python scripts/bench_segment.py [--n 500] [--size 384] [--out bench_out/segment]

Both timings are whole processes (start-up included), run one after the other on the same
images. Results are printed and written to OUT/bench_segment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BASELINE = r'''
import sys, glob
import numpy as np
from PIL import Image
import mediapipe as mp
files = sorted(glob.glob(sys.argv[1] + "/*.jpg"))
n = 0
with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
    for f in files:
        img = np.asarray(Image.open(f).convert("RGB"))
        res = fm.process(img)
        n += bool(res.multi_face_landmarks)
print(n)
'''


def make_faces(out: Path, n: int, size: int, seed: int = 0) -> None:
    """n face images of size x size: random crops, scales, small rotations, mirrors, colour jitter."""
    import cv2
    import matplotlib
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    bases = [
        (skimage.data.astronaut(), (176, 112, 64)),  # image, (cx, cy, face half-size) of the face
        (np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")), (256, 200, 90)),
    ]
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, (cx, cy, r) = bases[i % 2]
        half = int(r * rng.uniform(1.6, 2.6))
        cx2, cy2 = cx + int(rng.integers(-r // 4, r // 4 + 1)), cy + int(rng.integers(-r // 4, r // 4 + 1))
        angle = float(rng.uniform(-12, 12))
        M = cv2.getRotationMatrix2D((float(cx2), float(cy2)), angle, 1.0)
        rot = cv2.warpAffine(img, M, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        y0, x0 = max(0, cy2 - half), max(0, cx2 - half)
        crop = rot[y0 : cy2 + half, x0 : cx2 + half]
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.clip(crop * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.uint8)
        Image.fromarray(crop).save(out / f"face_{i:04d}.jpg", quality=92)


def timed(cmd: list[str]) -> float:
    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


FACE_CROPS = {"astronaut": (slice(10, 250), slice(60, 300)), "grace_hopper": (slice(40, 400), slice(70, 430))}


def quality() -> dict:
    """Partition and parents on the two sample photos; 512 px vs 256 px stability on their face crops."""
    import cv2
    import matplotlib
    import skimage.data
    from PIL import Image

    from fifa.concept_tree.segment import Segmenter
    from fifa.concept_tree.tree import ANCHORS, load_tree

    tree = load_tree()
    face_leaves = [n.id for n in tree.leaves(under="face")]
    photos = {
        "astronaut": skimage.data.astronaut(),
        "grace_hopper": np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")),
    }
    res: dict = {}
    with Segmenter() as seg:
        for name, img in photos.items():
            r = seg.segment(img)
            stack = np.stack([r.mask(i) for i in face_leaves])
            parents_ok = all(
                np.array_equal(r.mask(n.id), np.any([r.mask(c) for c in n.children], axis=0))
                for n in tree.nodes if not n.is_leaf
            )  # fmt: skip
            big = cv2.resize(img[FACE_CROPS[name]], (512, 512), interpolation=cv2.INTER_AREA)
            small = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
            rb, rs = seg.segment(big), seg.segment(small)
            ious = {}
            for a in ANCHORS:
                mb = rb.mask(a)
                ms = cv2.resize(rs.mask(a).astype(np.uint8), (512, 512), interpolation=cv2.INTER_NEAREST) > 0
                union = (mb | ms).sum()
                if union:
                    ious[a] = round(float((mb & ms).sum() / union), 3)
            res[name] = {
                "overlap_px": int((stack.sum(0) > 1).sum()),
                "face_coverage": float(stack.any(0)[r.face_mask].mean()),
                "parents_equal_union": parents_ok,
                "stability_iou_512_vs_256": ious,
                "anchors_at_least_0.85": sum(v >= 0.85 for v in ious.values()),
            }
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--out", type=Path, default=Path("bench_out/segment"))
    args = ap.parse_args()
    faces = args.out / "faces"
    if not faces.exists() or len(list(faces.glob("*.jpg"))) != args.n:
        make_faces(faces, args.n, args.size)
    base_script = args.out / "baseline_facemesh.py"
    base_script.write_text(BASELINE)
    py = sys.executable
    fifa_tree = str(Path(py).parent / "fifa-tree")
    baseline = timed([py, str(base_script), str(faces)])
    ours = timed([fifa_tree, "segment", str(faces), "--out", str(args.out / "seg"), "--no-overlays", "--quiet"])
    import pyarrow.parquet as pq

    images = pq.read_table(args.out / "seg" / "images.parquet").to_pandas()
    rows = pq.read_metadata(args.out / "seg" / "regions.parquet").num_rows
    result = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "images": args.n,
        "size": args.size,
        "baseline_decode_facemesh_s": round(baseline, 2),
        "fifa_tree_segment_s": round(ours, 2),
        "ratio": round(ours / baseline, 3),
        "ok": int((images.status == "ok").sum()),
        "region_rows": rows,
        "quality": quality(),
    }
    (args.out / "bench_segment.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
