"""Steps 3 and 4 of the artifact mask (:mod:`.diffmask`): the seeds' strength, the clean-up of the grown mask.

Pure numpy / OpenCV: :func:`strength` (a robust typical value of the edit's core, for the hysteresis
threshold), :func:`clean` (closing, opening, hole filling, then only the components with enough evidence
and changed pixels), :func:`fill_holes`, :func:`disk` (the structuring element of a radius).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .diffmask import DiffConfig


def disk(radius: float) -> np.ndarray | None:
    """An elliptic structuring element of ``radius`` pixels (None under 1)."""
    r = int(round(radius))
    if r < 1:
        return None
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def strength(seed_values: np.ndarray, grow_ratio: float, quantile: float, rounds: int = 3) -> float:
    """A robust typical value of the edit's core: a quantile of the seeds, re-taken among the seeds
    above ``grow_ratio`` times it, so that the blurred rim of a small edit (most of its seeds) does
    not pull it down."""
    s = float(np.quantile(seed_values, quantile))
    for _ in range(rounds):
        core = seed_values[seed_values > grow_ratio * s]
        if core.size == 0:
            break
        s = float(np.quantile(core, quantile))
    return s


def clean(mask: np.ndarray, z: np.ndarray, delta: tuple, scale: float, config: DiffConfig) -> tuple[np.ndarray, int]:
    """Closing, opening, hole filling; then only components with enough evidence above the floor
    and enough changed pixels of their own (a blurred lone pixel is a blob, not a region).

    Works on the mask's bounding box (plus a margin): closing and opening stay inside it."""
    k_close, k_open = disk(config.close_radius * scale), disk(config.open_radius * scale)
    pad = (k_close.shape[0] if k_close is not None else 1) + 2
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    H, W = mask.shape
    box = (slice(max(0, y - pad), min(H, y + h + pad)), slice(max(0, x - pad), min(W, x + w + pad)))
    m = mask[box].astype(np.uint8)
    if k_close is not None:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k_close)
    if k_open is not None:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k_open)
    m = fill_holes(m)
    out = np.zeros((H, W), bool)
    ncomp, lab = cv2.connectedComponents(m, connectivity=8)
    if ncomp <= 1:
        return out, 0
    on = m.astype(bool)
    excess = np.clip(z[box][on] - 1.0, 0.0, config.evidence_cap)
    evidence = np.bincount(lab[on], weights=excess, minlength=ncomp)
    raw = sum(np.abs(c[box][on]) for c in delta) > config.noise_floor  # changed before any blur
    support = np.bincount(lab[on], weights=raw, minlength=ncomp)
    keep = (evidence >= config.min_evidence * scale * scale) & (support >= config.min_support * scale * scale)
    keep[0] = False
    out[box] = keep[lab]
    return out, int(keep.sum())


def fill_holes(m: np.ndarray) -> np.ndarray:
    """Fill enclosed holes (background not connected to the border)."""
    inv = (m == 0).astype(np.uint8)
    ncomp, lab = cv2.connectedComponents(inv, connectivity=4)
    if ncomp <= 2:
        return m
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    hole = np.ones(ncomp, dtype=bool)
    hole[border] = False
    hole[0] = False
    return (m.astype(bool) | hole[lab]).astype(np.uint8)
