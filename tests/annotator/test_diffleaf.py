"""The region-level test and region snapping of the artifact mask (annotator/diffleaf.py).

Real faces segmented by the real segmenter, JPEG pairs as the annotator gets them; each case is checked
against the code without the source's segmentation (``WITHOUT``: ``prepare_source`` without regions, the
mask before diffleaf), so a test fails when the region-level test or the snapping is removed or broken.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from fifa.annotator.diffleaf import leaf_means, leaf_significance, prepare_leaves, snap_to_leaves
from fifa.annotator.diffmask import DiffConfig, artifact_mask, prepare_source


def _jpeg(a: np.ndarray, q: int) -> np.ndarray:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "JPEG", quality=q)
    return np.asarray(Image.open(b).convert("RGB"))


def _lfw(i: int, side: int = 200) -> np.ndarray:
    import skimage.data

    g = np.round(skimage.data.lfw_subset()[i] * 255).astype(np.uint8)
    g = cv2.resize(g, (side, side), interpolation=cv2.INTER_LANCZOS4)
    return np.repeat(g[:, :, None], 3, axis=2)


def _recolour(img: np.ndarray, region: np.ndarray, change: float) -> np.ndarray:
    """An iris recolour (hue turned, saturation raised: colour on a grey face), rescaled to ``change`` grey
    levels on average over ``region`` and applied there only."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + 40 * 256 / 360) % 256
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.3 + 35, 0, 255)
    d = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).astype(np.float32) - img
    d *= change / np.abs(d).mean(axis=2)[region].mean()
    out = img.astype(np.float32)
    out[region] += d[region]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def segmenter():
    from fifa.concept_tree.segmentation.segment import Segmenter

    with Segmenter() as seg:
        yield seg


def _masks(fake: np.ndarray, src: np.ndarray, regions) -> tuple[np.ndarray, np.ndarray]:
    """(without the segmentation, with it): the two artifact masks of a pair."""
    cfg = DiffConfig()
    return artifact_mask(fake, src, cfg).mask, artifact_mask(fake, src, cfg, prepare_source(src, cfg, regions)).mask


@pytest.mark.parametrize(
    "face,iris,q", [(20, "right_iris", (90, 75)), (12, "right_iris", (85, 80)), (5, "left_iris", (85, 80))]
)
def test_recoloured_iris_of_a_jpeg_pair_is_cut_to_the_iris(segmenter, face, iris, q):
    """A recoloured iris (6 grey levels) of a real 200 px face, both sides JPEG: JPEG's half-resolution chroma
    spreads it over its rim and pupil; snapped to the segmented leaves changed over their whole area, the
    mask's IoU with the iris rises above 0.6."""
    img = _lfw(face)
    src = _jpeg(img, q[0])
    regions = segmenter.segment(src)
    region = regions.mask(iris)
    before, after = _masks(_jpeg(_recolour(img, region, 6.0), q[1]), src, regions)
    assert _iou(before, region) < 0.6 <= _iou(after, region), (_iou(before, region), _iou(after, region))
    assert after.sum() < before.sum()


@pytest.mark.parametrize("face,iris", [(12, "right_iris"), (5, "left_iris")])
def test_faint_iris_recolour_is_found_by_the_region_level_test(segmenter, face, iris):
    """2.5 grey levels over a 70-85 px iris, JPEG q 85 / q 80: under the per-pixel and the window tests'
    noise (nothing found without the segmentation); the iris's mean change stands out of the boxes of its
    area placed all over the pair."""
    img = _lfw(face)
    src = _jpeg(img, 85)
    regions = segmenter.segment(src)
    region = regions.mask(iris)
    before, after = _masks(_jpeg(_recolour(img, region, 2.5), 80), src, regions)
    assert not before.any()
    assert _iou(after, region) >= 0.6, _iou(after, region)


def test_reencoded_pairs_of_segmented_faces_stay_empty(segmenter, astronaut_rgb):
    """JPEG pairs, WebP and a resize and back of real faces, compared with their segmented source: no leaf
    stands out (the region-level noise is the pair's own)."""
    face384 = cv2.resize(astronaut_rgb[20:260, 100:340], (384, 384), interpolation=cv2.INTER_AREA)
    for img in (_lfw(3), _lfw(40), face384):
        for qs, qf in ((85, 80), (95, 70), (70, 90)):
            src = _jpeg(img, qs)
            cfg = DiffConfig()
            res = artifact_mask(_jpeg(img, qf), src, cfg, prepare_source(src, cfg, segmenter.segment(src)))
            assert res.stats["mask_area"] == 0, (qs, qf, res.stats)
        prepared = prepare_source(img, DiffConfig(), segmenter.segment(img))
        b = io.BytesIO()
        Image.fromarray(img).save(b, "WEBP", quality=80)
        webp = np.asarray(Image.open(b).convert("RGB"))
        h, w = img.shape[:2]
        small = cv2.resize(img, (round(w * 0.7), round(h * 0.7)), interpolation=cv2.INTER_LINEAR)
        back = cv2.resize(small, (w, h), interpolation=cv2.INTER_LANCZOS4)
        for other in (webp, back):
            assert artifact_mask(other, img, DiffConfig(), prepared).stats["mask_area"] == 0


def _leaves(label_map: np.ndarray, min_area: float = 12, max_area: float = 5000) -> dict:
    classes = np.zeros(label_map.shape, np.uint8)
    n = int(label_map.max()) + 1
    return prepare_leaves(label_map, np.ones(n, bool), classes, min_area, max_area, 2)


def test_leaf_significance_is_measured_against_the_pairs_own_noise():
    """Noise of 1 unit per channel: a 64 px leaf shifted by 0.9 in b stands out (9 robust deviations of
    a 64 px mean); without the shift, or with noise four times stronger, it does not."""
    rng = np.random.default_rng(0)
    label = np.zeros((160, 160), np.int16)
    label[60:68, 70:78] = 1  # a 64 px leaf
    leaves = _leaves(label)

    def sig(shift: float, noise: float) -> float:
        delta = tuple(rng.normal(0, noise, label.shape).astype(np.float32) for _ in range(3))
        delta[2][label == 1] += shift
        return float(leaf_significance(delta, leaf_means(delta, leaves), leaves, 6.0, 0.05)[2])

    assert sig(0.9, 1.0) >= 1.0
    assert sig(0.0, 1.0) < 1.0
    assert sig(0.9, 4.0) < 1.0


def test_snapping_cuts_a_recolour_to_the_leaves_changed_over_their_area():
    """A recoloured 'iris' leaf and the rim of its two neighbours in one component: the neighbours' change
    averaged over their whole area is weak, so their part is cut; a lightness change is left as it is."""
    label = np.zeros((100, 100), np.int16)
    label[:, 50:] = 1
    label[40:60, 40:60] = 2  # the 'iris'
    leaves = _leaves(label)
    comp = np.zeros(label.shape, bool)
    comp[37:63, 37:63] = True  # the iris and a 3 px rim in leaves 0 and 1
    delta = [np.zeros(label.shape, np.float32) for _ in range(3)]
    delta[1][comp] = 2.0  # the rim changed as much as the iris (JPEG chroma), but the rest of its leaves not
    delta[1][label == 2] = 5.0
    means = leaf_means(tuple(delta), leaves)
    snapped = snap_to_leaves(comp, means, leaves, tuple(delta), 5000, 0.5)
    assert (snapped == (label == 2)).all()
    lightness = (delta[1], delta[0], delta[2])  # the same change in L: not a recolour
    assert (snap_to_leaves(comp, leaf_means(lightness, leaves), leaves, lightness, 5000, 0.5) == comp).all()
