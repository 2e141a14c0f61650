#!/usr/bin/env python
"""A held-out forged set made by code other than the forge's (for honest accuracy numbers).

    python scripts/heldout_pairs.py --out DIR [--n 120] [--seed 1]

The annotator's defaults were tuned on ``fifa-data forge`` output. This set differs in every
respect the forge controls: other edit implementations and strength distributions (HSV hue
rotation, gamma, median filter, unsharp mask, a random smooth displacement field, Poisson
cloning, a grey-level tint, guided smoothing, local JPEG), hard or box-feathered masks instead of
Gaussian ones, other faces and sizes (the lfw faces at 160-224 px, photo crops at 448 px, small
faces in scikit-image's ``coffee`` photo), other encodings (JPEG pairs at q 70-95, WebP
re-encodes among the negatives). Truth follows the same definition as the forge's: the region the
edit was applied to (the support of its blend weight), so the evaluation code is shared.

Writes ``DIR/manifest.parquet`` with the forge's columns (``truth``, ``truth_mask``, ``edit``,
``pair_kind``), so ``fifa.annotator.evaluate`` reads it as it reads a forge output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

KINDS = (
    "HueRotate",
    "Gamma",
    "Median",
    "Sharpen",
    "Elastic",
    "Poisson",
    "GreyTint",
    "GuidedSmooth",
    "LocalJpeg",
    "IrisHue",
)
#: Kinds whose change is rescaled to a mean of 2-10 grey levels (the subtle edits the annotator must find).
CALIBRATED = ("HueRotate", "Gamma", "Median", "Sharpen", "GreyTint", "GuidedSmooth", "IrisHue")
REGIONS = {
    "HueRotate": ["left_cheek", "right_cheek", "mouth", "nose", "forehead", "left_eye", "chin", "upper_lip"],
    "Gamma": ["left_cheek", "right_cheek", "forehead", "nose", "chin", "left_eye", "right_eye"],
    "Median": ["left_eye", "right_eye", "mouth", "left_eyebrow", "right_eyebrow", "nose"],
    "Sharpen": ["left_eye", "right_eye", "mouth", "nose", "left_eyebrow", "hair"],
    "Elastic": ["left_eye", "right_eye", "mouth", "nose", "chin", "left_cheek"],
    "Poisson": ["left_eye", "right_eye", "mouth", "nose", "eyes"],
    "GreyTint": ["left_cheek", "right_cheek", "forehead", "chin", "nose", "mouth"],
    "GuidedSmooth": ["left_cheek", "right_cheek", "cheeks", "forehead", "chin"],
    "LocalJpeg": ["left_cheek", "right_cheek", "forehead", "nose", "mouth", "chin"],
    "IrisHue": ["left_iris", "right_iris"],
}


def bases(segmenter, rng, n_lfw: int = 40):
    """(name, identity, image, regions): lfw faces at 160-224 px, 448 px photo crops, small faces in a frame."""
    import skimage.data

    from fifa.annotator.forge_faces import bundled_faces, crop_face

    out = []
    faces = skimage.data.lfw_subset()[:100]
    for i in rng.choice(100, n_lfw, replace=False):
        side = int(rng.integers(160, 225))
        g = cv2.resize(np.round(faces[i] * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_LANCZOS4)
        out.append((f"lfw{i:03d}_{side}", f"lfw_{i:03d}", np.repeat(g[:, :, None], 3, 2)))
    frame = skimage.data.coffee()
    for src in bundled_faces():
        r = segmenter.segment(src.image)
        c = crop_face(src.image, r.face_box, 2.0, 448)
        out.append((f"{src.identity}_448", src.identity, c))
        small = cv2.resize(crop_face(src.image, r.face_box, 1.5, 384), (150, 150), interpolation=cv2.INTER_AREA)
        f = frame.copy()
        f[200:350, 420:570] = small
        out.append((f"{src.identity}_coffee", src.identity, f))
    res = []
    for name, ident, img in out:
        reg = segmenter.segment(img)
        if reg.ok:
            res.append((name, ident, img, reg))
    return res


def _box_alpha(mask: np.ndarray, width: int) -> np.ndarray:
    """A box-feathered weight that is 0 outside the mask (truth = the mask's support)."""
    if width <= 1:
        return mask.astype(np.float32)
    a = cv2.blur(mask.astype(np.float32), (width, width))
    return np.where(mask, np.clip((a - 0.5) * 2, 0, 1), 0).astype(np.float32)


def _apply(img, edited, alpha):
    out = img.astype(np.float32) * (1 - alpha[..., None]) + np.asarray(edited, np.float32) * alpha[..., None]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out[alpha <= 0] = img[alpha <= 0]
    return out


def edit(kind, img, mask, rng, regions, donor_img):
    """(fake, truth, params)."""
    h, w = img.shape[:2]
    width = int(rng.choice([1, 3, 5]))
    if kind == "HueRotate":
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
        dh, ds = float(rng.uniform(4, 15)) * rng.choice([-1, 1]), float(rng.uniform(0.9, 1.15))
        hsv[..., 0] = (hsv[..., 0] + dh * 256 / 360) % 256
        hsv[..., 1] = np.clip(hsv[..., 1] * ds, 0, 255)
        ed = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL)
        p = {"hue_deg": round(dh, 1), "sat": round(ds, 2)}
    elif kind == "Gamma":
        g = float(rng.choice([rng.uniform(0.85, 0.95), rng.uniform(1.05, 1.15)]))
        ed = 255.0 * (img / 255.0) ** g
        p = {"gamma": round(g, 3)}
    elif kind == "Median":
        k = int(rng.choice([5, 7]))
        ed, p = cv2.medianBlur(img, k), {"ksize": k}
    elif kind == "Sharpen":
        amt = float(rng.uniform(0.8, 2.0))
        bl = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 2.0)
        ed, p = img + amt * (img - bl), {"amount": round(amt, 2)}
    elif kind == "Elastic":
        amp = float(rng.uniform(1.0, 2.5))
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        field = [cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 6) for _ in range(2)]
        field = [f / (np.abs(f).max() + 1e-6) * amp * grown for f in field]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        out = cv2.remap(img, xx + field[0], yy + field[1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        out[~grown] = img[~grown]
        return out, grown, {"amp_px": round(amp, 2)}
    elif kind == "Poisson":
        dx, dy = (int(v) for v in rng.integers(-4, 5, 2))
        donor = np.roll(np.roll(donor_img, dy, 0), dx, 1)
        m8 = (mask * 255).astype(np.uint8)
        ys, xs = np.nonzero(mask)
        centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
        if xs.min() < 2 or ys.min() < 2 or xs.max() > w - 3 or ys.max() > h - 3:
            return None
        out = cv2.seamlessClone(donor, img, m8, centre, cv2.NORMAL_CLONE)
        out[~mask] = img[~mask]  # the clone's gradient fix-up spreads by a grey level beyond the mask
        return out, mask, {"shift": [dx, dy]}
    elif kind == "GreyTint":
        off = np.array([rng.uniform(1.5, 4), 0, -rng.uniform(1.5, 4)]) * rng.choice([-1, 1])
        ed, p = img.astype(np.float32) + off, {"rgb_offset": [round(float(x), 1) for x in off]}
    elif kind == "GuidedSmooth":
        sig = float(rng.uniform(2.0, 4.0))
        mix = float(rng.uniform(0.7, 1.0))
        ed = img * (1 - mix) + cv2.GaussianBlur(img.astype(np.float32), (0, 0), sig) * mix
        p = {"sigma": round(sig, 2), "mix": round(mix, 2)}
    elif kind == "LocalJpeg":
        q = int(rng.integers(20, 41))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        ed, p = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), {"jpeg_q": q}
    else:  # IrisHue
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(20, 60) * 256 / 360) % 256
        hsv[..., 1] = np.clip(hsv[..., 1] * 1.3 + rng.uniform(20, 50), 0, 255)
        ed, p = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL), {}
        width = 1
    alpha = _box_alpha(mask, width)
    ed = np.clip(np.asarray(ed, np.float32), 0, 255)
    if kind in CALIBRATED:  # scale the change so that its mean over the region is 2-10 grey levels
        m = float(np.abs(ed - img).mean(axis=2)[alpha > 0].mean())
        if m > 0:
            target = float(rng.uniform(2.0, 10.0))
            ed = np.clip(img + (ed - img) * (target / m), 0, 255)
            p["target_change"] = round(target, 2)
    out = _apply(img, ed, alpha)
    p["feather"] = width
    return out, alpha > 0, p


