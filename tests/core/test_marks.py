"""The grounded-mark grammar (fifa.core.marks): our marks, plain and GLaMM renderings, the scorer's reading."""

from __future__ import annotations

import random

import pytest

from fifa.core import marks

#: phrases already in canonical form (what :func:`marks.mark` writes): they come back unchanged
CANONICAL = [
    "left iris",
    "the (odd) phrase",
    "ΔE 12 naïve Ünïcode — 眼睛",
    "a.b, c; d!",
    "x",
    "(",
    ")",
    "phrase)(with parens",
    "tab\tinside",
    "emoji 🙂 and \u2028 a separator",
    "ids(look)like(this)",
]
#: tricky phrases and the phrase a mark of them holds
TRICKY = [
    ("the [odd] phrase", "the (odd) phrase"),
    ("[", "("),
    ("]]", "))"),
    ("  padded  ", "padded"),
    ("two\nlines", "two lines"),
    ("crlf\r\n line", "crlf line"),
    ("a [b](nose) c", "a (b)(nose) c"),
    ("[x](mouth)", "(x)(mouth)"),
]
IDS = ["nose", "left_iris", "artifact", "a1_b2"]


def _text(pairs, rng):
    glue = ["The ", " and ", " (ΔE 12) ", " [not a mark] ", "; ", "\n", " () ", " ]( "]
    return "".join(rng.choice(glue) + marks.mark(p, n) for n, p in pairs) + rng.choice(glue)


@pytest.mark.parametrize("seed", range(20))
def test_parse_of_rendered_marks_is_the_marks(seed):
    rng = random.Random(seed)
    pairs = [(rng.choice(IDS), rng.choice(CANONICAL)) for _ in range(rng.randint(0, 5))]
    text = _text(pairs, rng)
    assert marks.parse(text) == pairs
    assert marks.marked_ids(text) == [n for n, _ in pairs]
    assert [(m.node_id, m.phrase) for m in marks.find(text)] == pairs
    assert all(text[m.start : m.end] == marks.mark(m.phrase, m.node_id) for m in marks.find(text))
    assert marks.has_mark(text) == bool(pairs) == marks.has_markup(text)


@pytest.mark.parametrize("phrase, held", TRICKY)
def test_mark_of_a_tricky_phrase_parses_back_to_its_canonical_form(phrase, held):
    text = f"see {marks.mark(phrase, 'nose')} here"
    assert marks.parse(text) == [("nose", held)]
    assert marks.strip(text) == f"see {held} here"
    assert marks.parse(marks.mark(held, "nose")) == [("nose", held)]


def test_renderings():
    text = "The [left iris](left_iris) is blurred, and [the upper lip](upper_lip) is redder (ΔE 12)."
    assert marks.parse(text) == [("left_iris", "left iris"), ("upper_lip", "the upper lip")]
    assert marks.strip(text) == "The left iris is blurred, and the upper lip is redder (ΔE 12)."
    assert marks.render_glamm(text) == (
        "The <p>left iris</p> [SEG] is blurred, and <p>the upper lip</p> [SEG] is redder (ΔE 12)."
    )
    assert marks.strip(None) == marks.render_glamm(None) == "" and marks.parse(None) == []


def test_what_is_not_a_mark():
    for text in ["[a](Nose)", "[a](1nose)", "[a](no-se)", "[](nose)", "[a\nb](nose)", "[a] (nose)", "[[a]](nose)"]:
        assert marks.parse(text) == [], text
        assert marks.strip(text) == text
    assert marks.parse("[[a](nose)]") == [("nose", "a")]


def test_clean_model_text_leaves_no_mark_even_when_joined():
    cleaned = [marks.clean_model_text(t) for t in ["[a](nose) and [", "](mouth) b", "x [y] z"]]
    assert cleaned == ["a and (", ")(mouth) b", "x (y) z"]
    assert marks.parse("".join(cleaned)) == [] and "[" not in "".join(cleaned)


def test_has_markup():
    assert marks.has_markup("the <p>eye</p> [SEG]") and marks.has_markup("the [eye](left_eye)")
    assert not marks.has_markup("the eye [seg] <p>") and not marks.has_markup(None)


@pytest.mark.parametrize("seed", range(10))
def test_scorer_reads_our_marks_and_glamm_renderings(seed):
    rng = random.Random(seed)
    pairs = [(rng.choice(IDS), rng.choice(CANONICAL)) for _ in range(rng.randint(1, 4))]
    text = "".join(f"Then {marks.mark(p, n)} " for n, p in pairs) + "end."
    assert marks.parse_submitted(text) == [(p, n) for n, p in pairs]
    assert marks.parse_submitted(marks.render_glamm(text)) == [(p, None) for _, p in pairs]
    assert marks.strip_submitted(text) == marks.strip(text) == marks.strip_submitted(marks.render_glamm(text))


def test_scorer_reading_is_looser_than_ours():
    answer = "The <P>left\neye</P>\n[seg] and [the mouth](Mouth-2:a.b) and <p>nose</p>[SEG] and [x](nose)."
    assert marks.parse_submitted(answer) == [
        ("left\neye", None),
        ("the mouth", "Mouth-2:a.b"),
        ("nose", None),
        ("x", "nose"),
    ]
    assert marks.parse(answer) == [("nose", "x")]  # our grammar: lower-case ids, no markup of GLaMM
    assert marks.strip_submitted(answer) == "The left\neye \n and the mouth and nose and x."
    assert marks.strip_submitted("a <p>b</p>  [SEG]\t\tc") == "a b c"
    assert marks.parse_submitted("<p>unclosed [SEG] and [no id]()") == [] == marks.parse_submitted(None)


def test_generated_text_keeps_or_drops_its_marks():
    from fifa.core.marks import parse_submitted, plain_generated, tidy_generated

    raw = "In<p> the left eye </p>[SEG] ,  most of it\n is blurred .<p>nose</p>   [SEG]"
    assert tidy_generated(raw) == "In <p>the left eye</p> [SEG], most of it is blurred. <p>nose</p> [SEG]"
    assert parse_submitted(tidy_generated(raw)) == [("the left eye", None), ("nose", None)]
    assert plain_generated(raw) == "In the left eye, most of it is blurred.nose"
