"""How the 68-point calibration is made and checked: faces where both dlib and MediaPipe run.

Used by ``scripts/calibrate_ibug68.py`` (writes ``data/ibug68_calibration.json``) and
``scripts/bench_dlib68.py`` (agreement on faces a calibration never saw, speed).

Face sources, each a *group* (one identity or one data set; calibration folds never split a group):

* ``astronaut`` and ``grace_hopper``: the public-domain photos shipped with scikit-image and
  matplotlib, with mirrors, a face crop resized to 384 px and a half-size copy (6 variants each);
* ``lfw_even`` / ``lfw_odd``: the 100 faces of scikit-image's ``lfw_subset`` (grey 25x25 crops),
  upscaled to 250 px (bicubic), padded by 60 px (edge pixels repeated: the crops cut the chin and
  ears, which both detectors then extrapolate), as RGB, and their mirrors; split by index parity;
* ``user``: every image of a folder you give, and its mirror.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ibug68_calibration import COMPARED_ANCHORS, Ibug68Calibration, anchor_ious, consensus_offsets, point_errors, residuals

log = logging.getLogger(__name__)

LFW_SIZE, LFW_PAD = 250, 60


@dataclass
class FacePair:
    """One face where both detectors ran: dlib's 68 points and MediaPipe's 478-point result."""

    name: str
    group: str
    image_size: tuple[int, int]
    points68: np.ndarray  # (68, 2) detected by dlib, not calibrated
    reference: object  # FaceRegions of the MediaPipe path (its landmarks: the 478-point mesh)

    @property
    def residuals(self) -> np.ndarray:
        return residuals(self.points68, self.reference.landmarks)


def _photo_variants(name: str, rgb: np.ndarray) -> list[tuple[str, np.ndarray]]:
    import cv2

    h, w = rgb.shape[:2]
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    out = [(name, rgb), (f"{name}_half", half)]
    crop = _face_crop(rgb)
    if crop is not None:
        out.append((f"{name}_crop384", crop))
    return out + [(f"{n}_mirror", np.ascontiguousarray(img[:, ::-1])) for n, img in out]


def _face_crop(rgb: np.ndarray, size: int = 384) -> np.ndarray | None:
    """A square crop 1.8x the face's landmark box (MediaPipe), resized to ``size``."""
    import cv2

    from .landmarks import MediaPipeFaceMesh

    fm = MediaPipeFaceMesh(max_faces=1)
    try:
        faces = fm.faces(rgb)
    finally:
        fm.close()
    if not faces:
        return None
    x0, y0, x1, y1 = faces[0].box
    side = int(min(max(x1 - x0, y1 - y0) * 1.8, *rgb.shape[:2]))
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    a = min(max(cx - side // 2, 0), rgb.shape[1] - side)
    b = min(max(cy - side // 2, 0), rgb.shape[0] - side)
    return cv2.resize(rgb[b : b + side, a : a + side], (size, size), interpolation=cv2.INTER_AREA)


def sample_photo_faces() -> list[tuple[str, str, np.ndarray]]:
    """(group, name, RGB) for the two sample photos and their variants."""
    import matplotlib
    import skimage.data
    from PIL import Image

    grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    photos = [("astronaut", skimage.data.astronaut()), ("grace_hopper", np.asarray(Image.open(grace).convert("RGB")))]
    return [(group, n, img) for group, rgb in photos for n, img in _photo_variants(group, rgb)]


def lfw_faces() -> list[tuple[str, str, np.ndarray]]:
    """(group, name, RGB) for the 100 faces of ``skimage.data.lfw_subset()``, upscaled, and mirrors."""
    import cv2
    import skimage.data

    out = []
    for i, grey in enumerate(skimage.data.lfw_subset()[:100]):
        g = cv2.resize(np.round(grey * 255).astype(np.uint8), (LFW_SIZE, LFW_SIZE), interpolation=cv2.INTER_CUBIC)
        g = cv2.copyMakeBorder(g, LFW_PAD, LFW_PAD, LFW_PAD, LFW_PAD, cv2.BORDER_REPLICATE)
        rgb = np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
        group = "lfw_even" if i % 2 == 0 else "lfw_odd"
        out += [(group, f"lfw{i:03d}", rgb), (group, f"lfw{i:03d}_mirror", np.ascontiguousarray(rgb[:, ::-1]))]
    return out


def folder_faces(folder: str | Path, group: str = "user") -> list[tuple[str, str, np.ndarray]]:
    """(group, name, RGB) for every image in ``folder`` (recursively) and its mirror; unreadable
    files are logged and skipped."""
    from .imageio import ImageError, list_images, load_rgb

    out = []
    for path in list_images(Path(folder)):
        try:
            rgb = load_rgb(path)
        except ImageError as e:
            log.warning("skipped %s: %s", path, e)
            continue
        out += [(group, path.name, rgb), (group, f"{path.name}_mirror", np.ascontiguousarray(rgb[:, ::-1]))]
    return out


def detect_pairs(faces: list[tuple[str, str, np.ndarray]], progress: bool = False) -> tuple[list[FacePair], dict]:
    """Run MediaPipe (478 points, no person map) and dlib (68 points, HOG) on every face; keep
    the largest face where both found one. Returns the pairs and, per group, how many faces were
    tried and kept."""
    from .dlib_backend import Dlib68Landmarks
    from .segment import SegmentConfig, Segmenter

    counts: dict[str, dict[str, int]] = {}
    pairs = []
    with Segmenter(SegmentConfig(outside_face=False, max_faces=1)) as seg, Dlib68Landmarks(calibration=None) as dl:
        for k, (group, name, rgb) in enumerate(faces):
            c = counts.setdefault(group, {"images": 0, "both_detected": 0})
            c["images"] += 1
            ref = seg.segment(rgb)
            pts = dl.landmarks(rgb) if ref.ok else []
            if pts:
                pairs.append(FacePair(name, group, rgb.shape[:2], pts[0], ref))
                c["both_detected"] += 1
            if progress and (k + 1) % 50 == 0:
                log.info("detected %d / %d faces", k + 1, len(faces))
    return pairs, counts


def fit_calibration(pairs: list[FacePair], groups: tuple[str, ...] | None = None, about: dict | None = None) -> Ibug68Calibration:
    """Consensus offsets over the pairs of ``groups`` (default: all groups present)."""
    groups = groups or tuple(sorted({p.group for p in pairs}))
    by_group = {g: np.stack([p.residuals for p in pairs if p.group == g]) for g in groups if any(p.group == g for p in pairs)}
    return Ibug68Calibration(consensus_offsets(by_group), dict(about or {}))


def agreement(pairs: list[FacePair], calibration: Ibug68Calibration | None) -> np.ndarray:
    """Anchor IoU (n_pairs, n_anchors; :data:`COMPARED_ANCHORS`) of the 68-point regions against
    the MediaPipe regions."""
    from .ibug68 import regions_from_ibug68

    rows = []
    for p in pairs:
        r = regions_from_ibug68(p.points68, p.image_size, calibration=calibration)
        ious = anchor_ious(p.reference, r)
        rows.append([ious[a] for a in COMPARED_ANCHORS])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(COMPARED_ANCHORS))


#: Cross-validation folds: calibrate on one side, evaluate on the other (never the same identity).
FOLDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("astronaut", "lfw_even"), ("grace_hopper", "lfw_odd")),
    (("grace_hopper", "lfw_odd"), ("astronaut", "lfw_even")),
)


def summarise(ious: np.ndarray) -> dict:
    """Mean IoU per anchor, over anchors, and the weakest anchor, for a block of :func:`agreement`."""
    per = ious.mean(axis=0) if len(ious) else np.full(len(COMPARED_ANCHORS), np.nan)
    return {"faces": int(len(ious)), "mean": round(float(per.mean()), 4),
            "min_anchor": round(float(per.min()), 4), "per_anchor": {a: round(float(v), 4) for a, v in zip(COMPARED_ANCHORS, per)}}  # fmt: skip


def cross_validate(pairs: list[FacePair], folds=FOLDS) -> list[dict]:
    """For each fold: a calibration fitted on its training groups, then per held-out group the
    agreement without and with it, and the point errors without and with it."""
    out = []
    for train, test in folds:
        cal = fit_calibration(pairs, train)
        fold = {"calibrated_on": list(train), "held_out": {}}
        for g in test:
            held = [p for p in pairs if p.group == g]
            if not held:
                continue
            res = np.stack([p.residuals for p in held])
            fold["held_out"][g] = {
                "raw": summarise(agreement(held, None)),
                "calibrated": summarise(agreement(held, cal)),
                "point_error_raw": {k: round(v, 4) for k, v in point_errors(res).items()},
                "point_error_calibrated": {k: round(v, 4) for k, v in point_errors(res, cal.offsets).items()},
            }
        out.append(fold)
    return out
