"""The forge's edits: each returns ``(fake, truth_mask, params)`` for an RGB uint8 image.

Exact truth by construction: an edit changes no pixel outside its truth mask. Blends use a
weight feathered *inward* (``inner_alpha``: 0 on and outside the smoothed region border, rising
to 1 inside), so the truth mask is the weight's support; warps taper their displacement to zero
at the truth border. Where an edit happens to leave a truth pixel unchanged (a warp over a flat
patch, a rounding to the same grey level), the pixel is still part of the truth: the region the
edit was applied to.

Strong edits (the original forge): ``SBI``, ``ColorShift``, ``Blur``, ``Warp``, ``Noise``,
``RegionSwap``. Subtle edits (a mean change of a few grey levels): ``GentleWarp``, ``LightBlur``,
``Tint`` (a colour shift of a greyscale face), ``SkinSmooth`` and ``IrisRecolour`` (preferably on
small faces in a large frame).
"""

from __future__ import annotations

import cv2
import numpy as np

STRONG = ("SBI", "ColorShift", "Blur", "Warp", "Noise", "RegionSwap")
SUBTLE = ("GentleWarp", "LightBlur", "Tint", "SkinSmooth", "IrisRecolour")
EDIT_TYPES = STRONG + SUBTLE
CATEGORY = {
    "SBI": "FS",
    "RegionSwap": "FS",
    "ColorShift": "FE",
    "Blur": "FE",
    "Warp": "FE",
    "Noise": "FE",
    "GentleWarp": "FE",
    "LightBlur": "FE",
    "Tint": "FE",
    "SkinSmooth": "FE",
    "IrisRecolour": "FE",
}

#: Regions each edit type may target (nodes of the tree; must be present and large enough).
TARGETS = {
    "ColorShift": [
        "left_eye",
        "right_eye",
        "nose",
        "mouth",
        "left_cheek",
        "right_cheek",
        "forehead",
        "chin",
        "left_eyebrow",
        "right_eyebrow",
        "upper_lip",
        "lower_lip",
        "left_iris",
        "right_iris",
        "left_jaw",
        "right_jaw",
        "hair",
        "nasal_base",
    ],
    "Blur": ["left_eye", "right_eye", "mouth", "left_eyebrow", "right_eyebrow", "eyes", "eyebrows", "hair", "nose"],
    "Warp": ["left_eye", "right_eye", "nose", "mouth", "chin", "left_eyebrow", "right_eyebrow"],
    "Noise": ["left_cheek", "right_cheek", "forehead", "nose", "chin", "mouth", "left_eye", "right_eye"],
    "RegionSwap": ["left_eye", "right_eye", "eyes", "nose", "mouth", "left_eyebrow", "right_eyebrow"],
    "GentleWarp": [
        "left_eye",
        "right_eye",
        "nose",
        "mouth",
        "chin",
        "left_eyebrow",
        "right_eyebrow",
        "left_cheek",
        "right_cheek",
    ],
    "LightBlur": [
        "left_eye",
        "right_eye",
        "eyes",
        "mouth",
        "left_eyebrow",
        "right_eyebrow",
        "eyebrows",
        "nose",
        "hair",
    ],
    "Tint": ["left_cheek", "right_cheek", "cheeks", "forehead", "nose", "mouth", "chin", "left_eye", "right_eye"],
    "SkinSmooth": ["left_cheek", "right_cheek", "cheeks", "forehead", "chin", "nose"],
    "IrisRecolour": ["left_iris", "right_iris", "irises"],
}
#: Pseudo-targets: the union of several leaves (``truth_target`` names their lowest common node).
UNIONS = {"irises": (("left_iris", "right_iris"), "eyes")}


def face_scale(regions) -> float:
    """Feather and displacement scale: 1 for a face about 200 px wide (a 384 px crop, margin 1.9)."""
    x0, y0, x1, y1 = regions.face_box
    return max(max(x1 - x0, y1 - y0) / 200.0, 0.25)


