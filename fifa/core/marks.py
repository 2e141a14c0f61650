"""Grounded marks: the one grammar of grounded text (DESIGN.md "Grounded text", "Submission", grounding metrics).

Data shapes:

* **marked text** (``str``), our form: every grounded phrase is written ``[phrase](node_id)``; ``node_id`` is a
  FICT id or ``artifact`` (``[a-z][a-z0-9_]*``), the phrase holds no bracket and no line break. The k-th mark
  of a text goes with the k-th mask of its row.
* :class:`Mark`: one mark found in a text: ``phrase``, ``node_id`` and its span ``text[start:end]``.
* **GLaMM / LISA form**: every marked phrase rendered ``<p>phrase</p> [SEG]``.
* **plain text**: the marks replaced by their phrases.
* **generated text** (a GLaMM-style model's decoded tokens, written by the predictor): GLaMM markup with the
  spacing a tokenizer leaves; :func:`tidy_generated` keeps its marks spaced ``<p>phrase</p> [SEG]``,
  :func:`plain_generated` drops them (``<p>``, ``</p>``, ``[SEG]``).
* **submitted answer** (a model's output, read by the scorer): the looser reading of both forms. GLaMM's
  ``<p>phrase</p> [SEG]`` in any letter case with any white space before ``[SEG]``, and ``[phrase](id)`` with
  an id of ``[A-Za-z0-9_:.-]+`` and a phrase that may span lines (:func:`parse_submitted`,
  :func:`strip_submitted`).

Pure functions over strings. :data:`MARK_PATTERN` is written so that Python's ``re`` and polars (Rust regex)
read it alike (group 1 the phrase, group 2 the node id); :data:`PHRASE_REPLACEMENT` is polars' replacement
that keeps the phrase.
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: one mark of our form: group 1 the phrase, group 2 the node id (Python ``re`` and Rust regex syntax alike)
MARK_PATTERN = r"\[([^\[\]\n]+?)\]\(([a-z][a-z0-9_]*)\)"
MARK_RE = re.compile(MARK_PATTERN)
#: polars ``str.replace_all(MARK_PATTERN, PHRASE_REPLACEMENT)``: every mark becomes its phrase
PHRASE_REPLACEMENT = "${1}"
#: the GLaMM / LISA token that asks for a mask
SEG_TOKEN = "[SEG]"

#: one mark of a submitted answer (looser than ours): any id of letters, digits and ``_:.-``, lines inside
_SUBMITTED_MARK = r"\[(?P<m>[^\[\]]+?)\]\((?P<id>[A-Za-z0-9_:.\-]+)\)"
_SUBMITTED_MARK_RE = re.compile(_SUBMITTED_MARK)
#: one grounded phrase of a submitted answer: GLaMM's ``<p>phrase</p> [SEG]`` or ``[phrase](id)``
_SUBMITTED_PHRASE_RE = re.compile(r"<p>(?P<g>.*?)</p>\s*\[SEG\]|" + _SUBMITTED_MARK, re.IGNORECASE | re.DOTALL)
#: the GLaMM / LISA markup a submitted answer may hold, any letter case
_GLAMM_MARKUP_RE = re.compile(r"</?p>|\[SEG\]", re.IGNORECASE)
_SPACES_RE = re.compile(r"[ \t]{2,}")
_LINE_BREAK_RE = re.compile(r"\s*\n\s*")


class Mark(NamedTuple):
    """One mark of a marked text: ``text[start:end] == f"[{phrase}]({node_id})"``."""

    phrase: str
    node_id: str
    start: int
    end: int


# ------------------------------------------------------------------ our form
def mark(phrase: str, node_id: str) -> str:
    """``phrase`` marked as grounded in ``node_id``: its brackets become parentheses, a line break with the
    spaces around it one space, its ends stripped (so that :func:`parse` reads the mark back)."""
    phrase = _LINE_BREAK_RE.sub(" ", phrase.replace("[", "(").replace("]", ")")).strip()
    return f"[{phrase}]({node_id})"


def find(text: str | None) -> list[Mark]:
    """Every mark of ``text``, in order, with its span."""
    return [Mark(m.group(1), m.group(2), m.start(), m.end()) for m in MARK_RE.finditer(text or "")]


def parse(text: str | None) -> list[tuple[str, str]]:
    """``(node_id, phrase)`` of every mark of ``text``, in order."""
    return [(m.group(2), m.group(1)) for m in MARK_RE.finditer(text or "")]


def marked_ids(text: str | None) -> list[str]:
    """The node id of every mark of ``text``, in order."""
    return [n for n, _ in parse(text)]


def has_mark(text: str | None) -> bool:
    """Whether ``text`` holds at least one mark."""
    return MARK_RE.search(text or "") is not None


def strip(text: str | None) -> str:
    """Plain text: every mark replaced by its phrase (DESIGN: "plain text drops the brackets")."""
    return MARK_RE.sub(lambda m: m.group(1), text or "")


def render_glamm(text: str | None) -> str:
    """GLaMM / LISA form: every mark becomes ``<p>phrase</p> [SEG]``."""
    return MARK_RE.sub(lambda m: f"<p>{m.group(1)}</p> {SEG_TOKEN}", text or "")


def clean_model_text(text: str | None) -> str:
    """Model text made safe to embed in a marked text: its marks become plain phrases and no bracket survives,
    so the only marks are the ones we add (no ``[x](any_id)`` can slip in, not even by joining two pieces)."""
    return strip(text).replace("[", "(").replace("]", ")")


def has_markup(text: str | None) -> bool:
    """Whether ``text`` holds grounding markup: one of our marks or a ``[SEG]`` token."""
    return has_mark(text) or SEG_TOKEN in (text or "")


# ------------------------------------------------ generated text (predictor)
PHRASE_OPEN, PHRASE_CLOSE = "<p>", "</p>"
_GENERATED_MARKUP_RE = re.compile(r"\s*\[SEG\]|</?p>")
_BEFORE_PUNCT_RE = re.compile(r"\s+([.,;:!?])")


def _spaced(text: str) -> str:
    return _BEFORE_PUNCT_RE.sub(r"\1", re.sub(r"\s+", " ", text)).strip()


def plain_generated(text: str | None) -> str:
    """Generated text without its markup, white space folded, no space before punctuation."""
    return _spaced(_GENERATED_MARKUP_RE.sub("", text or ""))


def tidy_generated(text: str | None) -> str:
    """Generated text with its marks kept and spaced as GLaMM writes them (``<p>phrase</p> [SEG]``)."""
    text = re.sub(r"\s*<p>\s*", " <p>", text or "")
    text = re.sub(r"\s*</p>\s*", "</p> ", text)
    return _spaced(re.sub(r"\s*\[SEG\]", " [SEG]", text))


# ------------------------------------------------ submitted answers (scorer)
def parse_submitted(text: str | None) -> list[tuple[str, str | None]]:
    """``(phrase, mark id or None)`` of every grounded phrase of a submitted answer, in order: GLaMM's
    ``<p>phrase</p> [SEG]`` (id None) or ``[phrase](id)``, read loosely (see the module's data shapes)."""
    out: list[tuple[str, str | None]] = []
    for m in _SUBMITTED_PHRASE_RE.finditer(text or ""):
        if m.group("m") is not None:
            out.append((m.group("m"), m.group("id")))
        else:
            out.append((m.group("g"), None))
    return out


def strip_submitted(text: str | None) -> str:
    """Plain text of a submitted answer (before text metrics): ``[phrase](id)`` -> phrase; ``<p>``, ``</p>``,
    ``[SEG]`` (any case) removed; runs of spaces or tabs left behind folded into one; ends stripped."""
    text = _GLAMM_MARKUP_RE.sub(" ", _SUBMITTED_MARK_RE.sub(lambda m: m.group("m"), text or ""))
    return _SPACES_RE.sub(" ", text).strip()


__all__ = [
    "MARK_PATTERN",
    "MARK_RE",
    "PHRASE_CLOSE",
    "PHRASE_OPEN",
    "PHRASE_REPLACEMENT",
    "SEG_TOKEN",
    "Mark",
    "clean_model_text",
    "find",
    "has_mark",
    "has_markup",
    "mark",
    "marked_ids",
    "parse",
    "parse_submitted",
    "plain_generated",
    "render_glamm",
    "strip",
    "strip_submitted",
    "tidy_generated",
]
