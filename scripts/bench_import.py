"""Speed of `fifa-data import ffpp`: frames per second of frame sampling + face cropping.

Builds an FF++-like tree (original_sequences/youtube/c23/videos/NNN.mp4 and two manipulated
methods per source, MPEG-4 at 640x480, made from the public-domain sample faces moving across
the frame), then imports it with 1 and with 2 worker processes (same tree, same options,
``--frames 32``), and reports frames/s (crops written / wall time of the whole import,
worker start-up included) and the 2-vs-1 ratio. A decode-only pass (every frame grabbed, the
sampled ones retrieved, no face work) in this process shows the share of decoding. Peak RSS
and CPU seconds are summed over this process and its workers (sampled every 0.1 s); frames per
CPU-second is the figure that holds up on a loaded machine.

    python scripts/bench_import.py                      # 8 sources x 3 videos x 250 frames
    python scripts/bench_import.py --sources 4 --length 150 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchkit import Stopwatch, TreeSampler, describe, machine


def _faces() -> list[np.ndarray]:
    import matplotlib
    import skimage.data
    from PIL import Image

    gh = np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB"))
    out = []
    for rgb in (skimage.data.astronaut(), gh):
        s = min(rgb.shape[:2])
        sq = cv2.resize(np.ascontiguousarray(rgb[:s, :s, ::-1]), (360, 360), interpolation=cv2.INTER_AREA)
        out += [sq, np.ascontiguousarray(sq[:, ::-1])]
    return out


def _frame(face: np.ndarray, k: int, seed: int, fake: int) -> np.ndarray:
    """640x480 frame: a textured background with the face moving slowly; fakes tint the face."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(40, 200, (12, 16, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_LINEAR)
    x = int(140 + 60 * np.sin(k / 40 + seed))
    y = int(60 + 30 * np.cos(k / 55 + seed))
    img = bg.copy()
    img[y : y + 360, x : x + 360] = face
    if fake:
        roi = img[y + 120 : y + 260, x + 110 : x + 250]
        roi[:] = np.clip(roi.astype(np.int16) + (fake * 25, -20, 30), 0, 255).astype(np.uint8)
    return img


def build_tree(root: Path, sources: int, length: int) -> int:
    faces = _faces()
    n = 0
    for s in range(sources):
        face = faces[s % len(faces)]
        target = f"{s:03d}"
        donor = f"{(s + 1) % sources:03d}"
        outs = [(root / "original_sequences/youtube/c23/videos" / f"{target}.mp4", 0)]
        outs += [
            (root / f"manipulated_sequences/{m}/c23/videos/{target}_{donor}.mp4", i + 1)
            for i, m in enumerate(("Deepfakes", "NeuralTextures"))
        ]
        for path, fake in outs:
            path.parent.mkdir(parents=True, exist_ok=True)
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 480))
            for k in range(length):
                w.write(_frame(face, k, s, fake))
            w.release()
            n += 1
    return n


def decode_only(root: Path, frames: int) -> tuple[int, float, float]:
    from fifa.pipelines.importers.video import frame_indices, probe, read_frames

    got = 0
    with Stopwatch() as sw:
        for p in sorted(root.rglob("*.mp4")):
            idx = frame_indices(probe(p).frame_count, frames)
            got += sum(1 for _ in read_frames(p, idx))
    return got, sw.wall_s, sw.cpu_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--length", type=int, default=250, help="frames per video")
    ap.add_argument("--frames", type=int, default=32, help="frames sampled per video")
    ap.add_argument("--workdir", type=Path, default=None, help="kept after the run; a tree found there is reused")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    from fifa.pipelines.importers import FFPPConfig, import_ffpp

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_import_"))
    root = work / "FaceForensics++"
    t0 = time.perf_counter()
    if args.workdir and (root / "original_sequences").is_dir():  # a tree kept from an earlier run
        videos = len(list(root.rglob("*.mp4")))
        print(f"tree: reusing {videos} videos in {root}", flush=True)
    else:
        videos = build_tree(root, args.sources, args.length)
        print(
            f"tree: {videos} videos x {args.length} frames at 640x480 in {time.perf_counter() - t0:.1f} s", flush=True
        )
    res: dict = {
        "machine": describe(machine()),
        "load_before": os.getloadavg()[0],
        "videos": videos,
        "length": args.length,
        "frames": args.frames,
    }
    got, dt, cpu = decode_only(root, args.frames)
    res["decode_only"] = {"frames": got, "s": round(dt, 2), "cpu_s": round(cpu, 1), "frames_per_s": round(got / dt, 1)}
    print(f"decode only (1 process): {got} frames in {dt:.1f} s, {cpu:.1f} CPU-s = {got / dt:.1f} frames/s", flush=True)
    for workers in (1, 2):
        out = work / f"out{workers}" / "ffpp.parquet"
        with Stopwatch() as sw, TreeSampler() as mon:
            rep = import_ffpp(root, out, FFPPConfig(frames=args.frames, workers=workers))
        dt = sw.wall_s
        n = rep.stats["frames_cropped"]
        res[f"workers_{workers}"] = {
            "frames": n,
            "s": round(dt, 2),
            "frames_per_s": round(n / dt, 1),
            "cpu_s": round(mon.cpu_s, 1),
            "frames_per_cpu_s": round(n / mon.cpu_s, 1),
            "failures": len(rep.failures),
            "peak_rss_mb": round(mon.peak / 2**20),
        }
        print(
            f"import ffpp --workers {workers}: {n} crops in {dt:.1f} s = {n / dt:.1f} frames/s, "
            f"{mon.cpu_s:.1f} CPU-s = {n / mon.cpu_s:.1f} frames per CPU-second ({len(rep.failures)} failures), "
            f"peak RSS of all processes {mon.peak / 2**20:.0f} MB",
            flush=True,
        )
        shutil.rmtree(out.parent)
    res["ratio_2_vs_1"] = round(res["workers_2"]["frames_per_s"] / res["workers_1"]["frames_per_s"], 2)
    res["load_after"] = os.getloadavg()[0]
    print(f"2 workers vs 1: {res['ratio_2_vs_1']:.2f}x   (load {res['load_before']:.1f} -> {res['load_after']:.1f})")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    if args.workdir is None:
        shutil.rmtree(work)
    sys.exit(0 if res["workers_2"]["failures"] == 0 else 1)


if __name__ == "__main__":
    main()
