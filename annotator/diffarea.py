"""Area-level terms of the artifact mask: diffuse, low-amplitude edits (pure numpy / OpenCV).

A skin smoothing, a lighting change or an iris recolour under JPEG changes each pixel by less
than the pair's own compression noise, so a per-pixel test cannot find it. But the change is
*consistent over an area* while compression noise is not: averaged over a window, the signed
difference of an edit keeps its value and the noise shrinks (roughly with the square root of the
window's pixel count). The area terms are the per-pixel terms of :mod:`.diffmask` taken over a
wider Gaussian window (``area_sigma``, px at 384):

* the colour distance of the window's mean *signed* Lab difference (a lighting change, a tint,
  an iris recolour: the sign is the same over the edit);
* the window's RMS of the unblurred lightness difference (smoothing and grain are zero-mean but
  raise the difference energy everywhere in the edit).

They go through the same measurement as the per-pixel terms (:func:`.diffnoise.noise_floors`: per
texture class, median + k MAD of the pair's own map away from connected structure), so their
floors are the pair's own *area-level* noise; the pixel's significance is the larger of its
per-pixel and its area-level one.

Because the window spreads a small edit over its surroundings, :func:`trim_components` then cuts
every small, strong component back to its core: the pixels whose per-pixel significance is at
least ``trim_ratio`` of the component's robust peak (the blurred and JPEG-ringing rim of an iris
recolour is weaker than its core).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` px; from sigma 3 on, computed at half resolution
    (a quarter of the pixels) and brought back bilinearly: the window is far wider than a pixel."""
    h, w = x.shape[:2]
    if sigma < 3 or min(h, w) < 16:
        return cv2.GaussianBlur(x, (0, 0), sigma)
    small = cv2.resize(x, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), float(np.sqrt(sigma * sigma - 0.25)) / 2)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def area_terms(delta: tuple, scale: float, sigma: float, rms_weight: float) -> list[np.ndarray]:
    """[colour distance of the window-mean signed Lab difference, weighted window RMS of dL]."""
    s = sigma * scale
    mean = [smooth(c, s) for c in delta]
    colour = cv2.sqrt(
        cv2.add(cv2.add(cv2.multiply(mean[0], mean[0]), cv2.multiply(mean[1], mean[1])), cv2.multiply(mean[2], mean[2]))
    )
    rms = cv2.sqrt(cv2.max(smooth(cv2.multiply(delta[0], delta[0]), s), 0.0))
    return [colour, cv2.multiply(rms, rms_weight)]


def _lut(values: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, np.float32)
    lut[: len(values)] = values
    return lut


def signed_weight(source: np.ndarray, classes: np.ndarray, keep_classes: int, margin: int = 6) -> np.ndarray:
    """float32 HxW, the pixels the signed test averages: 0 where a channel of the source is within
    ``margin`` of 0 or 255 (resampling and JPEG ringing are clipped there, so their error is not
    zero-mean) and on the most textured classes (``classes >= keep_classes``: a resampled or
    re-encoded edge is darker on one side and lighter on the other all along its length), 1 px
    around them included; else 1."""
    lo, hi = source.min(axis=2), source.max(axis=2)
    bad = ((lo <= margin) | (hi >= 255 - margin) | (classes >= max(1, keep_classes))).astype(np.uint8)
    return (1.0 - cv2.dilate(bad, np.ones((3, 3), np.uint8))).astype(np.float32)