def _save(arr, path: Path, fmt: str, q: int | None):
    if fmt == "png":
        Image.fromarray(arr).save(path.with_suffix(".png"))
        return path.with_suffix(".png")
    if fmt == "webp":
        Image.fromarray(arr).save(path.with_suffix(".webp"), quality=q)
        return path.with_suffix(".webp")
    Image.fromarray(arr).save(path.with_suffix(".jpg"), quality=q)
    return path.with_suffix(".jpg")


#: The diffuse, low-amplitude edits (skin smoothing, lighting, iris recolouring): ``--kinds diffuse``.
DIFFUSE = ("GuidedSmooth", "Gamma", "IrisHue")


def make(
    out: Path,
    n: int = 120,
    seed: int = 1,
    negatives: int = 24,
    kinds: tuple = KINDS,
    jpeg_pairs: float = 0.25,
    jpeg_fakes: float = 0.25,
) -> Path:
    """Write the set; ``kinds`` cycles through those edit kinds; ``jpeg_pairs`` / ``jpeg_fakes``: the
    share of fakes whose pair is JPEG on both sides (q 70-95) / whose fake alone is JPEG (q 85-97)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fifa.annotator.forge import truth_leaves
    from fifa.annotator.forge_output import manifest_schema
    from fifa.concept_tree.segmentation.segment import Segmenter
    from fifa.core import rle

    rng = np.random.default_rng(seed)
    for d in ("real", "fake"):
        (out / d).mkdir(parents=True, exist_ok=True)
    with Segmenter() as seg:
        bs = bases(seg, rng)
    rows = []

    def row(sid, img_path, src, label, b, **kw):
        h, w = b[2].shape[:2]
        r = dict(
            sample_id=sid,
            image_path=str(img_path.relative_to(out)),
            source_path=src,
            label=label,
            method=None,
            category="real",
            group=b[1],
            truth=[],
            truth_target=None,
            truth_mask=rle.empty(h, w),
            edit=None,
            pair_kind="pristine",
        )
        r.update(kw)
        rows.append(r)

    for b in bs:
        row(f"real_{b[0]}", _save(b[2], out / "real" / b[0], "png", None), None, "real", b)
    made = 0
    while made < n:
        kind = kinds[made % len(kinds)]
        b = bs[int(rng.integers(len(bs)))]
        if kind == "GreyTint" and not (b[2][..., 0] == b[2][..., 2]).all():
            b = [x for x in bs if x[0].startswith("lfw")][int(rng.integers(10))]
        reg = b[3]
        cands = [t for t in REGIONS[kind] if reg.mask(t).sum() >= 30]
        if not cands:
            rng.random()
            continue
        target = cands[int(rng.integers(len(cands)))]
        donor = bs[int(rng.integers(len(bs)))][2]
        res = edit(kind, b[2], reg.mask(target), rng, reg, donor if donor.shape == b[2].shape else np.flip(b[2], 1))
        if res is None:
            continue
        fake, truth, p = res
        leaves = truth_leaves(reg, truth)
        if not leaves or not (fake != b[2]).any():
            continue
        made += 1
        sid = f"ho_{made:05d}_{kind.lower()}"
        p["mean_abs_change"] = round(float(np.abs(fake.astype(int) - b[2]).mean(2)[truth].mean()), 2)
        src = f"real/{b[0]}.png"
        r = rng.random()
        fmt, q = "png", None
        if r < jpeg_pairs:
            qs = int(rng.integers(70, 96))
            sp = _save(b[2], out / "real" / f"{b[0]}_q{qs}", "jpg", qs)
            if not any(x["image_path"] == str(sp.relative_to(out)) for x in rows):
                row(
                    f"real_{b[0]}_q{qs}",
                    sp,
                    src,
                    "real",
                    b,
                    pair_kind="reencoded",
                    edit=json.dumps({"reencode": "jpeg", "quality": qs}),
                )
            src, fmt, q = str(sp.relative_to(out)), "jpg", int(rng.integers(70, 96))
            p.update(source_jpeg_q=qs, fake_jpeg_q=q)
        elif r < jpeg_pairs + jpeg_fakes:
            fmt, q = "jpg", int(rng.integers(85, 98))
            p["fake_jpeg_q"] = q
        fp = _save(fake, out / "fake" / sid, fmt, q)
        row(
            sid,
            fp,
            src,
            "fake",
            b,
            method=kind,
            category="FE",
            truth=leaves,
            truth_target=target,
            truth_mask=rle.encode(truth),
            edit=json.dumps(p, sort_keys=True),
            pair_kind="forgery",
        )
    for k in range(negatives):
        b = bs[int(rng.integers(len(bs)))]
        mode = ("jpeg", "webp", "resize")[k % 3]
        if mode == "resize":
            f = float(rng.uniform(0.5, 0.9))
            h, w = b[2].shape[:2]
            sm = cv2.resize(b[2], (round(w * f), round(h * f)), interpolation=cv2.INTER_LINEAR)
            arr, fmt, q, p = cv2.resize(sm, (w, h), interpolation=cv2.INTER_LANCZOS4), "png", None, {"factor": f}
        else:
            arr, fmt, q = b[2], ("jpg" if mode == "jpeg" else "webp"), int(rng.integers(70, 96))
            p = {"quality": q}
        fp = _save(arr, out / "fake" / f"neg_{k:03d}_{mode}", fmt, q)
        row(
            f"neg_{k:03d}_{mode}",
            fp,
            f"real/{b[0]}.png",
            "real",
            b,
            pair_kind="reencoded",
            edit=json.dumps({"reencode": mode, **p}),
        )
    path = out / "manifest.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=manifest_schema()), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--negatives", type=int, default=24, help="re-encoded-only pairs (JPEG, WebP, resize)")
    ap.add_argument(
        "--kinds",
        nargs="*",
        default=list(KINDS),
        choices=list(KINDS) + ["diffuse"],
        help=f"edit kinds to cycle through ('diffuse': {', '.join(DIFFUSE)})",
    )
    ap.add_argument("--jpeg-pairs", type=float, default=0.25, help="share of fakes with a JPEG pair (both sides)")
    ap.add_argument("--jpeg-fakes", type=float, default=0.25, help="share of fakes saved as JPEG (source lossless)")
    a = ap.parse_args()
    kinds = tuple(k for x in a.kinds for k in (DIFFUSE if x == "diffuse" else (x,)))
    print(make(a.out, a.n, a.seed, a.negatives, kinds, a.jpeg_pairs, a.jpeg_fakes))


if __name__ == "__main__":
    main()
