"""Colour models of one image: a robust Gaussian of YCrCb samples, the face's own skin colour.

Used by :mod:`.offface` to tell skin from cloth and hair (thresholds in its ``OutsideFaceRules``).
Everything here works on small arrays without BLAS calls (a worker process runs it per image).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from .offface import OutsideFaceRules


@dataclass(frozen=True)
class ColourModel:
    """A Gaussian colour model (``dims`` of YCrCb) fitted robustly to sample pixels."""

    mean: np.ndarray
    inv_cov: np.ndarray
    luma: float  # median Y of the sample
    cov: np.ndarray | None = None

    def chroma(self) -> "ColourModel":
        """The (Cr, Cb) marginal of a 3-channel model."""
        cov = self.cov[1:, 1:]
        return ColourModel(self.mean[1:], _inv_small(cov), self.luma, cov)

    def distance(self, pixels: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of (..., k) pixels. OpenCV applies the matrix per pixel in one
        pass (no BLAS call per image; numpy's small-axis products cost a pass per entry)."""
        x = np.asarray(pixels, dtype=np.float32)
        k = len(self.mean)
        if x.size == 0:  # OpenCV refuses empty arrays
            return np.zeros(x.shape[:-1], np.float32)
        d = x.reshape(-1, 1, k) - self.mean.astype(np.float32)
        q = cv2.transform(cv2.transform(d, self.inv_cov.astype(np.float32)) * d, _ones(k))
        return np.sqrt(np.maximum(q, 0.0, out=q), out=q).reshape(x.shape[:-1])


@lru_cache(maxsize=4)
def _ones(k: int) -> np.ndarray:
    return np.ones((1, k), np.float32)


def _inv_small(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x2 or 3x3 matrix in closed form (adjugate / determinant)."""
    if m.shape == (2, 2):
        (a, b), (c, d) = m
        return np.array([[d, -b], [-c, a]]) / (a * d - b * c)
    (a, b, c), (d, e, f), (g, h, i) = m
    adj = np.array([[e * i - f * h, c * h - b * i, b * f - c * e],
                    [f * g - d * i, a * i - c * g, c * d - a * f],
                    [d * h - e * g, b * g - a * h, a * e - b * d]])  # fmt: skip
    return adj / (a * adj[0, 0] + b * adj[1, 0] + c * adj[2, 0])


def fit_colour(samples: np.ndarray, floor: float, dims=(1, 2), max_samples: int = 1500) -> ColourModel | None:
    """Robust Gaussian of YCrCb samples (N, 3) on the channels ``dims``: extreme luminance
    (highlights, deep shadow) is dropped, then the pixels beyond 2.5 sigma."""
    s = np.asarray(samples).reshape(-1, 3)
    if len(s) < 20:
        return None
    if len(s) > max_samples:  # an even subsample is plenty for 2-3 means and a covariance
        s = s[:: -(-len(s) // max_samples)]
    s = s.astype(np.float32)
    y = s[:, 0]
    lo, hi = np.partition(y, [len(y) // 20, len(y) * 97 // 100])[[len(y) // 20, len(y) * 97 // 100]]
    s = s[(y >= lo) & (y <= hi)]
    x = np.ascontiguousarray(s[:, list(dims)])
    keep = slice(None)
    k = len(dims)
    for _ in range(2):
        xs = x[keep]
        if len(xs) < 10:
            return None
        cov, mean = cv2.calcCovarMatrix(xs, None, cv2.COVAR_NORMAL | cv2.COVAR_ROWS | cv2.COVAR_SCALE)
        cov, mean = cov + np.eye(k) * floor**2, mean.ravel()
        model = ColourModel(mean, _inv_small(cov), 0.0, cov)
        keep = model.distance(x) < 2.5
    y = s[:, 0]
    return ColourModel(mean, model.inv_cov, float(np.partition(y, len(y) // 2)[len(y) // 2]), model.cov)


#: Face leaves whose pixels seed the skin model (bare skin on most faces; beard zones left out).
SKIN_SEED_LEAVES: tuple[str, ...] = (
    "left_cheekbone", "right_cheekbone", "left_mid_cheek", "right_mid_cheek", "forehead_center",
    "left_forehead", "right_forehead", "nasal_bridge", "left_nasal_sidewall", "right_nasal_sidewall",
    "left_under_eye", "right_under_eye", "glabella",
)  # fmt: skip


def skin_model(rgb: np.ndarray, face_labels: np.ndarray, leaf_ids: tuple[str, ...], rules: OutsideFaceRules,
               max_samples: int = 2000, box: tuple[int, int, int, int] | None = None) -> ColourModel | None:
    """Skin colour of this face, from its cheeks, forehead and nose (``face_labels``: the
    image-sized label map of the face; ``box``: x0, y0, x1, y1 holding the face, to look only
    there). ``None`` for a grey image or too few skin pixels."""
    if box is not None:
        x0, y0, x1, y1 = box
        rgb, face_labels = rgb[y0:y1, x0:x1], face_labels[y0:y1, x0:x1]
    flat = np.flatnonzero(_seed_mask(face_labels, tuple(leaf_ids)))  # row-major, as np.nonzero
    step = max(1, -(-len(flat) // max_samples))
    ys, xs = np.divmod(flat[::step], face_labels.shape[1])
    samples = cv2.cvtColor(np.ascontiguousarray(rgb[ys, xs][:, None, :]), cv2.COLOR_RGB2YCrCb)
    if len(samples) < 20 or cv2.meanStdDev(samples)[1][1:].max() < 0.25:  # grey face (or no face skin)
        return None
    samples = samples.reshape(-1, 3).astype(np.float32)
    return fit_colour(samples, rules.skin_chroma_floor)


@lru_cache(maxsize=8)
def _seed_lut(leaf_ids: tuple[str, ...]) -> np.ndarray:
    """label + 1 -> is a skin seed leaf (label -1 -> index 0), 256 bytes for ``cv2.LUT``."""
    lut = np.zeros(max(256, len(leaf_ids) + 1), np.uint8)
    lut[[i + 1 for i, k in enumerate(leaf_ids) if k in SKIN_SEED_LEAVES]] = 1
    return lut


def _seed_mask(face_labels: np.ndarray, leaf_ids: tuple[str, ...]) -> np.ndarray:
    """Pixels of the skin seed leaves. A byte table look-up where labels fit a byte (numpy's
    fancy index widens every int16 label to 64 bits first)."""
    lut = _seed_lut(leaf_ids)
    if len(lut) > 256:
        return lut[face_labels + 1]
    codes = np.empty(face_labels.shape, np.uint8)
    np.add(face_labels, 1, out=codes, casting="unsafe")
    return cv2.LUT(codes, lut)


def is_grey(ycrcb_grid: np.ndarray, rules: OutsideFaceRules) -> bool:
    """True when the image carries (almost) no colour: the chroma spread is below ``grey_chroma``
    (mean distance of Cr, Cb from neutral, and their standard deviations: one OpenCV pass each)."""
    g = np.ascontiguousarray(ycrcb_grid)
    offset = np.mean(cv2.mean(cv2.absdiff(g, np.full_like(g, 128)))[1:3])
    return bool(offset < rules.grey_chroma and cv2.meanStdDev(g)[1][1:].max() < rules.grey_chroma)
