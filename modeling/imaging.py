"""Image geometry shared by training and prediction: letterboxing, masks and region queries.

Every image is letterboxed (scaled to fit, centred, padded with the processor's mean colour) to a
square of ``size`` px, so one grid of patches covers every image whatever its aspect ratio, and the
map between image pixels and model pixels is a scale and an offset (:class:`Letterbox`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Image (h, w) placed into a ``size`` square: scale, then offset (x0, y0)."""

    h: int
    w: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.h, self.w)

    @property
    def inner(self) -> tuple[int, int, int, int]:
        """(x0, y0, new_w, new_h) of the image inside the square."""
        nw = max(1, round(self.w * self.scale))
        nh = max(1, round(self.h * self.scale))
        return (self.size - nw) // 2, (self.size - nh) // 2, nw, nh

    def image(self, rgb: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
        x0, y0, nw, nh = self.inner
        out = np.empty((self.size, self.size, 3), np.uint8)
        out[:] = fill
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
        out[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=interp)
        return out

    def mask(self, mask: np.ndarray, out_size: int | None = None) -> np.ndarray:
        """A 0/1 image-sized mask -> float32 mask on the square (resized to ``out_size``)."""
        x0, y0, nw, nh = self.inner
        sq = np.zeros((self.size, self.size), np.float32)
        sq[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(mask.astype(np.float32), (nw, nh), interpolation=cv2.INTER_AREA)
        if out_size and out_size != self.size:
            sq = cv2.resize(sq, (out_size, out_size), interpolation=cv2.INTER_AREA)
        return sq

    def box(self, box) -> np.ndarray:
        """[x0, y0, x1, y1] in image pixels -> the same in square pixels."""
        x0, y0, _, _ = self.inner
        b = np.asarray(box, np.float64) * self.scale
        return b + np.array([x0, y0, x0, y0], np.float64)

    def unbox_logits(self, logits: np.ndarray) -> np.ndarray:
        """Square logits (any side) -> logits at image size (h, w), crop then bilinear resize."""
        s = logits.shape[0] / self.size
        x0, y0, nw, nh = self.inner
        a, b = int(round(x0 * s)), int(round(y0 * s))
        c, d = max(a + 1, int(round((x0 + nw) * s))), max(b + 1, int(round((y0 + nh) * s)))
        crop = np.ascontiguousarray(logits[b:d, a:c], dtype=np.float32)
        return cv2.resize(crop, (self.w, self.h), interpolation=cv2.INTER_LINEAR)


def normalise(square: np.ndarray, mean, std) -> np.ndarray:
    """uint8 HxWx3 -> float32 3xHxW, (x/255 - mean) / std."""
    x = square.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def box_mask(box, size: int) -> np.ndarray:
    """A filled box (square pixels) as a float mask of side ``size`` (clipped to the square)."""
    m = np.zeros((size, size), np.float32)
    x0, y0, x1, y1 = np.clip(np.asarray(box, np.float64), 0, size)
    a, b = int(np.floor(x0)), int(np.floor(y0))
    c, d = max(a + 1, int(np.ceil(x1))), max(b + 1, int(np.ceil(y1)))
    m[b : min(d, size), a : min(c, size)] = 1.0
    return m


def grid_mask(mask_sq: np.ndarray, grid: int) -> np.ndarray:
    """Fraction of each of ``grid x grid`` cells covered by a square mask (area pooling)."""
    return cv2.resize(mask_sq.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
