"""The artifact mask on controlled pairs (real photos, edits made here with known extent)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fifa.annotator.diffmask import DiffConfig, PairError, align_pair, artifact_mask, change_profile


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(b).convert("RGB"))


@pytest.fixture(scope="module")
def face384(astronaut_rgb):
    crop = astronaut_rgb[20:260, 100:340]
    return cv2.resize(crop, (384, 384), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("q", [60, 75, 90, 95])
def test_recompressed_pair_gives_empty_mask(face384, q):
    res = artifact_mask(_jpeg(face384, q), face384)
    assert res.stats["mask_area"] == 0, res.stats


def test_identical_pair_gives_empty_mask(face384):
    assert not artifact_mask(face384.copy(), face384).mask.any()


def test_small_edit_is_found_not_top5_percent(face384):
    fake = face384.copy()
    yy, xx = np.mgrid[:384, :384]
    edit = (yy - 200) ** 2 + (xx - 150) ** 2 < 14 ** 2  # ~0.4% of the image
    fake[edit] = np.clip(fake[edit].astype(int) + [40, -25, -25], 0, 255).astype(np.uint8)
    res = artifact_mask(fake, face384)
    inter = (res.mask & edit).sum()
    union = (res.mask | edit).sum()
    assert inter / union > 0.7
    assert res.mask.mean() < 0.02  # far below a fixed top-5% mask


def test_large_edit_grows_beyond_top_percent(face384):
    fake = face384.copy()
    edit = np.zeros((384, 384), bool)
    edit[100:300, 80:300] = True  # ~30% of the image
    fake[edit] = np.clip(fake[edit].astype(int) + [0, 0, 30], 0, 255).astype(np.uint8)
    res = artifact_mask(fake, face384)
    iou = (res.mask & edit).sum() / (res.mask | edit).sum()
    assert iou > 0.85


def test_blur_edit_profile_is_lost_detail(face384):
    fake = face384.copy()
    box = (slice(120, 200), slice(110, 270))
    fake[box] = cv2.GaussianBlur(face384, (0, 0), 3)[box]
    res = artifact_mask(fake, face384)
    region = np.zeros((384, 384), bool)
    region[box] = True
    prof = change_profile(res, res.mask & region)
    assert res.mask[box].mean() > 0.3
    assert prof["detail"] < 0


def test_colour_edit_profile_is_colour(face384):
    fake = face384.copy()
    box = (slice(150, 250), slice(150, 250))
    fake[box] = np.clip(fake[box].astype(int) + [30, 0, -30], 0, 255).astype(np.uint8)
    res = artifact_mask(fake, face384)
    region = np.zeros((384, 384), bool)
    region[box] = True
    prof = change_profile(res, res.mask & region)
    assert prof["kind"] == "colour"
    assert prof["db"] > 0 and prof["da"] > 0  # more red, less blue: redder and yellower


def test_resized_source_with_same_aspect_is_aligned(face384):
    src = cv2.resize(face384, (512, 512), interpolation=cv2.INTER_CUBIC)
    aligned = align_pair(face384, src)
    assert aligned.shape == face384.shape
    assert artifact_mask(face384, aligned).stats["mask_fraction"] < 0.01


def test_aspect_mismatch_is_refused(face384):
    with pytest.raises(PairError) as e:
        align_pair(face384, face384[:, :300])
    assert e.value.code == "aspect_mismatch"


def test_size_mismatch_without_alignment_is_refused(face384):
    with pytest.raises(PairError) as e:
        artifact_mask(face384, face384[:300, :300])
    assert e.value.code == "size_mismatch"


def test_top_percent_option_changes_seed(face384):
    fake = face384.copy()
    fake[50:60, 50:60] = 255
    a = artifact_mask(fake, face384, DiffConfig(top_percent=5))
    b = artifact_mask(fake, face384, DiffConfig(top_percent=0.01))
    assert a.mask[52:58, 52:58].all() and b.mask[52:58, 52:58].all()
