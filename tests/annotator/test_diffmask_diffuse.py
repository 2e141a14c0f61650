"""Diffuse, low-amplitude edits on JPEG pairs of real faces: the area-level test (annotator/diffarea.py).

Each case is checked against the per-pixel test alone (``PER_PIXEL``: the mask before the area
terms), so a test fails when the area-level test is removed or broken.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fifa.annotator.diffmask import DiffConfig, artifact_mask

PER_PIXEL = DiffConfig(area_sigma=0, area_chi_k=0, trim_ratio=0)


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(b).convert("RGB"))


def _disc(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _apply(img: np.ndarray, edited: np.ndarray, region: np.ndarray, mean_change: float) -> np.ndarray:
    """``edited`` inside ``region``, its change rescaled to ``mean_change`` grey levels on average."""
    d = edited.astype(np.float32) - img
    d *= mean_change / np.abs(d).mean(axis=2)[region].mean()
    out = img.astype(np.float32)
    out[region] += d[region]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def face384(astronaut_rgb):
    return cv2.resize(astronaut_rgb[20:260, 100:340], (384, 384), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def lfw200():
    return _lfw(3)


def _lfw(i: int) -> np.ndarray:
    import skimage.data

    g = np.round(skimage.data.lfw_subset()[i] * 255).astype(np.uint8)
    g = cv2.resize(g, (200, 200), interpolation=cv2.INTER_LANCZOS4)
    return np.repeat(g[:, :, None], 3, axis=2)


@pytest.mark.parametrize("qs,qf", [(85, 80), (90, 75)])
def test_relit_forehead_of_a_jpeg_pair_is_found(face384, qs, qf):
    """A gamma change of 3 grey levels on average over a forehead-sized disc (~5000 px), both sides
    JPEG: under the per-pixel floor everywhere, consistent in sign over the area."""
    region = _disc(face384.shape, 90, 200, 40)
    fake = _apply(face384, 255.0 * (face384 / 255.0) ** 0.9, region, 3.0)
    src, fk = _jpeg(face384, qs), _jpeg(fake, qf)
    assert not artifact_mask(fk, src, PER_PIXEL).mask.any()
    res = artifact_mask(fk, src)
    assert _iou(res.mask, region) >= 0.45, res.stats
    assert (res.mask & ~region).sum() < 0.1 * region.sum(), res.stats  # found where it is, not around


def test_skin_smoothed_forehead_of_a_jpeg_pair_gets_its_extent():
    """Smoothing (zero-mean: only the difference energy rises) of 2.5 grey levels on a real grey face,
    JPEG q 90 / q 75: the per-pixel test finds only the strongest part of it."""
    face = _lfw(40)
    region = _disc(face.shape, 45, 100, 22)
    fake = _apply(face, cv2.GaussianBlur(face.astype(np.float32), (0, 0), 3.0), region, 2.5)
    src, fk = _jpeg(face, 90), _jpeg(fake, 75)
    before, after = _iou(artifact_mask(fk, src, PER_PIXEL).mask, region), _iou(artifact_mask(fk, src).mask, region)
    assert before < 0.42 and after >= 0.48 and after - before >= 0.08, (before, after)


@pytest.mark.parametrize("q", [(85, 80), (95, 70), (70, 90), (80, 80)])
def test_reencoded_pristine_jpeg_pairs_stay_empty(face384, lfw200, q):
    for img in (face384, lfw200):
        res = artifact_mask(_jpeg(img, q[1]), _jpeg(img, q[0]))
        assert res.stats["mask_area"] == 0, res.stats


def test_dark_flat_and_edge_areas_do_not_fool_the_signed_test(face384):
    """Resampled and back, a frame with a pasted face (a long hard edge), dark flat areas and the
    image border: the window means there are not zero-mean, yet nothing is found."""
    import skimage.data

    frame = skimage.data.coffee().copy()
    frame[200:350, 420:570] = cv2.resize(face384, (150, 150), interpolation=cv2.INTER_AREA)
    for f in (0.56, 0.75):
        h, w = frame.shape[:2]
        back = cv2.resize(
            cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_LINEAR),
            (w, h),
            interpolation=cv2.INTER_LANCZOS4,
        )
        assert artifact_mask(back, frame).stats["mask_area"] == 0
    for q in (80, 88):
        assert artifact_mask(_jpeg(frame, q), frame).stats["mask_area"] == 0


def test_recoloured_iris_of_a_small_face_is_cut_to_its_core(lfw200):
    """An iris-sized recolour (adds colour to a grey face) on a JPEG pair: JPEG's half-resolution
    chroma spreads it; the mask is trimmed back to the recoloured core."""
    region = _disc(lfw200.shape, 88, 70, 5)
    hsv = cv2.cvtColor(lfw200, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hsv[..., 0] = 100.0
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.3 + 40, 0, 255)
    fake = _apply(lfw200, cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL), region, 9.0)
    src, fk = _jpeg(lfw200, 90), _jpeg(fake, 85)
    before, after = artifact_mask(fk, src, PER_PIXEL).mask, artifact_mask(fk, src).mask
    assert after.any() and after.sum() < 0.6 * before.sum()
    assert _iou(before, region) < 0.6 <= _iou(after, region)