def signed_significance(
    delta: tuple, scale: float, sigma: float, prepared: dict, k: float, min_sigma: float
) -> np.ndarray:
    """Chi test of the window-mean signed Lab difference: per texture class and channel, the centre
    (median) and spread (1.4826 MAD) of the window means over the pair's grid samples; the
    significance is sqrt(sum over channels of ((mean - centre) / spread)^2) / k, so 1 is k robust
    deviations of the pair's own area-level noise (a spread is at least ``min_sigma``)."""
    s = sigma * scale
    g, order, bounds, classes = prepared["grid"], prepared["order"], prepared["bounds"], prepared["classes"]
    acc = None
    w = prepared["signed_weight"]
    for c in delta:
        m = smooth(cv2.multiply(c, w), s)
        samples = m[::g, ::g].ravel()[order]
        centre, spread = np.zeros(len(bounds) - 1), np.full(len(bounds) - 1, min_sigma)
        for j, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            if b - a >= 32:
                centre[j] = np.median(samples[a:b])
                spread[j] = max(min_sigma, 1.4826 * np.median(np.abs(samples[a:b] - centre[j])))
        spread = np.maximum(spread, np.median(spread))  # a flat class's MAD collapses under JPEG (as for the floors)
        u = cv2.multiply(cv2.subtract(m, cv2.LUT(classes, _lut(centre))), cv2.LUT(classes, _lut(1.0 / spread)))
        acc = cv2.multiply(u, u) if acc is None else cv2.add(acc, cv2.multiply(u, u))
    z = cv2.multiply(cv2.multiply(cv2.sqrt(acc), w), 1.0 / k)  # left-out pixels are judged by their neighbours
    b = int(np.ceil(2 * s))  # a window cut by the border averages half the pixels (and JPEG's edge blocks)
    if b > 0 and 2 * b < min(z.shape):
        z[:b], z[-b:], z[:, :b], z[:, -b:] = 0, 0, 0, 0
    return z


def erode_spill(z_area: np.ndarray, radius: float) -> np.ndarray:
    """Grey erosion (a disk of ``radius`` px): the window carries an edit's area significance
    about one window beyond the edit; the minimum over a disk of that size cuts this spill (and
    an isolated bump of noise), while inside an edit the area stays significant."""
    r = int(round(radius))
    if r < 1:
        return z_area
    return cv2.erode(z_area, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


def trim_components(
    mask: np.ndarray, z_pixel: np.ndarray, shift: tuple, max_area: float, ratio: float, peak_quantile: float = 0.9
) -> np.ndarray:
    """Cut each component of ``mask`` smaller than ``max_area`` pixels whose change is mostly of
    colour (mean chroma shift of the blurred difference ``shift`` = (dL, da, db) above its mean
    lightness shift: a recolour, which JPEG's half-resolution chroma spreads) back to the pixels
    whose per-pixel significance is at least ``ratio`` x its ``peak_quantile`` (the largest
    connected part of them, closed by 1 px). Changes of shape or detail (mostly lightness) are
    left as they are: their significance varies inside the edit."""
    if ratio <= 0 or not mask.any():
        return mask
    out = mask.copy()
    for box, comp in small_components(mask, max_area):
        chroma = float(np.hypot(shift[1][box][comp], shift[2][box][comp]).mean())
        if chroma <= float(np.abs(shift[0][box][comp]).mean()):
            continue
        zc = z_pixel[box]
        peak = float(np.quantile(zc[comp], peak_quantile))
        core = comp & (zc >= max(1.0, ratio * peak))
        if core.sum() < 4:
            continue
        k, cl, cs, _ = cv2.connectedComponentsWithStats(core.astype(np.uint8), connectivity=8)
        best = 1 + int(np.argmax(cs[1:, cv2.CC_STAT_AREA]))
        keep = cv2.morphologyEx((cl == best).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
        region = out[box]
        region[comp & ~keep] = False
    return out


def small_components(mask: np.ndarray, max_area: int) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """The 8-connected parts of ``mask`` under ``max_area`` pixels, each as (its bounding box, its pixels in
    the box), in label order."""
    n, lab, st, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    for i in range(1, n):
        if st[i, cv2.CC_STAT_AREA] >= max_area:
            continue
        x, y, w, h = st[i, :4]
        box = (slice(y, y + h), slice(x, x + w))
        yield box, lab[box] == i
