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

They go through the same measurement as the per-pixel terms (:func:`.diffmask.noise_floors`: per
texture class, median + k MAD of the pair's own map away from connected structure), so their
floors are the pair's own *area-level* noise; the pixel's significance is the larger of its
per-pixel and its area-level one.

Because the window spreads a small edit over its surroundings, :func:`trim_components` then cuts
every small, strong component back to its core: the pixels whose per-pixel significance is at
least ``trim_ratio`` of the component's robust peak (the blurred and JPEG-ringing rim of an iris
recolour is weaker than its core).
"""

from __future__ import annotations

import cv2
import numpy as np


def area_terms(delta: tuple, scale: float, sigma: float, rms_weight: float) -> list[np.ndarray]:
    """[colour distance of the window-mean signed Lab difference, weighted window RMS of dL]."""
    s = sigma * scale
    mean = [cv2.GaussianBlur(c, (0, 0), s) for c in delta]
    colour = cv2.sqrt(cv2.add(cv2.add(cv2.multiply(mean[0], mean[0]), cv2.multiply(mean[1], mean[1])),
                              cv2.multiply(mean[2], mean[2])))
    rms = cv2.sqrt(cv2.GaussianBlur(cv2.multiply(delta[0], delta[0]), (0, 0), s))
    return [colour, cv2.multiply(rms, rms_weight)]


def erode_spill(z_area: np.ndarray, radius: float) -> np.ndarray:
    """Grey erosion (a disk of ``radius`` px): the window carries an edit's area significance
    about one window beyond the edit; the minimum over a disk of that size cuts this spill (and
    an isolated bump of noise), while inside an edit the area stays significant."""
    r = int(round(radius))
    if r < 1:
        return z_area
    return cv2.erode(z_area, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))


def trim_components(mask: np.ndarray, z_pixel: np.ndarray, max_area: float, ratio: float,
                    peak_quantile: float = 0.9) -> np.ndarray:
    """Cut each component of ``mask`` smaller than ``max_area`` pixels back to the pixels whose
    per-pixel significance is at least ``ratio`` x its ``peak_quantile`` (when that keeps a
    connected core: the largest trimmed part, holes filled, is what stays)."""
    if ratio <= 0 or not mask.any():
        return mask
    n, lab, st, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = mask.copy()
    for i in range(1, n):
        if st[i, cv2.CC_STAT_AREA] >= max_area:
            continue
        x, y, w, h = st[i, :4]
        box = (slice(y, y + h), slice(x, x + w))
        comp = lab[box] == i
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
