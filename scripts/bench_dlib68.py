"""Benchmark the dlib68 backend against MediaPipe: agreement on faces a calibration never saw, noise ceiling, speed.

    .venv/bin/python scripts/bench_dlib68.py [--faces DIR] [--repeats 5] [--out bench_out/dlib68]

Agreement: anchor IoU of the 68-point regions against the MediaPipe regions (eyes without the
eyeball, which 68 points cannot place), per held-out group, without calibration (thin-plate spline
through the raw points) and with it:

* cross-validation (`fifa.concept_tree.segmentation.calibrate68.FOLDS`): a calibration fitted by the shipped
  procedure on some groups (astronaut + even lfw faces, or Grace Hopper + odd lfw faces, each with
  its augmented variants) and measured on the original images of the other groups, which it never saw;
* with `--faces DIR`: the shipped calibration on your faces (not among its calibration faces).

Noise ceiling: each detector against itself on the same face at two scales (photo / half-size copy
/ 384 px crop; lfw face upscaled to 250 / 200 / 320 px), the other result carried into the same
image: MediaPipe vs MediaPipe, and dlib68 (shipped calibration) vs dlib68.

Target: mean anchor IoU >= 0.85 and every anchor >= 0.75 on held-out faces.
Speed: `Segmenter.segment` per image, dlib68 vs mediapipe, same images, same process, alternating.
Prints a summary and writes OUT/bench_dlib68.json. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from benchkit import describe, machine
from fifa.concept_tree.segmentation import calibrate68 as c68
from fifa.concept_tree.segmentation.ibug68_calibration import COMPARED_ANCHORS, default_calibration

TARGET_MEAN, TARGET_ANCHOR = 0.85, 0.75


def speed(repeats: int) -> dict:
    """Seconds per image of Segmenter.segment (person map included) for both backends."""
    from fifa.concept_tree.segmentation.segment import SegmentConfig, Segmenter

    images = [f.rgb for f in c68.sample_photo_faces() if not f.mirrored]
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


def scale_pairs(pairs: list[c68.FacePair]) -> dict[str, list[tuple[str, str]]]:
    """Pairs of variants of one face at two scales (both mirrored or neither), by kind of face."""
    names = {p.name for p in pairs}
    out: dict[str, list[tuple[str, str]]] = {"photos": [], "lfw": []}
    bases = sorted({p.name for p in pairs if not p.augmented and not p.name.endswith(("_mirror", "_half", "_crop384"))})
    for base in bases:
        if base.startswith("lfw"):
            kind, scales = "lfw", (base, f"{base}_s200_r0", f"{base}_s320_r0")
        else:
            kind, scales = "photos", (base, f"{base}_half", f"{base}_crop384")
        for tail in ("", "_mirror"):
            for i, a in enumerate(scales):
                out[kind] += [(a + tail, b + tail) for b in scales[i + 1 :] if a + tail in names and b + tail in names]
    return out


def _per(r: dict) -> str:
    return ", ".join(f"{a} {r['per_anchor'][a]:.2f}" for a in COMPARED_ANCHORS)


def _line(group: str, r: dict) -> str:
    raw, cal = r["raw"], r["calibrated"]
    ok = cal["mean"] >= TARGET_MEAN and cal["min_anchor"] >= TARGET_ANCHOR
    return (
        f"  {group} ({raw['faces']} faces): mean {raw['mean']:.3f} -> {cal['mean']:.3f}, weakest anchor "
        f"{raw['min_anchor']:.3f} -> {cal['min_anchor']:.3f} [{'meets' if ok else 'misses'} target]\n    {_per(cal)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, help="faces the shipped calibration never saw (a folder)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench_out/dlib68"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("GLOG_minloglevel", "2")

    pairs, counts = c68.detect_pairs(c68.sample_photo_faces(augment=True) + c68.lfw_faces(augment=True), progress=True)
    result = {
        "machine": describe(machine()),
        "load_before": os.getloadavg(),
        "faces": counts,
        "cross_validation": c68.cross_validate(pairs),
    }
    result["noise_ceiling"] = {
        kind: c68.self_agreement(pairs, default_calibration(), sp) | {"variant_pairs": len(sp)}
        for kind, sp in scale_pairs(pairs).items()
    }
    if args.faces is not None:
        user, ucounts = c68.detect_pairs(c68.folder_faces(args.faces))
        result["user_faces"] = {
            "faces": ucounts,
            "held_out": {
                "user": {
                    "raw": c68.summarise(c68.agreement(user, None)),
                    "calibrated": c68.summarise(c68.agreement(user, default_calibration())),
                }
            },
        }
    result["speed"] = speed(args.repeats)
    result["load_after"] = os.getloadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_dlib68.json").write_text(json.dumps(result, indent=1))
    print(f"machine: {result['machine']}; load {result['load_before'][0]:.1f} -> {result['load_after'][0]:.1f}")
    print(f"faces with both detections (original + augmented): { {g: c['both_detected'] for g, c in counts.items()} }")
    print(f"anchor IoU vs MediaPipe (raw -> calibrated); target mean >= {TARGET_MEAN}, every anchor >= {TARGET_ANCHOR}")
    for fold in result["cross_validation"]:
        print(f"calibrated on {' + '.join(fold['calibrated_on'])}:")
        for g, r in fold["held_out"].items():
            print(_line(g, r))
    print("noise ceiling: each detector against itself, same face at two scales")
    for kind, r in result["noise_ceiling"].items():
        for det in ("mediapipe", "dlib68"):
            print(
                f"  {kind} {det} ({r[det]['faces']} pairs): mean {r[det]['mean']:.3f}, "
                f"weakest {r[det]['min_anchor']:.3f}\n    {_per(r[det])}"
            )
    if "user_faces" in result:
        print("shipped calibration, your faces:")
        print(_line("user", result["user_faces"]["held_out"]["user"]))
    s = result["speed"]
    print(
        f"speed per image (Segmenter.segment, {', '.join(s['images'])}): "
        f"mediapipe {s['mediapipe']['median_s'] * 1e3:.0f} ms, "
        f"dlib68 {s['dlib68']['median_s'] * 1e3:.0f} ms ({s['ratio_median']}x)"
    )
    print(f"wrote {args.out / 'bench_dlib68.json'}")


if __name__ == "__main__":
    main()
