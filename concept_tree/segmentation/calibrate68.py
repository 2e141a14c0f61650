"""How the 68-point calibration is made and checked: faces where both dlib and MediaPipe run.

Used by ``scripts/calibrate_ibug68.py`` (writes ``data/ibug68_calibration.json``) and
``scripts/bench_dlib68.py`` (agreement on faces a calibration never saw, noise ceiling, speed).

Face sources, each a *group* (one identity or one data set; calibration folds never split a group):

* ``astronaut`` and ``grace_hopper``: the public-domain photos shipped with scikit-image and
  matplotlib. Evaluated on 6 variants each (the photo, a half-size copy, a 384 px face crop, and
  their mirrors); for training also about 45 augmented ones (face crops of 1.5-3x the face at
  224-448 px, turned by up to 12 degrees, some grey, blurred or JPEG-compressed, half mirrored;
  the face pasted small into scikit-image's ``rocket`` photo, as the forge does);
* ``lfw_even`` / ``lfw_odd``: the 100 faces of scikit-image's ``lfw_subset`` (grey 25x25 crops),
  upscaled to 250 px (bicubic), padded by 60 px (edge pixels repeated: the crops cut the chin and
  ears, which both detectors then extrapolate), as RGB, and their mirrors; split by index parity;
  for training also upscaled to 200 and 320 px and turned by +-7 degrees (with mirrors);
* ``user``: every image of a folder you give, and its mirror (augmented like the photos for training).

Every variant knows the affine map from its source image (``transform``), so two variants of a
face can be compared in one image: the noise ceiling (:func:`self_agreement`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ibug68_calibration import COMPARED_ANCHORS, IBUG_MIRROR, Ibug68Calibration, anchor_ious, fit_mesh_map

log = logging.getLogger(__name__)

LFW_SIZE, LFW_PAD = 250, 60
#: Share of the training weight of the upscaled lfw faces (the rest goes to the sharp photos and a
#: user folder, by pair count). Left to their numbers (90 % of the pairs), the lfw crops, whose
#: cut chins both detectors guess (MediaPipe's contour higher and narrower than dlib's), pull the
#: sharp photos off: held out, Grace Hopper 0.69-0.70 with all pairs weighted alike, 0.73 at 0.7,
#: at a cost of 0.01-0.02 on held-out lfw faces.
LFW_SHARE = 0.7
#: Ridge penalty and rank of the map, chosen on the held-out folds: a penalty of 0.01 favours the
#: lfw faces, 0.03 the photos; rank 8 does as well as the full map (rank 136).
RIDGE, RANK = 0.02, 8


@dataclass
class FaceImage:
    """One image of a face: its group (identity / data set), name, pixels, the 3x3 affine map from
    the source image's pixels to this one's, and whether it is an augmented (training-only) variant."""

    group: str
    name: str
    rgb: np.ndarray
    transform: np.ndarray
    augmented: bool = False

    @property
    def mirrored(self) -> bool:
        return bool(np.linalg.det(self.transform[:2, :2]) < 0)


@dataclass
class FacePair:
    """One face where both detectors ran: dlib's 68 points and MediaPipe's 478-point mesh (with depth)."""

    name: str
    group: str
    image_size: tuple[int, int]
    points68: np.ndarray  # (68, 2) detected by dlib (mirror-averaged), not calibrated
    mesh: np.ndarray  # (478, 3) MediaPipe x, y, depth in pixels
    transform: np.ndarray
    augmented: bool = False

    def reference(self):
        """The MediaPipe path's face regions (drawn on demand: a label map per pair is large)."""
        from .segment import regions_from_landmarks

        return regions_from_landmarks(self.mesh, self.image_size)


def _mirror(face: FaceImage, tag: str = "_mirror") -> FaceImage:
    w = face.rgb.shape[1]
    flip = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]])
    return FaceImage(
        face.group, face.name + tag, np.ascontiguousarray(face.rgb[:, ::-1]), flip @ face.transform, face.augmented
    )


def _with_mirrors(faces: list[FaceImage]) -> list[FaceImage]:
    return faces + [_mirror(f) for f in faces]


