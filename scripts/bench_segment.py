"""Benchmarks of the region segmentation (numbers go to docs/segmentation.md and the README).

    .venv/bin/python scripts/bench_segment.py speed [--n 300] [--size 384] [--repeats 3]
    .venv/bin/python scripts/bench_segment.py quality     # partition, parents, oval coverage, 512 vs 256 px
    .venv/bin/python scripts/bench_segment.py roughness   # per anchor, tuning faces vs held-out faces
    .venv/bin/python scripts/bench_segment.py neck        # neck skin share, 1.8x crops of dressed people
    .venv/bin/python scripts/bench_segment.py gallery     # overlays for docs/img/
    .venv/bin/python scripts/bench_segment.py all

Faces. *Tuning*: the two public-domain photos the rules and the atlas were tuned on (astronaut,
Grace Hopper, and their mirrors). *Held out*: the 100 faces of scikit-image's ``lfw_subset``
(25 x 25 grey, upscaled to 250 px; many turned heads), never used for tuning. Dressed people:
1.8x face crops of the two photos, and the same with synthetic clothing or hair painted on
(labelled ``synthetic``).

Speed: whole processes (start-up included) on the same images, one after the other:
``fifa-tree segment`` against a plain script that decodes the images and runs FaceMesh. Per core:
both pinned to one CPU (``taskset``) with one worker; and as before, two workers against one
plain process. Each run gives its wall time and the CPU time of its whole process tree (orphaned
pool processes adopted and reaped), the best of ``--repeats`` runs. Also the process CPU time per
image inside one process (decode + FaceMesh against a segmentation worker's job) and per stage,
which other jobs on the machine disturb least.
Results are printed and written to OUT/bench_segment_<what>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchkit import machine

BASELINE = r"""
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
"""

INNER = (
    "left_eye",
    "right_eye",
    "left_eyebrow",
    "right_eyebrow",
    "nose",
    "mouth",
    "left_cheek",
    "right_cheek",
    "chin",
    "forehead",
)
CONTOUR = ("left_temple", "right_temple", "left_jaw", "right_jaw")


# ------------------------------------------------------------------ faces
def photos() -> dict[str, np.ndarray]:
    import matplotlib
    import skimage.data
    from PIL import Image

    grace = np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB"))
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": grace}


def tuning_faces() -> dict[str, np.ndarray]:
    out = {}
    for k, img in photos().items():
        out[k] = img
        out[k + "_mirror"] = np.ascontiguousarray(img[:, ::-1])
    return out


def heldout_faces(size: int = 250) -> dict[str, np.ndarray]:
    import cv2
    import skimage.data

    lfw = skimage.data.lfw_subset()[:100]  # the first 100 are faces
    out = {}
    for i, f in enumerate(lfw):
        g = cv2.resize((np.clip(f, 0, 1) * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
        out[f"lfw_{i:03d}"] = np.repeat(g[:, :, None], 3, axis=2)
    return out


def face_crop(img: np.ndarray, landmarks: np.ndarray, factor: float = 1.8, size: int = 384) -> np.ndarray:
    """A square crop ``factor`` times the face box, centred on the face, resized to ``size``."""
    import cv2

    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, factor * max(x1 - x0, y1 - y0) / 2
    pad = int(half) + 2
    big = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    a, b = int(round(cy - half)) + pad, int(round(cx - half)) + pad
    crop = big[a : a + int(2 * half), b : b + int(2 * half)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _paint_collar(img: np.ndarray, lm: np.ndarray, colour, rng) -> np.ndarray:
    """Synthetic shirt: a collar and shoulders in ``colour`` (with noise) from below the chin down."""
    import cv2

    out = img.copy()
    h, w = img.shape[:2]
    chin = lm[152, :2]
    iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
    top = chin[1] + 0.3 * iod
    poly = np.array(
        [
            [chin[0] - 0.55 * iod, top],
            [chin[0], top + 0.45 * iod],
            [chin[0] + 0.55 * iod, top],
            [w, top + 0.2 * iod],
            [w, h],
            [0, h],
            [0, top + 0.2 * iod],
        ],
        np.int32,
    )
    m = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m, [poly], 1)
    cloth = np.clip(np.array(colour, np.float32) + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    out[m.astype(bool)] = cloth[m.astype(bool)]
    return out


def _paint_long_hair(img: np.ndarray, lm: np.ndarray, hair_patch: np.ndarray) -> np.ndarray:
    """Synthetic long hair: the photo's own hair texture tiled down both sides of the neck."""
    import cv2

    out = img.copy()
    h, w = img.shape[:2]
    iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
    for side in (234, 454):  # face contour at ear level, both sides
        x, y = lm[side, :2]
        sgn = -1 if side == 234 else 1
        poly = np.array(
            [
                [x - sgn * 0.15 * iod, y],
                [x + sgn * 0.35 * iod, y],
                [x + sgn * 0.45 * iod, h],
                [x - sgn * 0.25 * iod, h],
            ],
            np.int32,
        )
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [poly], 1)
        tile = np.tile(hair_patch, (h // hair_patch.shape[0] + 1, w // hair_patch.shape[1] + 1, 1))[:h, :w]
        out[m.astype(bool)] = tile[m.astype(bool)]
    return out


def dressed_crops() -> dict[str, np.ndarray]:
    """1.8x face crops of dressed people: the two photos, mirrored, and with synthetic shirts and hair."""
    from fifa.concept_tree.segmentation.segment import Segmenter

    rng = np.random.default_rng(5)
    out = {}
    with Segmenter() as seg:
        for k, img in photos().items():
            crop = face_crop(img, seg.segment(img, outside_face=False).landmarks)
            lm = seg.segment(crop, outside_face=False).landmarks
            out[k] = crop
            out[k + "_mirror"] = np.ascontiguousarray(crop[:, ::-1])
            for name, colour in (
                ("blue_shirt", (70, 110, 190)),
                ("white_shirt", (235, 235, 230)),
                ("red_sweater", (170, 30, 40)),
                ("green_jacket", (60, 90, 50)),
            ):
                out[f"{k}_synthetic_{name}"] = _paint_collar(crop, lm, colour, rng)
        astro = out["astronaut"]
        lm = Segmenter().segment(astro, outside_face=False).landmarks
        patch = astro[5:45, 150:230]  # her hair, above the forehead
        out["astronaut_synthetic_long_hair"] = _paint_long_hair(astro, lm, patch)
    return out


# ------------------------------------------------------------------ measures
def bench_roughness() -> dict:
    from fifa.concept_tree.segmentation.quality import face_width, roughness
    from fifa.concept_tree.segmentation.segment import Segmenter

    def measure(faces: dict) -> dict:
        per = {a: [] for a in INNER + CONTOUR}
        strict = {a: [] for a in INNER}
        n = 0
        with Segmenter() as seg:
            for img in faces.values():
                r = seg.segment(img, outside_face=False)
                if not r.ok:
                    continue
                n += 1
                fw = face_width(r.landmarks)
                for a in per:
                    m = r.mask(a)
                    if m.any():
                        per[a].append(roughness(m, fw))
                        if a in strict:
                            strict[a].append(roughness(m, fw, 0.06))
        # inf: the open removed the whole mask (a band thinner than the disk everywhere)
        summary = {
            a: {
                "mean_finite": round(float(np.mean(np.array(v)[np.isfinite(v)])), 3),
                "median": round(float(np.median(v)), 3),
                "p95": round(float(np.percentile(v, 95)), 3),
                "max": round(float(np.max(v)), 3),
                "share_over_1.10": round(float(np.mean(np.array(v) > 1.10)), 3),
                "infinite": int(np.sum(~np.isfinite(v))),
            }
            for a, v in per.items()
            if v
        }
        inner = np.concatenate([per[a] for a in INNER])
        strict_inner = np.concatenate([strict[a] for a in INNER])
        return {
            "faces": n,
            "per_anchor": summary,
            "inner_mean_finite": round(float(inner[np.isfinite(inner)].mean()), 3),
            "inner_median": round(float(np.median(inner)), 3),
            "inner_infinite": int((~np.isfinite(inner)).sum()),
            "inner_share_over_1.10": round(float((inner > 1.10).mean()), 3),
            "inner_mean_finite_disk_6pct": round(float(strict_inner[np.isfinite(strict_inner)].mean()), 3),
        }

    return {"tuning": measure(tuning_faces()), "heldout_lfw": measure(heldout_faces())}


def bench_neck() -> dict:
    from fifa.concept_tree.segmentation.quality import skin_share, skin_share_ycrcb_box
    from fifa.concept_tree.segmentation.segment import Segmenter

    res = {}
    with Segmenter() as seg:
        for k, img in dressed_crops().items():
            r = seg.segment(img)
            neck, body = r.mask("neck"), r.mask("upper_body")
            res[k] = {
                "neck_share_of_image": round(float(neck.mean()), 4),
                "neck_skin_share": round(skin_share(neck, img, r.landmarks), 3) if neck.any() else None,
                "neck_skin_share_ycrcb_box": round(skin_share_ycrcb_box(neck, img), 3) if neck.any() else None,
                "upper_body_skin_share": round(skin_share(body, img, r.landmarks), 3) if body.any() else None,
                "mode": r.meta.get("outside_face"),
            }
    shares = [v["neck_skin_share"] for v in res.values() if v["neck_skin_share"] is not None]
    return {"images": res, "neck_skin_share_min": min(shares), "neck_skin_share_median": float(np.median(shares))}


FACE_CROPS = {"astronaut": (slice(10, 250), slice(60, 300)), "grace_hopper": (slice(40, 400), slice(70, 430))}


def bench_quality() -> dict:
    """Partition, parents and coverage of the independent oval polygon on the photos; 512 vs 256 px."""
    import cv2

    from fifa.concept_tree.segmentation.quality import oval_coverage
    from fifa.concept_tree.segmentation.segment import Segmenter
    from fifa.concept_tree.tree import ANCHORS, load_tree

    tree = load_tree()
    face_leaves = [n.id for n in tree.leaves(under="face")]
    res: dict = {}
    with Segmenter() as seg:
        faces = dict(photos(), **dict(list(heldout_faces().items())[:20]))
        for name, img in faces.items():
            r = seg.segment(img)
            if not r.ok:
                continue
            stack = np.stack([r.mask(i) for i in face_leaves])
            parents_ok = all(
                np.array_equal(r.mask(n.id), np.any([r.mask(c) for c in n.children], axis=0))
                for n in tree.nodes
                if not n.is_leaf
            )
            inside, outside = oval_coverage(stack.any(0), r.landmarks)
            entry = {
                "overlap_px": int((stack.sum(0) > 1).sum()),
                "oval_covered": round(inside, 4),
                "face_outside_oval": round(outside, 4),
                "parents_equal_union": parents_ok,
            }
            if name in FACE_CROPS:
                big = cv2.resize(img[FACE_CROPS[name]], (512, 512), interpolation=cv2.INTER_AREA)
                small = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
                rb, rs = seg.segment(big), seg.segment(small)
                ious = {}
                for a in ANCHORS:
                    mb = rb.mask(a)
                    ms = cv2.resize(rs.mask(a).astype(np.uint8), (512, 512), interpolation=cv2.INTER_NEAREST) > 0
                    if (mb | ms).any():
                        ious[a] = round(float((mb & ms).sum() / (mb | ms).sum()), 3)
                entry["stability_iou_512_vs_256"] = ious
            res[name] = entry
    return res


def _adopt_orphans() -> bool:
    """Make this process the reaper of orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``), so
    that the CPU time of a command's whole process tree can be collected: a forkserver and its
    pool workers outlive the command's own process and would otherwise go uncounted."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def timed(cmd: list[str], cpu: int | None = None) -> tuple[float, float | None]:
    """Wall seconds and CPU seconds (user + system of the command and all its descendants; None
    where orphans cannot be collected) of one run of ``cmd``. CPU time is what other jobs on a
    shared machine disturb least; wall time is what a user waits."""
    import resource

    env = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    reaping = _adopt_orphans()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    deadline = time.perf_counter() + 30
    while reaping and time.perf_counter() < deadline:  # adopted orphans exit once their parent has
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.02)
        except ChildProcessError:
            break
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, (used if reaping else None)


def best_of(runs: int, cmd: list[str], cpu: int | None = None, before=None) -> dict:
    """Least wall and least CPU seconds over ``runs`` runs (``before()`` is called before each)."""
    walls, cpus = [], []
    for _ in range(runs):
        if before is not None:
            before()
        w, c = timed(cmd, cpu)
        walls.append(w)
        cpus.append(c)
    return {"wall_s": round(min(walls), 2), "cpu_s": None if None in cpus else round(min(cpus), 2)}


def make_speed_faces(out: Path, n: int, size: int, seed: int = 0) -> None:
    """n face images of size x size: random crops, scales, small rotations, mirrors, colour jitter."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    bases = [(photos()["astronaut"], (176, 112, 64)), (photos()["grace_hopper"], (256, 200, 90))]
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, (cx, cy, r) = bases[i % 2]
        half = int(r * rng.uniform(1.6, 2.6))
        cx2, cy2 = cx + int(rng.integers(-r // 4, r // 4 + 1)), cy + int(rng.integers(-r // 4, r // 4 + 1))
        M = cv2.getRotationMatrix2D((float(cx2), float(cy2)), float(rng.uniform(-12, 12)), 1.0)
        rot = cv2.warpAffine(img, M, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        crop = rot[max(0, cy2 - half) : cy2 + half, max(0, cx2 - half) : cx2 + half]
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.clip(crop * rng.uniform(0.85, 1.15, 3), 0, 255).astype(np.uint8)
        Image.fromarray(crop).save(out / f"face_{i:04d}.jpg", quality=92)


def bench_speed(out: Path, n: int, size: int, repeats: int = 1) -> dict:
    faces = out / "faces"
    if not faces.exists() or len(list(faces.glob("*.jpg"))) != n:
        shutil.rmtree(faces, ignore_errors=True)
        make_speed_faces(faces, n, size)
    base_script = out / "baseline_facemesh.py"
    base_script.write_text(BASELINE)
    py = sys.executable
    tree = str(Path(py).parent / "fifa-tree")
    dest = out / "seg"

    def ours(workers: int, *extra: str, cpu: int | None = None) -> dict:
        return best_of(
            repeats,
            [
                tree,
                "segment",
                str(faces),
                "--out",
                str(dest),
                "--no-overlays",
                "--quiet",
                "--workers",
                str(workers),
                *extra,
            ],
            cpu,
            lambda: shutil.rmtree(dest, ignore_errors=True),
        )

    def base(cpu: int | None = None) -> dict:
        return best_of(repeats, [py, str(base_script), str(faces)], cpu)

    res: dict = {"images": n, "size": size, "repeats": repeats}
    for key, cpu, workers in (("per_core", 0, 1), ("two_workers_vs_one_plain_process", None, 2)):
        b, full, face = base(cpu), ours(workers, cpu=cpu), ours(workers, "--face-only", cpu=cpu)
        d = {"baseline_decode_facemesh_s": b["wall_s"], "full_s": full["wall_s"], "face_only_s": face["wall_s"]}
        d["full_ratio"] = round(d["full_s"] / d["baseline_decode_facemesh_s"], 3)
        d["face_only_ratio"] = round(d["face_only_s"] / d["baseline_decode_facemesh_s"], 3)
        if None not in (b["cpu_s"], full["cpu_s"], face["cpu_s"]):  # CPU of every process of each run
            d.update(
                baseline_cpu_s=b["cpu_s"],
                full_cpu_s=full["cpu_s"],
                face_only_cpu_s=face["cpu_s"],
                full_cpu_ratio=round(full["cpu_s"] / b["cpu_s"], 3),
                face_only_cpu_ratio=round(face["cpu_s"] / b["cpu_s"], 3),
            )
        res[key] = d
    res["worker_cpu"] = cpu_per_image(faces)
    res["stage_cpu_ms"] = stage_cpu(faces)
    return res


def stage_cpu(faces: Path, n: int = 80, repeats: int = 3) -> dict:
    """CPU ms per image of each stage inside one process (best of ``repeats``): decode, FaceMesh,
    SelfieSegmentation, face concepts (atlas warp), off-face concepts from evidence, RLE of every
    node (leaves and parents), areas."""
    import cv2

    from fifa.concept_tree.imageio import load_rgb
    from fifa.concept_tree.segmentation.landmarks import MediaPipeFaceMesh
    from fifa.concept_tree.segmentation.segment import regions_from_landmarks, with_outside_face

    cv2.setNumThreads(1)  # as in a worker
    files = sorted(faces.glob("*.jpg"))[:n]
    models = MediaPipeFaceMesh()
    names = ("decode", "facemesh", "face_concepts", "selfie_segmentation", "off_face", "rle_all_nodes", "areas")
    best = dict.fromkeys(names, float("inf"))
    for rep in range(repeats + 1):  # the first pass warms up (models, caches)
        spent = dict.fromkeys(names, 0.0)
        for f in files:
            t = [time.process_time()]
            rgb = load_rgb(str(f))
            t.append(time.process_time())
            found = models.faces(rgb)
            t.append(time.process_time())
            if not found:
                continue
            r = regions_from_landmarks(found[0].landmarks_with_depth, rgb.shape[:2])
            t.append(time.process_time())
            person = models.person_probability(rgb)
            t.append(time.process_time())
            r = with_outside_face(r, person, image=rgb)
            t.append(time.process_time())
            r.rles()
            t.append(time.process_time())
            r.areas(include_parents=True)
            t.append(time.process_time())
            for k, a, b in zip(names, t[:-1], t[1:]):
                spent[k] += b - a
        if rep:
            best = {k: min(best[k], spent[k]) for k in names}
    models.close()
    out = {k: round(1000 * v / len(files), 2) for k, v in best.items()}
    out["total"] = round(sum(out.values()), 2)
    return out


def cpu_per_image(faces: Path, n: int = 80, repeats: int = 3) -> dict:
    """Process CPU time per image (all threads; robust to other jobs on the machine) of decode +
    FaceMesh, and of one segmentation worker's whole job per image (decode, models, labels, RLE of
    every node), full and face-only; best of ``repeats``."""
    import mediapipe as mp
    from PIL import Image

    from fifa.concept_tree.segmentation import batch

    files = sorted(faces.glob("*.jpg"))[:n]

    def base() -> float:
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
            fm.process(np.asarray(Image.open(files[0]).convert("RGB")))
            c = time.process_time()
            for f in files:
                fm.process(np.asarray(Image.open(f).convert("RGB")))
            return time.process_time() - c

    def ours(face_only: bool) -> float:
        batch._init_worker(batch.BatchOptions(outside_face=not face_only, overlays=False), None)
        batch._process(("warm-up", str(files[0])))
        c = time.process_time()
        for f in files:
            batch._process((f.name, str(f)))
        t = time.process_time() - c
        batch._WORKER.pop("seg").close()
        return t

    runs = {"decode_facemesh": [], "full": [], "face_only": []}
    for _ in range(repeats):
        runs["decode_facemesh"].append(base())
        runs["full"].append(ours(False))
        runs["face_only"].append(ours(True))
    ms = {k: round(1000 * min(v) / len(files), 2) for k, v in runs.items()}
    return {
        "images": len(files),
        "cpu_ms_per_image": ms,
        "full_ratio": round(ms["full"] / ms["decode_facemesh"], 3),
        "face_only_ratio": round(ms["face_only"] / ms["decode_facemesh"], 3),
    }


def gallery(out_dir: Path) -> list[str]:
    """Anchor-level overlays of several kinds of faces for the docs (synthetic ones say so)."""
    import cv2

    from fifa.concept_tree.segmentation.overlay import render_overlay
    from fifa.concept_tree.segmentation.segment import Segmenter

    out_dir.mkdir(parents=True, exist_ok=True)
    crops = dressed_crops()
    lfw = heldout_faces(384)
    picks = {
        "smiling_astronaut": crops["astronaut"],
        "collar_and_hat_grace_hopper": crops["grace_hopper"],
        "synthetic_blue_shirt": crops["grace_hopper_synthetic_blue_shirt"],
        "synthetic_long_hair": crops["astronaut_synthetic_long_hair"],
        "turned_lfw_grey": lfw["lfw_000"],
        "turned_lfw_grey_2": lfw["lfw_075"],
    }
    written = []
    with Segmenter() as seg:
        for name, img in picks.items():
            r = seg.segment(img)
            o = render_overlay(img, [r], level="anchor", min_side=384)
            path = out_dir / f"seg_{name}.jpg"
            cv2.imwrite(str(path), o[:, :, ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), 85])
            written.append(str(path))
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "what", nargs="?", default="all", choices=["speed", "quality", "roughness", "neck", "gallery", "all"]
    )
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=1, help="speed: runs of each whole-process command (best kept)")
    ap.add_argument("--out", type=Path, default=Path("bench_out/segment"))
    ap.add_argument("--gallery-dir", type=Path, default=Path("docs/img"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": machine()}
    todo = ["quality", "roughness", "neck", "speed", "gallery"] if a.what == "all" else [a.what]
    for what in todo:
        t = time.perf_counter()
        if what == "speed":
            result[what] = bench_speed(a.out, a.n, a.size, a.repeats)
        elif what == "quality":
            result[what] = bench_quality()
        elif what == "roughness":
            result[what] = bench_roughness()
        elif what == "neck":
            result[what] = bench_neck()
        else:
            result[what] = gallery(a.gallery_dir)
        print(f"{what}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    result["machine"]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
    (a.out / f"bench_segment_{a.what}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
