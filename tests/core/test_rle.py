"""RLE helpers: one-pass label-map encoding and validation of RLE from outside."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fifa.core import rle


@pytest.mark.parametrize("seed", range(8))
def test_label_map_encoding_matches_per_mask_pycocotools(seed):
    rs = np.random.RandomState(seed)
    h, w = rs.randint(1, 60, 2)
    labels = rs.randint(-1, 6, (h, w)).astype(np.int16)
    if seed % 2:
        labels = np.repeat(np.repeat(labels[::4, ::4], 4, 0), 4, 1)[:h, :w]
    enc = rle.encode_label_map(labels)
    assert set(enc) == set(np.unique(labels).tolist())
    for k, r in enc.items():
        ref = mask_utils.encode(np.asfortranarray((labels == k).astype(np.uint8)))
        assert r["counts"] == ref["counts"].decode()
        assert r["size"] == [int(h), int(w)]


def test_label_map_requested_ids_get_empty_masks():
    enc = rle.encode_label_map(np.zeros((4, 5), np.int16), ids=[0, 3])
    assert rle.area(enc[0]) == 20 and rle.area(enc[3]) == 0


def test_merge_iou_and_empty():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    b = np.zeros((10, 10), bool)
    b[3:8] = True
    ra, rb = rle.encode(a), rle.encode(b)
    assert rle.area(rle.merge([ra, rb])) == 80
    assert rle.area(rle.merge([ra, rb], intersect=True)) == 20
    assert rle.iou(ra, rb) == pytest.approx(20 / 80)
    e = rle.empty(10, 10)
    assert rle.iou(e, e) == 1.0
    assert rle.area(rle.merge([], size=(3, 4))) == 0


@pytest.mark.parametrize(
    "counts,reason",
    [
        ("0", "sum"),
        ("", "sum"),
        ("!!", "invalid character"),
        ("PPYo1", "sum"),
        ("1\x7f", "invalid character"),
        ("1`", "ends inside"),
        ("1O", "negative"),
    ],
)
def test_invalid_counts_strings_are_refused(counts, reason):
    with pytest.raises(rle.InvalidRLE) as e:
        rle.check_rle({"size": [10, 10], "counts": counts})
    assert reason in str(e.value)


def test_check_rle_accepts_valid_and_uncompressed():
    m = np.zeros((6, 7), bool)
    m[2:4, 1:5] = True
    r = rle.encode(m)
    assert rle.check_rle(r) == r
    unc = rle.check_rle({"size": [2, 2], "counts": [1, 2, 1]})
    assert rle.decode(unc).sum() == 2
    with pytest.raises(rle.InvalidRLE):
        rle.check_rle({"size": [2, 2], "counts": [1, -2, 3]})
    with pytest.raises(rle.InvalidRLE):
        rle.check_rle(r, expect_size=[7, 6])
    with pytest.raises(rle.InvalidRLE):
        rle.check_rle({"size": "big", "counts": "1"})
