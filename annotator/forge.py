"""Pseudo-forgeries with exact ground truth, from real faces (`fifa-data forge`).

It lives with the annotator, the lowest stage that uses it (`fifa-annotate run --demo`, the
accuracy evaluation); `fifa-data forge` in pipelines is its command line.

Base faces: the two public-domain photos shipped with scikit-image (``astronaut``) and
matplotlib (``grace_hopper.jpg``), their face crops at several sizes (384 px included) and
their mirror images, plus any folder of faces (``faces=``). Every base variant is a real row
of the manifest; every fake names it as ``source_path``.

Fakes (deterministic given ``seed``; numpy ``Generator``):

* ``SBI`` (self-blended image, category FS): the face blended onto itself through a
  landmark hull mask (randomly scaled, feathered) after colour, sharpness and small
  geometric jitter.
* region-targeted edits (FE) of one FICT region, through the Segmenter's mask of it:
  ``ColorShift`` (Lab shift), ``Blur`` (loss of detail), ``Warp`` (local displacement),
  ``Noise`` (grain plus JPEG-like block compression), and ``RegionSwap`` (FS: the region
  of another identity, aligned by landmarks).

Ground truth: ``truth_mask`` is the exact edit mask (blend weight >= 0.5; for warps,
displacement >= max(1 px, a quarter of the peak)), stored as RLE and as PNG under ``masks/``; ``truth`` lists the FICT
leaves substantially covered by it (at least half of the leaf, or a quarter of the edit),
computed from that mask and the segmentation of the source; ``truth_target`` is the node
the edit aimed at.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fifa.concept_tree import rle as rle_utils

log = logging.getLogger(__name__)

EDIT_TYPES = ("SBI", "ColorShift", "Blur", "Warp", "Noise", "RegionSwap")
CATEGORY = {"SBI": "FS", "RegionSwap": "FS", "ColorShift": "FE", "Blur": "FE", "Warp": "FE", "Noise": "FE"}

#: Regions each edit type may target (nodes of the tree; must be present and large enough).
TARGETS = {
    "ColorShift": ["left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "forehead", "chin",
                   "left_eyebrow", "right_eyebrow", "upper_lip", "lower_lip", "left_iris", "right_iris",
                   "left_jaw", "right_jaw", "hair", "nasal_base"],
    "Blur": ["left_eye", "right_eye", "mouth", "left_eyebrow", "right_eyebrow", "eyes", "eyebrows", "hair", "nose"],
    "Warp": ["left_eye", "right_eye", "nose", "mouth", "chin", "left_eyebrow", "right_eyebrow"],
    "Noise": ["left_cheek", "right_cheek", "forehead", "nose", "chin", "mouth", "left_eye", "right_eye"],
    "RegionSwap": ["left_eye", "right_eye", "eyes", "nose", "mouth", "left_eyebrow", "right_eyebrow"],
}
MIN_TARGET_FRACTION = 0.0006  # of the image
TRUTH_COVERAGE = 0.5
TRUTH_SHARE = 0.25


@dataclass
class BaseFace:
    name: str  # file stem
    group: str  # identity
    image: np.ndarray
    regions: object  # FaceRegions


def grace_hopper_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def bundled_faces() -> list[tuple[str, np.ndarray]]:
    """The two public-domain photos: (identity, RGB)."""
    import skimage.data

    return [
        ("astronaut", skimage.data.astronaut()),
        ("grace_hopper", np.asarray(Image.open(grace_hopper_path()).convert("RGB"))),
    ]


def _crop(img: np.ndarray, box, margin: float, size: int) -> np.ndarray | None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.08 * (y1 - y0)
    side = max(x1 - x0, y1 - y0) * margin
    h, w = img.shape[:2]
    side = min(side, h, w)
    a = int(round(min(max(cx - side / 2, 0), w - side)))
    b = int(round(min(max(cy - side / 2, 0), h - side)))
    s = int(round(side))
    if s < 64:
        return None
    crop = img[b: b + s, a: a + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)


def base_variants(faces: list[tuple[str, np.ndarray]], segmenter, tags: tuple[str, ...] | None = None) -> list[BaseFace]:
    """Crops, rescales and mirrors of each face; only variants with a detected face are kept.

    ``tags`` keeps only the named variants (e.g. ``("crop1.9_384", "crop1.9_384_mirror")``).
    """
    out: list[BaseFace] = []
    for ident, img in faces:
        r = segmenter.segment(img)
        if not r.ok:
            log.warning("no face in %s: skipped", ident)
            continue
        cands = [("full", img)]
        for margin, size in ((1.9, 384), (2.6, 384), (1.9, 512), (2.3, 320)):
            tag = f"crop{margin:g}_{size}"
            if tags is not None and tag not in tags and tag + "_mirror" not in tags:
                continue
            c = _crop(img, r.face_box, margin, size)
            if c is not None:
                cands.append((f"crop{margin:g}_{size}", c))
        for tag, im in list(cands):
            cands.append((tag + "_mirror", np.ascontiguousarray(im[:, ::-1])))
        for tag, im in cands:
            if tags is not None and tag not in tags:
                continue
            reg = segmenter.segment(im)
            if reg.ok:
                out.append(BaseFace(f"{ident}_{tag}", ident, im, reg))
    return out


# ----------------------------------------------------------------------------- edits
def _feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    a = mask.astype(np.float32)
    if sigma > 0:
        a = cv2.GaussianBlur(a, (0, 0), sigma)
    return np.clip(a, 0, 1)


def _blend(img: np.ndarray, edited: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[:, :, None]
    out = img.astype(np.float32) * (1 - a) + edited.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _scale(img: np.ndarray) -> float:
    return min(img.shape[:2]) / 384.0


def edit_colour(img, mask, rng):
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    while True:
        d = rng.uniform(-1, 1, 3) * np.array([18.0, 22.0, 22.0])
        if np.linalg.norm(d) >= 14:
            break
    lab2 = lab + d.astype(np.float32)
    lab2[..., 0] = np.clip(lab2[..., 0], 0, 100)
    edited = np.clip(cv2.cvtColor(lab2, cv2.COLOR_Lab2RGB) * 255, 0, 255)
    alpha = _feather(mask, 1.2 * _scale(img))
    return _blend(img, edited, alpha), alpha >= 0.5, {"dLab": [round(float(x), 1) for x in d]}


def edit_blur(img, mask, rng):
    s = _scale(img)
    sigma = float(rng.uniform(2.5, 4.5)) * s
    edited = cv2.GaussianBlur(img, (0, 0), sigma)
    alpha = _feather(mask, 1.5 * s)
    return _blend(img, edited, alpha), alpha >= 0.5, {"sigma": round(sigma, 2)}


def edit_noise(img, mask, rng):
    s = _scale(img)
    sd = float(rng.uniform(10, 18))
    noisy = img.astype(np.float32) + rng.normal(0, sd, img.shape).astype(np.float32)
    q = int(rng.integers(8, 20))
    ok, buf = cv2.imencode(".jpg", np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
    edited = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    alpha = _feather(mask, 1.0 * s)
    return _blend(img, edited, alpha), alpha >= 0.5, {"noise_sd": round(sd, 1), "jpeg_q": q}


def edit_warp(img, mask, rng):
    h, w = img.shape[:2]
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    rad = max(np.sqrt(mask.sum() / np.pi) * 1.3, 6.0 * _scale(img))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    r2 = (dx * dx + dy * dy) / (rad * rad)
    fall = np.exp(-r2 * 2.0).astype(np.float32)
    mode = rng.choice(["bulge", "pinch", "shift"])
    if mode == "shift":
        ang = rng.uniform(0, 2 * np.pi)
        mag = rad * rng.uniform(0.25, 0.4)
        ux, uy = np.cos(ang) * mag * fall, np.sin(ang) * mag * fall
    else:
        k = rng.uniform(0.3, 0.45) * (1 if mode == "bulge" else -1)
        ux, uy = -k * dx * fall, -k * dy * fall
    mapx, mapy = (xx + ux).astype(np.float32), (yy + uy).astype(np.float32)
    out = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    disp = np.sqrt(ux * ux + uy * uy)
    truth = disp >= max(1.0, 0.25 * float(disp.max()))
    return out, truth, {"mode": str(mode), "radius": round(float(rad), 1)}


def edit_swap(img, mask, rng, target_regions, donor: BaseFace):
    h, w = img.shape[:2]
    src = donor.regions.landmarks.astype(np.float32)
    dst = target_regions.landmarks.astype(np.float32)
    M, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if M is None:
        return None
    warped = cv2.warpAffine(donor.image, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # Partial colour transfer (a careless swap keeps part of the donor's tone).
    m = mask.astype(bool)
    if m.sum() > 10:
        lw = cv2.cvtColor(warped.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        li = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        k = float(rng.uniform(0.0, 0.6))
        lw += k * (li[m].mean(0) - lw[m].mean(0))
        warped = np.clip(cv2.cvtColor(lw, cv2.COLOR_Lab2RGB) * 255, 0, 255)
    alpha = _feather(cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, 1.5 * _scale(img))
    return _blend(img, warped, alpha), alpha >= 0.5, {"donor": donor.name}


def edit_sbi(img, regions, rng):
    h, w = img.shape[:2]
    s = _scale(img)
    pts = regions.landmarks.astype(np.float32)
    hull = cv2.convexHull(pts)
    c = pts.mean(0)
    sc = rng.uniform(0.82, 1.0)
    hull = (hull - c) * np.array([sc * rng.uniform(0.95, 1.05), sc], np.float32) + c
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull.astype(np.int32), 1)
    # Source-target jitter: colour, sharpness, small translation and scale.
    f = img.astype(np.float32)
    gains = rng.uniform(0.88, 1.12, 3).astype(np.float32)
    f = f * gains + rng.uniform(-12, 12)
    if rng.random() < 0.5:
        f = cv2.GaussianBlur(f, (0, 0), float(rng.uniform(0.8, 1.6)) * s)
    else:
        bl = cv2.GaussianBlur(f, (0, 0), 1.5 * s)
        f = f + rng.uniform(0.6, 1.2) * (f - bl)
    zoom = rng.uniform(0.98, 1.03)
    tx, ty = rng.uniform(-3, 3, 2) * s
    M = np.array([[zoom, 0, (1 - zoom) * c[0] + tx], [0, zoom, (1 - zoom) * c[1] + ty]], np.float32)
    f = cv2.warpAffine(f, M, (w, h), borderMode=cv2.BORDER_REFLECT)
    alpha = _feather(mask > 0, float(rng.uniform(2.0, 5.0)) * s)
    return _blend(img, np.clip(f, 0, 255), alpha), alpha >= 0.5, {"hull_scale": round(float(sc), 3)}


# ----------------------------------------------------------------------------- truth
def truth_leaves(regions, truth_mask: np.ndarray) -> list[str]:
    """FICT leaves substantially covered by the edit mask, most covered first."""
    lm = regions.label_map
    n = len(regions.leaf_ids)
    area = np.bincount(lm.ravel().astype(np.int64) + 1, minlength=n + 1)[1:]
    inter = np.bincount(lm[truth_mask].astype(np.int64) + 1, minlength=n + 1)[1:]
    total = max(int(truth_mask.sum()), 1)
    out = []
    for k, leaf in enumerate(regions.leaf_ids):
        if not area[k] or not inter[k]:
            continue
        cov, share = inter[k] / area[k], inter[k] / total
        if cov >= TRUTH_COVERAGE or share >= TRUTH_SHARE:
            out.append((-cov, leaf))
    return [leaf for _, leaf in sorted(out)]


# ----------------------------------------------------------------------------- main
def forge(out_dir: str | Path, n: int = 60, seed: int = 0, faces: str | Path | None = None,
          jpeg_fraction: float = 0.25, segmenter=None, base_tags: tuple[str, ...] | None = None) -> Path:
    """Write ``out_dir/manifest.parquet`` with real base faces and ``n`` fakes; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fifa.concept_tree.imageio import ImageError, list_images, load_rgb
    from fifa.concept_tree.segment import Segmenter
    from fifa.concept_tree.tree import load_tree

    out = Path(out_dir)
    (out / "images" / "real").mkdir(parents=True, exist_ok=True)
    (out / "images" / "fake").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tree = load_tree()
    src_faces = bundled_faces()
    if faces is not None:
        for p in list_images(faces):
            try:
                src_faces.append((p.stem, load_rgb(p)))
            except ImageError as e:
                log.warning("skipping %s: %s", p, e)
    own = segmenter is None
    seg = Segmenter() if own else segmenter
    try:
        bases = base_variants(src_faces, seg, base_tags)
    finally:
        if own:
            seg.close()
    if not bases:
        raise ValueError("no usable face among the base images")
    rows = []
    for b in bases:
        p = out / "images" / "real" / f"{b.name}.png"
        Image.fromarray(b.image).save(p)
        rows.append(dict(sample_id=f"real_{b.name}", image_path=str(p.relative_to(out)), source_path=None,
                         label="real", method=None, category="real", group=b.group, truth=[], truth_target=None,
                         truth_mask=rle_utils.empty(*b.image.shape[:2]), edit=None))
    made = 0
    attempts = 0
    while made < n and attempts < n * 20:
        attempts += 1
        b = bases[int(rng.integers(len(bases)))]
        kind = EDIT_TYPES[int(rng.integers(len(EDIT_TYPES)))]
        img, reg = b.image, b.regions
        h, w = img.shape[:2]
        target = None
        params: dict = {}
        if kind == "SBI":
            res = edit_sbi(img, reg, rng)
            target = "face"
        else:
            cands = [t for t in TARGETS[kind] if t in tree and reg.mask(t).sum() >= MIN_TARGET_FRACTION * h * w]
            if not cands:
                continue
            target = cands[int(rng.integers(len(cands)))]
            m = reg.mask(target)
            if kind == "ColorShift":
                res = edit_colour(img, m, rng)
            elif kind == "Blur":
                res = edit_blur(img, m, rng)
            elif kind == "Noise":
                res = edit_noise(img, m, rng)
            elif kind == "Warp":
                res = edit_warp(img, m, rng)
            else:
                donors = [d for d in bases if d.group != b.group]
                if not donors:
                    continue
                res = edit_swap(img, m, rng, reg, donors[int(rng.integers(len(donors)))])
                if res is None:
                    continue
        fake, tmask, params = res
        if tmask.sum() < 20:
            continue
        truth = truth_leaves(reg, tmask)
        if not truth:
            continue
        made += 1
        sid = f"fake_{made:05d}_{kind.lower()}"
        use_jpeg = rng.random() < jpeg_fraction
        ext = "jpg" if use_jpeg else "png"
        fp = out / "images" / "fake" / f"{sid}.{ext}"
        if use_jpeg:
            Image.fromarray(fake).save(fp, quality=int(rng.integers(92, 98)))
        else:
            Image.fromarray(fake).save(fp)
        mp = out / "masks" / f"{sid}.png"
        Image.fromarray((tmask * 255).astype(np.uint8)).save(mp)
        rows.append(dict(
            sample_id=sid, image_path=str(fp.relative_to(out)),
            source_path=str((out / "images" / "real" / f"{b.name}.png").relative_to(out)),
            label="fake", method=kind, category=CATEGORY[kind], group=b.group, truth=truth, truth_target=target,
            truth_mask=rle_utils.encode(tmask), edit=_params_str(params),
        ))
    rle_t = pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])
    schema = pa.schema([
        ("sample_id", pa.string()), ("image_path", pa.string()), ("source_path", pa.string()),
        ("label", pa.string()), ("method", pa.string()), ("category", pa.string()), ("group", pa.string()),
        ("truth", pa.list_(pa.string())), ("truth_target", pa.string()), ("truth_mask", rle_t),
        ("edit", pa.string()),
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    path = out / "manifest.parquet"
    pq.write_table(table, path)
    return path


def _params_str(params: dict) -> str:
    import json

    return json.dumps(params, sort_keys=True)


def fingerprint(path: str | Path) -> str:
    """sha256 of a file (used by tests of determinism)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
