"""Answers describe the image (DESIGN.md "Answers describe the image").

A model trained on instruction data sees only the fake: an answer that names the pristine source or a
figure measured against it ("compared with the source", "mean ΔE 19.7", "3.9% of the image" of a
difference mask) teaches it to invent both. :data:`SOURCE_MENTION` finds such wording; it is the one
definition used by the explainers (the visible description they write), the build's check of every
generated answer, and the tests. It is plain regex syntax shared by Python's ``re`` and polars (Rust's
``regex``: no look-around), so the build checks whole columns at once.

It does not flag a method's definition ("blends the source face onto the target": a fact about the
method) or "light source"; it flags the source as a thing compared with, and source-relative figures.
"""

from __future__ import annotations

import re

#: case-insensitive; a match is a mention of the source image or of a figure that needs it
SOURCE_MENTION = (
    r"(?i)\b(?:pristine|unedited|unaltered)\b"
    r"|\bsource (?:image|photo|photograph|frame|picture|version|pair)s?\b"
    r"|\b(?:the|its|a) source(?:\s*[.,;:()!?]|\s*$|\s+(?:and|but|while|where|which|in|at|is|was|has)\b)"
    r"|\b(?:compared|relative)\s+(?:with|to)\s+(?:the|its)\s+(?:original|source|real)\b"
    r"|\boriginal (?:image|photo|photograph|frame|picture|version)s?\b"
    r"|Δ|\bdelta[ -]?e\b|\bdetail energy\b"
    r"|\d\s*%\s*of\s+(?:the|its)\s+(?:image|frame|pixels|picture|face)\b"
)
_RE = re.compile(SOURCE_MENTION)


def source_mention(text: str | None) -> str | None:
    """The first wording of ``text`` that mentions the source or a source-relative figure, or None."""
    m = _RE.search(text or "")
    return m.group(0) if m else None
