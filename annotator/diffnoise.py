"""Step 2 of the artifact mask (:mod:`.diffmask`): the pair's own noise floor per term and texture class,
measured away from the connected structure a first pass finds, and each pixel's significance over it."""

from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .diffclean import disk

if TYPE_CHECKING:
    from .diffmask import DiffConfig


def _class_floors(
    values: np.ndarray,
    bounds: np.ndarray,
    k: float,
    minima: np.ndarray,
    share: float,
    cap: np.ndarray,
    min_samples: int = 32,
) -> np.ndarray | None:
    """Per term (rows of ``values``, ordered by class along the columns: class j in
    ``bounds[j]:bounds[j + 1]``) and texture class: median + k * 1.4826 * MAD, at most ``cap[j]``
    (re-encoding noise is bounded by the texture: a larger value means an edit covering most of the
    class, as a face swap of a tight crop does), at least ``share`` times the term's median over
    classes (in flat areas a JPEG leaves most pixels exact and the MAD collapses) and the term's
    minimum. Shape (terms, classes); None when no class has enough samples."""
    n_classes = len(bounds) - 1
    floors = np.full((values.shape[0], n_classes), np.nan, np.float32)
    for j in range(n_classes):
        seg = values[:, bounds[j] : bounds[j + 1]]
        n = seg.shape[1]
        if n < min_samples:
            continue
        med = np.partition(seg, n // 2, axis=1)[:, n // 2]  # upper median: cheaper than np.median
        mad = np.partition(np.abs(seg - med[:, None]), n // 2, axis=1)[:, n // 2]
        floors[:, j] = med + k * 1.4826 * mad
    ok = ~np.isnan(floors[0])
    if not ok.any():
        return None
    if not ok.all():  # a class with too few samples takes the nearest measured one
        idx = np.flatnonzero(ok)
        floors = floors[:, idx[np.abs(np.arange(n_classes)[:, None] - idx[None, :]).argmin(axis=1)]]
    floors = np.minimum(floors, cap[None, :])
    low = np.maximum(minima, share * np.median(floors, axis=1))
    return np.maximum(floors, low[:, None]).astype(np.float32)


def noise_floors(terms: list[np.ndarray], prepared: dict, config: DiffConfig) -> tuple[np.ndarray, dict]:
    """Per term and texture class, the noise floor measured on the pair itself (see module doc);
    shape (terms, classes).

    First pass on every grid sample; second pass without the connected structure the first pass
    finds (grown by ``exclude_radius``), so an edit does not count as noise.
    """
    g, order, bounds = prepared["grid"], prepared["order"], prepared["bounds"]
    gh, gw = terms[0][::g, ::g].shape
    grid = np.stack([t[::g, ::g].ravel() for t in terms])[:, order]  # class-ordered samples
    minima = np.full(len(terms), config.noise_floor, np.float32)
    cap = config.max_noise[0] + config.max_noise[1] * prepared["class_texture"]
    floors = _class_floors(grid, bounds, config.noise_k, minima, config.class_share, cap)
    if floors is None:  # a tiny image: the absolute floors only
        return np.repeat(minima[:, None], len(bounds) - 1, axis=1), {"noise_excluded": 0.0}
    if (floors <= minima[:, None]).all():  # no noise at all (a lossless pair): nothing to refine
        return floors, {"noise_excluded": 0.0}
    cls_sorted = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    over = np.zeros(gh * gw, bool)
    over[order[(grid > floors[:, cls_sorted]).any(axis=0)]] = True
    excluded = 0.0
    if over.any():
        n, lab, st, _ = cv2.connectedComponentsWithStats(over.reshape(gh, gw).astype(np.uint8), connectivity=8)
        big = st[:, cv2.CC_STAT_AREA] >= 4  # isolated spikes are noise, not structure
        big[0] = False
        if big.any():
            r = max(1, int(round(config.exclude_radius * prepared["scale"] / g)))
            struct = cv2.dilate(big[lab].astype(np.uint8), disk(r) if r > 1 else np.ones((3, 3), np.uint8))
            keep = struct.ravel()[order] == 0  # class-ordered
            excluded = 1.0 - float(keep.mean())
            kb = np.concatenate([[0], np.cumsum(keep)])[bounds]  # class bounds among the kept samples
            second = _class_floors(grid[:, keep], kb, config.noise_k, minima, config.class_share, cap)
            if second is not None:
                floors = second
    return floors, {"noise_excluded": excluded}


def significance_map(terms: list[np.ndarray], floors: list[np.ndarray], classes: np.ndarray) -> np.ndarray:
    """How many times its own noise floor each pixel's strongest term is (1 = at the floor)."""
    return reduce(cv2.max, [cv2.multiply(t, cv2.LUT(classes, _lut256(1.0 / f))) for t, f in zip(terms, floors)])


def _lut256(values: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, np.float32)
    lut[: len(values)] = values
    return lut
