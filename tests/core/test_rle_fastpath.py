"""check_rle's numpy fast path agrees with the pure-Python counts parser (the reference) on valid and corrupt input."""

from __future__ import annotations

import numpy as np
import pytest

from fifa.core.rle import InvalidRLE, encode, parse_counts, runs_ok
from fifa.core.rle import check_rle as check


def _ref_ok(counts, h, w):
    """The reference: the pure-Python parser, which check_rle falls back to."""
    try:
        runs = parse_counts(counts)
    except InvalidRLE:
        return False
    return sum(runs) == h * w


def test_agrees_with_check_rle_on_random_strings():
    rng = np.random.default_rng(0)
    h, w = 13, 17
    strings = []
    for _ in range(300):
        m = rng.random((h, w)) < rng.random()
        if rng.random() < 0.5:
            m = np.zeros((h, w), bool)
            m[rng.integers(0, h) :, rng.integers(0, w) :] = True
        c = encode(m)["counts"]
        strings.append(c)
        chars = list(c)
        k = int(rng.integers(0, len(chars)))
        chars[k] = chr(int(rng.integers(33, 127)))  # one corrupted character
        strings.append("".join(chars))
        strings.append(c[: int(rng.integers(0, len(c)))])  # truncated
        strings.append(c + chr(int(rng.integers(48, 112))))  # one value too many
    strings += ["".join(chr(int(x)) for x in rng.integers(40, 120, int(rng.integers(1, 12)))) for _ in range(500)]
    strings += ["0", "", "0O0O", "PPPPPPPPPPPPPP", "]]]]", "\x7f", "\u00ff"]
    for s in strings:
        ref = _ref_ok(s, h, w)
        assert runs_ok(s, h * w) <= ref, s  # the fast path never accepts what the reference refuses
        try:
            out = check({"size": [h, w], "counts": s})
            assert ref and out == {"size": [h, w], "counts": s}, s
        except InvalidRLE:
            assert not ref, s


def test_fast_path_taken_for_real_masks_and_size_check():
    yy, xx = np.mgrid[:256, :256]
    r = encode(((yy - 100) / 60.0) ** 2 + ((xx - 120) / 40.0) ** 2 < 1)
    assert runs_ok(r["counts"], 256 * 256)
    assert check(r, expect_size=[256, 256]) == r
    with pytest.raises(InvalidRLE, match="differs from image size"):
        check(r, expect_size=[128, 256])
    assert check({"size": [2, 2], "counts": [1, 2, 1]})["size"] == [2, 2]  # uncompressed: the reference path


def test_every_accepted_rle_decodes_in_pycocotools_to_the_parsed_runs():
    """What check_rle accepts, pycocotools decodes to exactly the runs the counts spell (column-major,
    starting with background), and real masks round-trip bit for bit."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(1)
    h, w = 11, 19
    accepted = 0
    for k in range(400):
        m = rng.random((h, w)) < rng.random()
        if k % 3 == 0:  # blobs, not only noise
            m = np.zeros((h, w), bool)
            m[rng.integers(0, h) : rng.integers(0, h) + 3, rng.integers(0, w) :] = True
        r = encode(m)
        assert np.array_equal(mask_utils.decode({"size": [h, w], "counts": r["counts"].encode()}), m)
        chars = list(r["counts"])
        chars[int(rng.integers(0, len(chars)))] = chr(int(rng.integers(48, 112)))
        for s in (r["counts"], "".join(chars)):
            try:
                check({"size": [h, w], "counts": s})
            except InvalidRLE:
                continue
            accepted += 1
            runs = parse_counts(s)
            expected = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8).reshape(w, h).T
            got = mask_utils.decode({"size": [h, w], "counts": s.encode()})
            assert np.array_equal(got, expected), s
    assert accepted > 400  # the originals plus corrupted strings that stay valid
