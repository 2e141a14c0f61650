"""Colour models of one image: a robust Gaussian of YCrCb samples, the face's own skin colour, and
the colour tests of the off-face pass on its grid (:func:`colour_evidence`).

Used by :mod:`.offface` to tell skin from cloth and hair (thresholds in its ``OutsideFaceRules``).
Everything here works on small arrays without BLAS calls (a worker process runs it per image).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import gridmasks as gm

if TYPE_CHECKING:
    from .offface import FaceFrame, OutsideFaceRules


@dataclass(frozen=True)
class ColourModel:
    """A Gaussian colour model (``dims`` of YCrCb) fitted robustly to sample pixels."""

    mean: np.ndarray
    inv_cov: np.ndarray
    luma: float  # median Y of the sample
    cov: np.ndarray | None = None

    def chroma(self) -> ColourModel:
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


def skin_model(
    rgb: np.ndarray,
    face_labels: np.ndarray,
    leaf_ids: tuple[str, ...],
    rules: OutsideFaceRules,
    max_samples: int = 2000,
    box: tuple[int, int, int, int] | None = None,
) -> ColourModel | None:
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


def face_skin(rgb, landmarks, grid, face_labels, leaf_ids, rules: OutsideFaceRules) -> ColourModel | None:
    """The face's own skin colour (sampled inside the landmarks' box); None for a grey image."""
    h, w = rgb.shape[:2]
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    box = (
        int(max(0, pts[:, 0].min())),
        int(max(0, pts[:, 1].min())),
        int(min(w, pts[:, 0].max() + 1)),
        int(min(h, pts[:, 1].max() + 1)),
    )
    return None if is_grey(grid, rules) else skin_model(rgb, face_labels, leaf_ids, rules, box=box)


@dataclass
class Evidence:
    """The colour tests of one image on the grid. ``at``: flat indices of the cells tested (the
    person and a margin around it), ``col`` their YCrCb colours; ``skin_near``: skin-coloured cells
    there, ``is_skin``: those inside the person; ``cell``: IOD per cell; ``r_smooth``: in cells."""

    pgrid: np.ndarray
    near: np.ndarray
    at: np.ndarray
    col: np.ndarray
    hair_model: ColourModel | None
    skin_near: np.ndarray
    is_skin: np.ndarray
    cell: float
    r_smooth: int


def colour_evidence(
    fr: FaceFrame, grid: np.ndarray, person: np.ndarray, skin: ColourModel, rules: OutsideFaceRules
) -> Evidence:
    """The colour tests of the off-face pass: which cells around the person are skin (near the
    face's own skin colour, and nearer it than the hair's), and the hair's colour model."""
    pgrid = gm.to_grid(np.asarray(person, dtype=np.float32), fr.step, fr.shape) >= rules.person_threshold
    pgrid &= ~fr.face
    v = fr.v
    cell = fr.step / fr.iod  # IOD per cell
    # colour tests only where the person is (flat indices of those cells)
    # the person map is coarse (256 x 144): ears beside the face are often cut off, so colour is
    # also tested a little beyond it (ears only)
    near = gm.dilate(pgrid, max(1, int(round(0.1 / cell)))) & ~fr.face
    at = np.flatnonzero(near)
    col = grid.reshape(-1, 3)[at].astype(np.float32)
    vp = v.ravel()[at]
    d_skin = skin.distance(col[:, 1:])
    luma_ok = (col[:, 0] >= rules.skin_min_luma * skin.luma) & (col[:, 0] <= rules.skin_max_luma * skin.luma + 10)
    # hair colour: person pixels above and beside the upper face, the least skin-like of them
    hair_zone = pgrid.ravel()[at] & (
        (vp < fr.v_top + 0.15) | ((vp < rules.ear_top_v) & (fr.lateral.ravel()[at] > 0.35))
    )
    hair_sample = hair_zone & (d_skin > 1.5)
    hair_model = (
        fit_colour(col[hair_sample], rules.skin_chroma_floor, dims=(0, 1, 2)) if hair_sample.sum() > 20 else None
    )
    hair_chroma = hair_model.chroma() if hair_model is not None else None
    if hair_chroma is not None and skin.distance(hair_chroma.mean) < 1.5:
        hair_chroma = None  # hair (or what covers the head) has the skin's colour: no hair evidence
    skin_p = luma_ok & (d_skin < rules.skin_distance)
    if hair_chroma is not None:  # nearer the face's skin than the hair's colour
        skin_p &= d_skin < hair_chroma.distance(col[:, 1:])
    skin_near = gm.scatter(skin_p, at, fr.shape)
    return Evidence(
        pgrid, near, at, col, hair_model, skin_near, skin_near & pgrid, cell, max(1, int(round(0.04 / cell)))
    )
