"""One answer must never shift the scores of the others: separators folded, markup removed, lines checked."""

from __future__ import annotations

import shutil

import pytest

from fifa.benchmarks import metrics_text
from fifa.benchmarks.metrics_text import fold_lines, tokenize
from fifa.core.marks import strip_submitted

JAVA = shutil.which("java") is not None
SEPARATORS = ["\r", "\n", "\r\n", "\u2028", "\u2029", "\x0b", "\x0c", "\x85"]


@pytest.mark.parametrize("use_java", [pytest.param(True, marks=pytest.mark.skipif(not JAVA, reason="no java")), False])
def test_every_line_separator_keeps_one_line_per_answer(use_java):
    # The case: Java breaks lines on \r (and the others), so "a dog\rran away" used to become
    # two lines and "third" was scored against the fourth reference.
    sents = ["the cat sat on the mat."] + [f"a dog{sep}ran away" for sep in SEPARATORS] + ["third", "fourth", ""]
    toks = tokenize(sents, use_java)
    assert toks[0] == "the cat sat on the mat"
    assert toks[1 : 1 + len(SEPARATORS)] == ["a dog ran away"] * len(SEPARATORS)
    assert toks[-3:] == ["third", "fourth", ""]


@pytest.mark.skipif(not JAVA, reason="no java")
def test_empty_and_blank_answers_stay_in_place():
    assert tokenize(["", "x", "  ", "y", ""], True) == ["", "x", "", "y", ""]


@pytest.mark.skipif(not JAVA, reason="no java")
def test_misaligned_tokenizer_output_is_refused(monkeypatch):
    real_fold = metrics_text.fold_lines
    # simulate an unfolded separator reaching Java: the guard must refuse rather than shift
    monkeypatch.setattr(metrics_text, "fold_lines", lambda s: s)
    with pytest.raises(RuntimeError, match="misaligned"):
        metrics_text._ptb_java(["a\rb", "c"])
    monkeypatch.setattr(metrics_text, "fold_lines", real_fold)
    assert metrics_text._ptb_java(["a\rb", "c"]) == ["a b", "c"]


def test_fold_lines():
    assert fold_lines("a\r\nb\u2028c\x85d") == "a  b c d"


@pytest.mark.parametrize(
    "answer, plain",
    [
        ("The <p>left eye</p> [SEG] is blurred.", "The left eye is blurred."),
        ("The <p> left eye </p> [SEG] and <P>mouth</P> [seg].", "The left eye and mouth ."),
        ("The [left eye](left_eye) is blurred; see [artifacts](artifact).", "The left eye is blurred; see artifacts."),
        ("Nothing to strip [here] (really).", "Nothing to strip [here] (really)."),
    ],
)
def test_strip_submitted(answer, plain):
    assert strip_submitted(answer) == plain


def test_grounded_answers_score_like_plain_ones(tmp_path):
    """A model answering in GLaMM style is not penalised: same text scores as the plain answer."""
    import pandas as pd

    from fifa.benchmarks.scoring import score

    refs = [
        "the left eye is blurred and the mouth has a colour shift",
        "no manipulation artifacts the face is authentic",
        "the nose shows a warp near its bridge",
    ]
    bench = pd.DataFrame(
        {"question_id": ["a", "b", "c"], "task": ["toe"] * 3, "answer": refs, "label": ["fake", "real", "fake"]}
    )
    glamm = [
        "the <p>left eye</p> [SEG] is blurred and the [mouth](mouth) has a colour shift",
        "no manipulation artifacts\r the face is authentic",
        "the <p>nose</p> [SEG] shows a warp near its bridge",
    ]
    plain = pd.DataFrame({"question_id": ["a", "b", "c"], "answer": refs})
    grounded = pd.DataFrame({"question_id": ["a", "b", "c"], "answer": glamm})
    r_plain = score(bench, plain, bootstrap=0, meteor=False).to_dict()["toe"]
    r_grounded = score(bench, grounded, bootstrap=0, meteor=False).to_dict()["toe"]
    assert r_grounded == r_plain
    assert r_plain["bleu_4"] == pytest.approx(1.0)