def inner_alpha(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blend weight feathered inward: ``clip(2 * blur(mask) - 1, 0, 1)``.

    Its support is where the blurred mask exceeds one half (the smoothed region), so nothing
    outside that set changes; the weight reaches 0.95 about 2 sigma inside the border.
    """
    a = mask.astype(np.float32)
    if sigma > 0:
        a = cv2.GaussianBlur(a, (0, 0), sigma)
    return np.clip(2.0 * a - 1.0, 0.0, 1.0)


def blend(img: np.ndarray, edited: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[:, :, None]
    out = img.astype(np.float32) * (1 - a) + edited.astype(np.float32) * a
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    out[alpha <= 0] = img[alpha <= 0]  # exactly the source outside the support
    return out


def _blend_result(img, edited, mask, sigma, params):
    alpha = inner_alpha(mask, sigma)
    return blend(img, edited, alpha), alpha > 0, params


def _lab_shift(img: np.ndarray, d) -> np.ndarray:
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab += np.asarray(d, np.float32)
    lab[..., 0] = np.clip(lab[..., 0], 0, 100)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255, 0, 255)


# ----------------------------------------------------------------------------- strong edits
def edit_colour(img, mask, rng, s):
    while True:
        d = rng.uniform(-1, 1, 3) * np.array([18.0, 22.0, 22.0])
        if np.linalg.norm(d) >= 14:
            break
    return _blend_result(img, _lab_shift(img, d), mask, 1.2 * s, {"dLab": [round(float(x), 1) for x in d]})


def edit_blur(img, mask, rng, s, lo=2.5, hi=4.5):
    sigma = float(rng.uniform(lo, hi)) * s
    return _blend_result(img, cv2.GaussianBlur(img, (0, 0), sigma), mask, 1.5 * s, {"sigma": round(sigma, 2)})


def edit_noise(img, mask, rng, s):
    sd = float(rng.uniform(10, 18))
    noisy = img.astype(np.float32) + rng.normal(0, sd, img.shape).astype(np.float32)
    q = int(rng.integers(8, 20))
    ok, buf = cv2.imencode(".jpg", np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
    edited = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return _blend_result(img, edited, mask, 1.0 * s, {"noise_sd": round(sd, 1), "jpeg_q": q})


def edit_warp(img, mask, rng, s, gentle: bool = False):
    """Bulge, pinch or shift around the region; displacement tapered to 0 at the truth border."""
    h, w = img.shape[:2]
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    rad = max(np.sqrt(mask.sum() / np.pi) * 1.3, 6.0 * s)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    fall = np.exp(-(dx * dx + dy * dy) / (rad * rad) * 2.0).astype(np.float32)
    mode = str(rng.choice(["bulge", "pinch", "shift"]))
    if mode == "shift":
        ang = rng.uniform(0, 2 * np.pi)
        mag = float(rng.uniform(0.8, 2.0)) * max(s, 0.6) if gentle else rad * rng.uniform(0.25, 0.4)
        ux, uy = np.cos(ang) * mag * fall, np.sin(ang) * mag * fall
    else:
        # radial: peak displacement k * rad * 0.303 (at r = rad / 2)
        k = float(rng.uniform(0.8, 2.0)) * max(s, 0.6) / (0.303 * rad) if gentle else rng.uniform(0.3, 0.45)
        k *= 1 if mode == "bulge" else -1
        ux, uy = -k * dx * fall, -k * dy * fall
    disp = np.sqrt(ux * ux + uy * uy)
    peak = float(disp.max())
    t = 0.25 * peak if gentle else max(1.0, 0.25 * peak)
    taper = np.clip((disp - t) / t, 0.0, 1.0)  # 0 at the truth border, 1 from twice the threshold
    mapx = (xx + ux * taper).astype(np.float32)
    mapy = (yy + uy * taper).astype(np.float32)
    out = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    truth = disp > t
    out[~truth] = img[~truth]
    return out, truth, {"mode": mode, "radius": round(float(rad), 1), "peak_px": round(peak, 2)}


def edit_swap(img, mask, rng, s, target_regions, donor):
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
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return _blend_result(img, warped, grown, 1.5 * s, {"donor": donor.name})


def edit_sbi(img, regions, rng, s):
    h, w = img.shape[:2]
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
    sigma = float(rng.uniform(2.0, 5.0)) * s
    return _blend_result(img, np.clip(f, 0, 255), mask > 0, sigma, {"hull_scale": round(float(sc), 3)})


# ----------------------------------------------------------------------------- subtle edits
def edit_light_blur(img, mask, rng, s):
    return edit_blur(img, mask, rng, s, lo=0.6, hi=1.4)


def edit_tint(img, mask, rng, s):
    """A faint colour cast (a/b shift 2-7, lightness +-2) of one region of a greyscale face."""
    ang = rng.uniform(0, 2 * np.pi)
    c = float(rng.uniform(2.0, 7.0))
    d = [float(rng.uniform(-2, 2)), c * np.cos(ang), c * np.sin(ang)]
    return _blend_result(img, _lab_shift(img, d), mask, 1.0 * s, {"dLab": [round(float(x), 1) for x in d]})


def edit_skin_smooth(img, mask, rng, s):
    """Edge-preserving smoothing of skin (bilateral filter), partly mixed back."""
    sc = float(rng.uniform(30, 60))
    ss = float(rng.uniform(3.0, 6.0)) * max(s, 0.5)
    sm = cv2.bilateralFilter(img, 0, sc, ss).astype(np.float32)
    k = float(rng.uniform(0.8, 1.0))
    edited = img.astype(np.float32) * (1 - k) + sm * k
    return _blend_result(
        img, edited, mask, 1.0 * s, {"sigma_color": round(sc, 1), "sigma_space": round(ss, 2), "mix": round(k, 2)}
    )


def edit_iris(img, mask, rng, s):
    """A new iris colour: an a/b shift of 8-20 and lightness +-6 (narrow feather: a small region)."""
    ang = rng.uniform(0, 2 * np.pi)
    c = float(rng.uniform(8.0, 20.0))
    d = [float(rng.uniform(-6, 6)), c * np.cos(ang), c * np.sin(ang)]
    return _blend_result(img, _lab_shift(img, d), mask, 0.4 * s, {"dLab": [round(float(x), 1) for x in d]})


REGION_EDITS = {
    "ColorShift": edit_colour,
    "Blur": edit_blur,
    "Noise": edit_noise,
    "Warp": edit_warp,
    "GentleWarp": lambda img, m, rng, s: edit_warp(img, m, rng, s, gentle=True),
    "LightBlur": edit_light_blur,
    "Tint": edit_tint,
    "SkinSmooth": edit_skin_smooth,
    "IrisRecolour": edit_iris,
}


def mean_abs_change(img: np.ndarray, fake: np.ndarray, truth: np.ndarray) -> float:
    """Mean over the truth mask (and the three channels) of the absolute change, in grey levels."""
    if not truth.any():
        return 0.0
    d = np.abs(fake.astype(np.int16) - img.astype(np.int16)).mean(axis=2)
    return float(d[truth].mean())
