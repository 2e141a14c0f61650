"""The artifact mask on controlled pairs (real photos, edits made here with known extent)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fifa.annotator.diffmask import DiffConfig, PairError, align_pair, artifact_mask
from fifa.annotator.profiles import change_profiles


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(b).convert("RGB"))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _disc(shape, cy, cx, r) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r * r


def _shift(img: np.ndarray, region: np.ndarray, rgb) -> np.ndarray:
    out = img.copy()
    out[region] = np.clip(out[region].astype(int) + np.asarray(rgb), 0, 255).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def face384(astronaut_rgb):
    crop = astronaut_rgb[20:260, 100:340]
    return cv2.resize(crop, (384, 384), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("q", [60, 75, 90, 95])
def test_recompressed_pair_gives_empty_mask(face384, q):
    res = artifact_mask(_jpeg(face384, q), face384)
    assert res.stats["mask_area"] == 0, res.stats


@pytest.mark.parametrize("factor,interp", [(0.5, cv2.INTER_LINEAR), (0.7, cv2.INTER_CUBIC), (0.9, cv2.INTER_LINEAR)])
def test_resized_and_back_pair_gives_empty_mask(face384, factor, interp):
    small = cv2.resize(face384, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    back = cv2.resize(small, (384, 384), interpolation=interp)
    res = artifact_mask(back, face384)
    assert res.stats["mask_area"] == 0, res.stats


def test_identical_pair_gives_empty_mask(face384):
    assert not artifact_mask(face384.copy(), face384).mask.any()


def test_small_edit_is_found_not_top5_percent(face384):
    edit = _disc(face384.shape, 200, 150, 14)  # ~0.4% of the image
    res = artifact_mask(_shift(face384, edit, [40, -25, -25]), face384)
    assert _iou(res.mask, edit) > 0.7
    assert res.mask.mean() < 0.02  # far below a fixed top-5% mask


def test_large_edit_grows_beyond_top_percent(face384):
    edit = np.zeros((384, 384), bool)
    edit[100:300, 80:300] = True  # ~30% of the image
    res = artifact_mask(_shift(face384, edit, [0, 0, 30]), face384)
    assert _iou(res.mask, edit) > 0.85


# --- subtle lossless edits: the pair's own noise is zero, so a few grey levels over a connected region show
@pytest.mark.parametrize("rgb", [[2, 2, 2], [-3, -3, -3], [3, 0, -3]])
def test_lossless_edit_of_a_few_grey_levels_is_found(face384, rgb):
    edit = _disc(face384.shape, 170, 220, 16)  # ~800 px
    res = artifact_mask(_shift(face384, edit, rgb), face384)
    assert _iou(res.mask, edit) > 0.6, res.stats
    assert res.stats["floor_max"] == pytest.approx(DiffConfig().noise_floor)  # measured noise: none


def test_lossless_light_blur_is_found(face384):
    box = (slice(130, 190), slice(120, 260))  # eyes: texture
    fake = face384.copy()
    fake[box] = cv2.GaussianBlur(face384, (0, 0), 0.8)[box]
    edit = np.zeros((384, 384), bool)
    edit[box] = True
    assert np.abs(fake.astype(int) - face384)[edit].mean() < 6  # a light blur
    res = artifact_mask(fake, face384)
    assert _iou(res.mask, edit) > 0.6, res.stats


def test_tint_of_a_greyscale_face_is_found(face384):
    grey = np.repeat(cv2.cvtColor(face384, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    edit = _disc(grey.shape, 250, 190, 25)
    res = artifact_mask(_shift(grey, edit, [3, 0, -2]), grey)
    assert _iou(res.mask, edit) > 0.6, res.stats


def test_iris_sized_recolour_of_a_small_face_in_a_large_frame_is_found(face384):
    frame = cv2.resize(face384, (640, 640), interpolation=cv2.INTER_CUBIC)
    edit = _disc(frame.shape, 300, 330, 4)  # ~50 px in 410k
    res = artifact_mask(_shift(frame, edit, [-6, 4, 12]), frame)
    assert (res.mask & edit).sum() > 0.8 * edit.sum(), res.stats
    assert res.mask.sum() < 12 * edit.sum()


def test_isolated_noise_pixels_never_form_regions(face384):
    rng = np.random.default_rng(0)
    fake = face384.copy()
    ys, xs = rng.integers(10, 374, 25), rng.integers(10, 374, 25)
    fake[ys, xs] = np.clip(fake[ys, xs].astype(int) + rng.choice([-40, 40], (25, 3)), 0, 255).astype(np.uint8)
    assert not artifact_mask(fake, face384).mask.any()


def test_floor_is_the_pairs_own_noise(face384):
    """The same clear edit is found in a lossless and in a JPEG pair; the floor rises with the JPEG."""
    edit = _disc(face384.shape, 200, 150, 20)
    fake = _shift(face384, edit, [0, 0, 25])
    lossless = artifact_mask(fake, face384)
    jpeg = artifact_mask(_jpeg(fake, 85), _jpeg(face384, 90))
    assert lossless.stats["floor_max"] == pytest.approx(DiffConfig().noise_floor)
    assert jpeg.stats["floor_min"] > 2 * DiffConfig().noise_floor
    assert _iou(lossless.mask, edit) > 0.7 and _iou(jpeg.mask, edit) > 0.6


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
    """Seeds are the strongest top_percent: a weaker edit apart from a strong one is grown only when
    it holds seeds of its own, i.e. with the default 5% but not with 0.01% (a handful of pixels)."""
    strong = np.zeros((384, 384), bool)
    strong[40:52, 40:52] = True
    weak = _disc(face384.shape, 250, 250, 12)
    fake = _shift(_shift(face384, strong, [40, 40, 40]), weak, [0, 0, 20])
    a = artifact_mask(fake, face384, DiffConfig(top_percent=5))
    b = artifact_mask(fake, face384, DiffConfig(top_percent=0.01))
    assert a.mask[strong].mean() > 0.9 and b.mask[strong].mean() > 0.9
    assert a.mask[weak].mean() > 0.9
    assert not b.mask[weak].any()


# --- change_profiles: what the pair shows in each region (the production path, by label ids)
def _labels(box) -> np.ndarray:
    lm = np.full((384, 384), -1, np.int16)
    lm[box] = 0
    lm[300:, :] = 1  # a region the edit does not touch
    return lm


def test_blur_edit_profile_is_lost_detail(face384):
    box = (slice(120, 200), slice(110, 270))
    fake = face384.copy()
    fake[box] = cv2.GaussianBlur(face384, (0, 0), 3)[box]
    res = artifact_mask(fake, face384)
    prof = change_profiles(res, _labels(box), {"box": [0], "both": [0, 1], "other": [1]})
    assert res.mask[box].mean() > 0.3
    assert prof["box"]["detail"] < -1 and prof["box"]["kind"] == "blur"
    assert prof["other"]["kind"] == "none"
    assert prof["both"]["detail"] == pytest.approx(prof["box"]["detail"])


def test_colour_edit_profile_is_colour(face384):
    box = (slice(150, 250), slice(150, 250))
    fake = face384.copy()
    fake[box] = np.clip(fake[box].astype(int) + [30, 0, -30], 0, 255).astype(np.uint8)
    res = artifact_mask(fake, face384)
    prof = change_profiles(res, _labels(box), {"box": [0]})["box"]
    assert prof["kind"] == "colour"
    assert prof["db"] > 0 and prof["da"] > 0  # more red, less blue: redder and yellower
    assert prof["delta_e"] > 5


def test_profiles_of_an_empty_mask_are_none(face384):
    res = artifact_mask(face384.copy(), face384)
    prof = change_profiles(res, _labels((slice(0, 10), slice(0, 10))), {"a": [0], "b": [1]})
    assert {p["kind"] for p in prof.values()} == {"none"}


def test_class_counting_equals_a_binary_search():
    """The texture classes of ``prepare_source`` (one comparison per edge) equal numpy's searchsorted,
    values equal to an edge (float32 against float64 edges) included."""
    from fifa.annotator.diffmask import _count_at_or_above

    rng = np.random.default_rng(0)
    for _ in range(300):
        v = rng.random((40, 50)).astype(np.float32)
        e = np.unique(np.quantile(v, rng.random(rng.integers(0, 7))))
        v.ravel()[: len(e)] = e
        assert np.array_equal(_count_at_or_above(v, e), np.searchsorted(e, v, side="right").astype(np.uint8))
