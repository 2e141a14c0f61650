"""Benchmark the dlib68 backend against MediaPipe: agreement on faces a calibration never saw, speed.

    .venv/bin/python scripts/bench_dlib68.py [--faces DIR] [--repeats 5] [--out bench_out/dlib68]

Agreement: anchor IoU of the 68-point regions against the MediaPipe regions (eyes without the
eyeball, which 68 points cannot place), per held-out group, without and with calibration:

* cross-validation (`fifa.concept_tree.calibrate68.FOLDS`): a calibration fitted by the shipped
  procedure on some groups (astronaut + even lfw faces, or Grace Hopper + odd lfw faces) and
  measured on the other groups, which it never saw;
* with `--faces DIR`: the shipped calibration on your faces (not among its calibration faces).

Target: mean anchor IoU >= 0.85 and every anchor >= 0.75 on held-out faces.
Speed: `Segmenter.segment` per image, dlib68 vs mediapipe, same images, same process, alternating.
Prints a summary and writes OUT/bench_dlib68.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from fifa.concept_tree import calibrate68 as c68
from fifa.concept_tree.ibug68_calibration import COMPARED_ANCHORS, default_calibration

TARGET_MEAN, TARGET_ANCHOR = 0.85, 0.75


def speed(repeats: int) -> dict:
    """Seconds per image of Segmenter.segment (person map included) for both backends."""
    from fifa.concept_tree.segment import SegmentConfig, Segmenter

    images = [img for _, name, img in c68.sample_photo_faces() if not name.endswith("_mirror")]
    out = {}
    with Segmenter() as mp, Segmenter(SegmentConfig(backend="dlib68")) as dl:
        for seg in (mp, dl):
            seg.segment(images[0])  # warm-up
        times = {"mediapipe": [], "dlib68": []}
        for _ in range(repeats):
            for img in images:
                for name, seg in (("mediapipe", mp), ("dlib68", dl)):
                    t = time.perf_counter()
                    seg.segment(img)
                    times[name].append(time.perf_counter() - t)
    for name, ts in times.items():
        out[name] = {"median_s": round(float(np.median(ts)), 4), "mean_s": round(float(np.mean(ts)), 4)}
    out["ratio_median"] = round(out["dlib68"]["median_s"] / out["mediapipe"]["median_s"], 2)
    out["images"] = [f"{img.shape[1]}x{img.shape[0]}" for img in images]
    return out


def _line(group: str, r: dict) -> str:
    raw, cal = r["raw"], r["calibrated"]
    ok = cal["mean"] >= TARGET_MEAN and cal["min_anchor"] >= TARGET_ANCHOR
    per = ", ".join(f"{a} {cal['per_anchor'][a]:.2f}" for a in COMPARED_ANCHORS)
    return (f"  {group} ({raw['faces']} faces): mean {raw['mean']:.3f} -> {cal['mean']:.3f}, weakest anchor "
            f"{raw['min_anchor']:.3f} -> {cal['min_anchor']:.3f} [{'meets' if ok else 'misses'} target]\n    {per}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, help="faces the shipped calibration never saw (a folder)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench_out/dlib68"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("GLOG_minloglevel", "2")

    pairs, counts = c68.detect_pairs(c68.sample_photo_faces() + c68.lfw_faces(), progress=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "load_before": os.getloadavg(), "faces": counts, "cross_validation": c68.cross_validate(pairs)}  # fmt: skip
    if args.faces is not None:
        user, ucounts = c68.detect_pairs(c68.folder_faces(args.faces))
        result["user_faces"] = {"faces": ucounts, "held_out": {"user": {
            "raw": c68.summarise(c68.agreement(user, None)),
            "calibrated": c68.summarise(c68.agreement(user, default_calibration()))}}}  # fmt: skip
    result["speed"] = speed(args.repeats)
    result["load_after"] = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_dlib68.json").write_text(json.dumps(result, indent=1))
    print(f"machine: {result['machine']}; load {result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f}")
    print(f"faces with both detections: { {g: c['both_detected'] for g, c in counts.items()} }")
    print(f"anchor IoU vs MediaPipe (raw -> calibrated); target mean >= {TARGET_MEAN}, every anchor >= {TARGET_ANCHOR}")
    for fold in result["cross_validation"]:
        print(f"calibrated on {' + '.join(fold['calibrated_on'])}:")
        for g, r in fold["held_out"].items():
            print(_line(g, r))
    if "user_faces" in result:
        print("shipped calibration, your faces:")
        print(_line("user", result["user_faces"]["held_out"]["user"]))
    s = result["speed"]
    print(f"speed per image (Segmenter.segment, {', '.join(s['images'])}): mediapipe {s['mediapipe']['median_s'] * 1e3:.0f} ms, "
          f"dlib68 {s['dlib68']['median_s'] * 1e3:.0f} ms ({s['ratio_median']}x)")  # fmt: skip
    print(f"wrote {args.out / 'bench_dlib68.json'}")


if __name__ == "__main__":
    main()
