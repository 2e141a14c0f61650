"""Grid sampling and mask operations of the off-face pass (:mod:`.offface`).

The off-face concepts are decided on a grid of ``step`` x ``step`` pixel blocks (about 20 cells per
inter-ocular distance); these helpers move images and masks between the pixels and that grid, and
shape the masks on it (OpenCV passes on byte views of boolean masks).
"""

from __future__ import annotations

import cv2
import numpy as np


def face_cells(face_full: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    """:func:`block_any` of the face mask, worked out on the blocks around the face only (the
    rest of the image holds no face pixel)."""
    x, y, bw, bh = cv2.boundingRect(face_full.view(np.uint8))
    out = np.zeros(shape, bool)
    if bw == 0 or bh == 0:
        return out
    gx0, gy0 = x // step, y // step
    window = face_full[gy0 * step : -(-(y + bh) // step) * step, gx0 * step : -(-(x + bw) // step) * step]
    cells = block_any(window, step)
    out[gy0 : gy0 + cells.shape[0], gx0 : gx0 + cells.shape[1]] = cells
    return out


def block_any(mask: np.ndarray, step: int) -> np.ndarray:
    """Cells (step x step blocks) holding any pixel of ``mask``."""
    if step == 1:
        return mask.copy()
    h, w = mask.shape
    gh, gw = -(-h // step), -(-w // step)
    padded = cv2.copyMakeBorder(
        mask.astype(np.uint8) * 255, 0, gh * step - h, 0, gw * step - w, cv2.BORDER_CONSTANT, value=0
    )
    return cv2.resize(padded, (gw, gh), interpolation=cv2.INTER_AREA) > 0


def to_grid(img: np.ndarray, step: int, shape: tuple[int, int]) -> np.ndarray:
    """Mean of every step x step block (edge blocks padded by replication)."""
    if step == 1:
        return img
    gh, gw = shape
    h, w = img.shape[:2]
    if (gh * step, gw * step) != (h, w):  # pad only when the blocks overhang the image
        img = cv2.copyMakeBorder(img, 0, gh * step - h, 0, gw * step - w, cv2.BORDER_REPLICATE)
    return cv2.resize(img, (gw, gh), interpolation=cv2.INTER_AREA)


def upsample(grid: np.ndarray, step: int, size: tuple[int, int]) -> np.ndarray:
    if step == 1:
        return grid
    h, w = size
    gh, gw = grid.shape[:2]
    return cv2.resize(grid, (gw * step, gh * step), interpolation=cv2.INTER_NEAREST)[:h, :w]


def scatter(values: np.ndarray, flat_index: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    out.ravel()[flat_index] = values
    return out


def attached(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """The connected pieces of ``mask`` that touch ``seed``."""
    n, lab = cv2.connectedComponents(
        mask.view(np.uint8) if mask.dtype == bool else mask.astype(np.uint8), connectivity=8
    )
    if n <= 1:
        return np.zeros_like(mask)
    keep = np.zeros(n, bool)
    keep[lab[seed & mask]] = True
    keep[0] = False
    return keep[lab]


def ring(face: np.ndarray, width_cells: int) -> np.ndarray:
    """Cells within ``width_cells`` outside the face."""
    return cv2.dilate(face.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=width_cells).astype(bool) & ~face


def dilate(mask: np.ndarray, radius_cells: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_cells + 1, 2 * radius_cells + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def close(mask: np.ndarray, radius_cells: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_cells + 1, 2 * radius_cells + 1))
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, k).astype(bool)


def smooth(mask: np.ndarray, radius_cells: int) -> np.ndarray:
    if radius_cells < 1 or not mask.any():
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius_cells + 1, 2 * radius_cells + 1))
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, k)
    return cv2.morphologyEx(m, cv2.MORPH_OPEN, k).astype(bool)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every enclosed hole filled (flood fill of the outside from the border)."""
    if not mask.any():
        return mask
    outside = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)
    return outside[1:-1, 1:-1] != 2


def drop_small(mask: np.ndarray, min_cells: float) -> None:
    """Pieces of ``mask`` (8-connected) smaller than ``min_cells`` removed, in place (one look-up
    for all pieces rather than a pass over the grid per small piece)."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < min_cells
    small[0] = False
    if small.any():
        mask &= ~small[lab]
