"""The faster ROUGE-L / CIDEr-D against pycocoevalcap's own Rouge / Cider (and LCS) on random corpora."""

from __future__ import annotations

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge, my_lcs

from fifa.benchmarks.fastcoco import cider_d, lcs_length, rouge_l

VOCAB = ["a", "b", "c", "d", "e", "f", "the", "eye", "left", "mouth", "blurred"]


def _sent(rng, hi=25):
    return " ".join(rng.choice(VOCAB, size=int(rng.integers(0, hi))))


def test_lcs_against_pycocoevalcap():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        a = list(rng.choice(VOCAB[:4], size=int(rng.integers(0, 30))))
        b = list(rng.choice(VOCAB[:4], size=int(rng.integers(0, 30))))
        assert lcs_length(a, b) == my_lcs(a, b)


@pytest.mark.parametrize("n", [1, 2, 9, 150, 1500])
def test_rouge_and_cider_equal_pycocoevalcap(n):
    rng = np.random.default_rng(n)
    refs = [_sent(rng) for _ in range(n)]
    hyps = [_sent(rng) for _ in range(n)]
    if n > 2:
        refs[0], hyps[1], hyps[2] = "", "", refs[2]  # empty sides and an exact copy
    gts = {k: [r] for k, r in enumerate(refs)}
    res = {k: [h] for k, h in enumerate(hyps)}
    r_mean, r_per = Rouge().compute_score(gts, res)
    c_mean, c_per = Cider().compute_score(gts, res)
    m, per = rouge_l(refs, hyps)
    assert m == pytest.approx(r_mean, abs=1e-12)
    np.testing.assert_allclose(per, r_per, rtol=0, atol=1e-12)
    m, per = cider_d(refs, hyps)
    assert m == pytest.approx(c_mean, abs=1e-12)
    np.testing.assert_allclose(per, c_per, rtol=0, atol=1e-12)