def _scale(s: float, tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    return np.array([[s, 0, tx], [0, s, ty], [0, 0, 1.0]])


def _mediapipe_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    from .landmarks import MediaPipeFaceMesh

    fm = MediaPipeFaceMesh(max_faces=1)
    try:
        faces = fm.faces(rgb)
    finally:
        fm.close()
    return faces[0].box if faces else None


def photo_variants(group: str, rgb: np.ndarray) -> list[FaceImage]:
    """The photo, a half-size copy, a square crop 1.8x the face's landmark box (MediaPipe) resized
    to 384 px, and their mirrors."""
    import cv2

    h, w = rgb.shape[:2]
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    out = [FaceImage(group, group, rgb, np.eye(3)), FaceImage(group, f"{group}_half", half, _scale(0.5))]
    box = _mediapipe_box(rgb)
    if box is not None:
        x0, y0, x1, y1 = box
        side = int(min(max(x1 - x0, y1 - y0) * 1.8, h, w))
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        a, b = min(max(cx - side // 2, 0), w - side), min(max(cy - side // 2, 0), h - side)
        crop = cv2.resize(rgb[b : b + side, a : a + side], (384, 384), interpolation=cv2.INTER_AREA)
        s = 384 / side
        out.append(FaceImage(group, f"{group}_crop384", crop, _scale(s, -a * s, -b * s)))
    return _with_mirrors(out)


def augmented_variants(group: str, name: str, rgb: np.ndarray, seed: int = 0) -> list[FaceImage]:
    """Training variants of a photo (see the module text); none when MediaPipe finds no face."""
    import cv2
    import skimage.data

    box = _mediapipe_box(rgb)
    if box is None:
        return []
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = box
    fs = max(x1 - x0, y1 - y0)
    out = []
    for margin in (1.5, 1.9, 2.4, 3.0):
        for size in (224, 320, 448):
            for angle in (0, -12, -6, 6, 12):
                if angle and rng.random() > 0.45:
                    continue
                cx, cy = (x0 + x1) / 2 + rng.normal(0, 0.05) * fs, (y0 + y1) / 2 + (rng.normal(0, 0.05) - 0.05) * fs
                m = np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, size / (fs * margin)), [0, 0, 1]])
                m[:2, 2] += (size / 2 - cx, size / 2 - cy)
                img = cv2.warpAffine(rgb, m[:2], (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
                img, tag = _degrade(img, rng)
                face = FaceImage(group, f"{name}_m{margin}_s{size}_r{angle}{tag}", img, m, augmented=True)
                out.append(_mirror(face) if rng.random() < 0.5 else face)
    for side, (py, px) in ((128, (60, 300)), (176, (150, 40)), (224, (60, 300))):
        s = side / (fs * 1.6)
        m = _scale(s, px + side / 2 - (x0 + x1) / 2 * s, py + side / 2 - ((y0 + y1) / 2 - 0.08 * fs) * s)
        frame = skimage.data.rocket().copy()
        face = cv2.warpAffine(rgb, m[:2], (frame.shape[1], frame.shape[0]), flags=cv2.INTER_AREA)
        frame[py : py + side, px : px + side] = face[py : py + side, px : px + side]
        out += _with_mirrors([FaceImage(group, f"{name}_rocket{side}", frame, m, augmented=True)])
    return out


def _degrade(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Now and then grey, blurred or JPEG-compressed: the conditions of real data sets."""
    import cv2

    r = rng.random()
    if r < 0.12:
        return np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2), "_grey"
    if r < 0.24:
        return cv2.GaussianBlur(img, (0, 0), 1.2), "_blur"
    if r < 0.36:
        return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 35])[1], cv2.IMREAD_COLOR), "_jpeg"
    return img, ""


def _sample_photos() -> list[tuple[str, np.ndarray]]:
    import matplotlib
    import skimage.data
    from PIL import Image

    grace = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [("astronaut", skimage.data.astronaut()), ("grace_hopper", np.asarray(Image.open(grace).convert("RGB")))]


def sample_photo_faces(augment: bool = False) -> list[FaceImage]:
    """The two sample photos' variants (and with ``augment`` their training variants)."""
    out = []
    for k, (group, rgb) in enumerate(_sample_photos()):
        out += photo_variants(group, rgb) + (augmented_variants(group, group, rgb, seed=k) if augment else [])
    return out


def lfw_faces(augment: bool = False) -> list[FaceImage]:
    """The 100 faces of ``skimage.data.lfw_subset()``, upscaled and padded, with mirrors (and with
    ``augment`` at two more sizes and turned by +-7 degrees)."""
    import cv2
    import skimage.data

    settings = [(LFW_SIZE, 0)] + ([(200, 0), (320, 0), (LFW_SIZE, 7), (LFW_SIZE, -7)] if augment else [])
    out = []
    for i, grey in enumerate(skimage.data.lfw_subset()[:100]):
        g = np.round(grey * 255).astype(np.uint8)
        group = "lfw_even" if i % 2 == 0 else "lfw_odd"
        for size, angle in settings:
            up = cv2.copyMakeBorder(cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC),
                                    LFW_PAD, LFW_PAD, LFW_PAD, LFW_PAD, cv2.BORDER_REPLICATE)  # fmt: skip
            s = size / g.shape[0]
            m = _scale(s, LFW_PAD + (s - 1) / 2, LFW_PAD + (s - 1) / 2)  # pixel centres of the resize
            if angle:
                turn = np.vstack([cv2.getRotationMatrix2D((up.shape[1] / 2, up.shape[0] / 2), angle, 1.0), [0, 0, 1]])
                up = cv2.warpAffine(
                    up, turn[:2], up.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
                )
                m = turn @ m
            name = f"lfw{i:03d}" + ("" if (size, angle) == (LFW_SIZE, 0) else f"_s{size}_r{angle}")
            rgb = np.ascontiguousarray(np.repeat(up[:, :, None], 3, axis=2))
            out += _with_mirrors([FaceImage(group, name, rgb, m, augmented=(size, angle) != (LFW_SIZE, 0))])
    return out


def folder_faces(folder: str | Path, group: str = "user", augment: bool = False) -> list[FaceImage]:
    """Every image in ``folder`` (recursively) and its mirror (and with ``augment`` the training
    variants of each); unreadable files are logged and skipped."""
    from ..imageio import ImageError, list_images, load_rgb

    out = []
    for k, path in enumerate(list_images(Path(folder))):
        try:
            rgb = load_rgb(path)
        except ImageError as e:
            log.warning("skipped %s: %s", path, e)
            continue
        out += _with_mirrors([FaceImage(group, path.name, rgb, np.eye(3))])
        out += augmented_variants(group, path.name, rgb, seed=k) if augment else []
    return out


def detect_pairs(faces: list[FaceImage], progress: bool = False) -> tuple[list[FacePair], dict]:
    """Run MediaPipe (478 points with depth) and dlib (68 points, HOG, mirror-averaged) on every
    face; keep the largest face where both found one and the two faces are the same. Returns the
    pairs and, per group, how many images were tried and kept."""
    from .dlib_backend import Dlib68Landmarks
    from .landmarks import MediaPipeFaceMesh

    counts: dict[str, dict[str, int]] = {}
    pairs = []
    mp, dl = MediaPipeFaceMesh(max_faces=1), Dlib68Landmarks(calibration=None)
    try:
        for k, f in enumerate(faces):
            c = counts.setdefault(f.group, {"images": 0, "both_detected": 0})
            c["images"] += 1
            found = mp.faces(f.rgb)
            pts = dl.landmarks(f.rgb) if found else []
            if pts and _same_face(pts[0], found[0].landmarks):
                pairs.append(
                    FacePair(
                        f.name,
                        f.group,
                        f.rgb.shape[:2],
                        pts[0],
                        found[0].landmarks_with_depth,
                        f.transform,
                        f.augmented,
                    )
                )
                c["both_detected"] += 1
            if progress and (k + 1) % 100 == 0:
                log.info("detected %d / %d faces", k + 1, len(faces))
    finally:
        mp.close()
        dl.close()
    return pairs, counts


def _same_face(points68: np.ndarray, mesh: np.ndarray) -> bool:
    width = float(np.ptp(mesh[:, 0]))
    return bool(np.linalg.norm(points68.mean(axis=0) - mesh[:, :2].mean(axis=0)) < 0.5 * width)


def pair_weights(pairs: list[FacePair]) -> np.ndarray:
    """Training weights: the lfw faces share :data:`LFW_SHARE`, the others the rest (when both kinds are present)."""
    lfw = np.array([p.group.startswith("lfw") for p in pairs])
    if lfw.all() or not lfw.any():
        return np.ones(len(pairs))
    return np.where(lfw, LFW_SHARE / lfw.sum(), (1 - LFW_SHARE) / (~lfw).sum())


def fit_calibration(
    pairs: list[FacePair], groups: tuple[str, ...] | None = None, about: dict | None = None
) -> Ibug68Calibration:
    """The learned map from every pair (original and augmented) of ``groups`` (default: all)."""
    train = [p for p in pairs if groups is None or p.group in groups]
    if not train:
        raise ValueError(f"no face pairs in groups {groups}")
    return fit_mesh_map([p.points68 for p in train], [p.mesh for p in train], pair_weights(train),
                        ridge=RIDGE, rank=RANK, about=about)  # fmt: skip


def agreement(pairs: list[FacePair], calibration: Ibug68Calibration | None) -> np.ndarray:
    """Anchor IoU (n_pairs, n_anchors; :data:`COMPARED_ANCHORS`) of the 68-point regions against
    the MediaPipe regions."""
    from .ibug68 import regions_from_ibug68

    rows = []
    for p in pairs:
        ious = anchor_ious(p.reference(), regions_from_ibug68(p.points68, p.image_size, calibration=calibration))
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
    per_anchor = {a: round(float(v), 4) for a, v in zip(COMPARED_ANCHORS, per)}
    return {"faces": int(len(ious)), "mean": round(float(per.mean()), 4),
            "min_anchor": round(float(per.min()), 4), "per_anchor": per_anchor}  # fmt: skip


def cross_validate(pairs: list[FacePair], folds=FOLDS) -> list[dict]:
    """For each fold: a calibration fitted on every pair of its training groups, then per held-out
    group (its original, not augmented, variants) the agreement without (thin-plate spline through
    the raw points) and with it."""
    out = []
    for train, test in folds:
        cal = fit_calibration(pairs, train)
        fold = {"calibrated_on": list(train), "held_out": {}}
        for g in test:
            held = [p for p in pairs if p.group == g and not p.augmented]
            if held:
                fold["held_out"][g] = {
                    "raw": summarise(agreement(held, None)),
                    "calibrated": summarise(agreement(held, cal)),
                }
        out.append(fold)
    return out


def _in_image_of(p: FacePair, q: FacePair, points: np.ndarray, mesh_mirror: np.ndarray | None) -> np.ndarray:
    """Points of pair ``q``'s image carried into pair ``p``'s image (same source), labels swapped
    when exactly one of the two is mirrored (``mesh_mirror``: MediaPipe's permutation, else iBUG's)."""
    t = p.transform @ np.linalg.inv(q.transform)
    xy = points[:, :2] @ t[:2, :2].T + t[:2, 2]
    out = np.column_stack([xy, points[:, 2] * np.sqrt(abs(np.linalg.det(t[:2, :2])))]) if points.shape[1] > 2 else xy
    if np.linalg.det(t[:2, :2]) < 0:
        out = out[mesh_mirror] if mesh_mirror is not None else out[list(IBUG_MIRROR)]
    return out


def self_agreement(pairs: list[FacePair], calibration: Ibug68Calibration, scale_pairs: list[tuple[str, str]]) -> dict:
    """Noise ceiling: each detector against itself on the same face at another scale. For each
    named pair of variants (same source image), the anchor IoU of MediaPipe's regions of one with
    MediaPipe's regions carried over from the other, and the same for the dlib68 path."""
    from .ibug68 import regions_from_ibug68
    from .mesh_topology import mesh_reference
    from .segment import regions_from_landmarks

    _, mirror = mesh_reference()
    mirror478 = np.concatenate([mirror, np.arange(473, 478), np.arange(468, 473)])
    by_name = {p.name: p for p in pairs}
    rows: dict[str, list] = {"mediapipe": [], "dlib68": []}
    for a, b in scale_pairs:
        if a not in by_name or b not in by_name:
            continue
        p, q = by_name[a], by_name[b]
        mp = anchor_ious(p.reference(), regions_from_landmarks(_in_image_of(p, q, q.mesh, mirror478), p.image_size))
        q_in_p = _in_image_of(p, q, q.points68, None)
        dl = anchor_ious(regions_from_ibug68(p.points68, p.image_size, calibration=calibration),
                         regions_from_ibug68(q_in_p, p.image_size, calibration=calibration))  # fmt: skip
        rows["mediapipe"].append([mp[k] for k in COMPARED_ANCHORS])
        rows["dlib68"].append([dl[k] for k in COMPARED_ANCHORS])
    return {k: summarise(np.asarray(v, dtype=np.float64).reshape(-1, len(COMPARED_ANCHORS))) for k, v in rows.items()}
