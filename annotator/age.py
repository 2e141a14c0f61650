"""Artifact-Grounding Explanation (AGE) records: text whose region phrases each carry a mask.

Marking convention (stored in the ``explanation`` column): every region phrase is written
as a Markdown-style link whose target is the FICT node id::

    The [left iris](left_iris) shows a colour shift; the [upper lip](upper_lip) is blurred.

``segments`` lists, in order of appearance, ``{"node_id", "phrase", "mask"}``; the mask is the
artifact inside that node (the node's own mask when the artifact misses it, e.g. ungrounded text).

Renderers: :func:`to_plain` (phrases only) and :func:`to_glamm` (GLaMM's ``<p>phrase</p> [SEG]``).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

MARK_RE = re.compile(r"\[([^\[\]\n]+?)\]\(([a-z][a-z0-9_]*)\)")


def mark(phrase: str, node_id: str) -> str:
    """Mark ``phrase`` as grounded in ``node_id``."""
    phrase = phrase.replace("[", "(").replace("]", ")").strip()
    return f"[{phrase}]({node_id})"


def parse(text: str) -> list[tuple[str, str]]:
    """(node_id, phrase) of every marked phrase, in order."""
    return [(m.group(2), m.group(1)) for m in MARK_RE.finditer(text or "")]


def to_plain(text: str) -> str:
    """The explanation with marks removed (phrases kept)."""
    return MARK_RE.sub(lambda m: m.group(1), text or "")


def to_glamm(text: str) -> str:
    """GLaMM grounded-caption form: every marked phrase becomes ``<p>phrase</p> [SEG]``."""
    return MARK_RE.sub(lambda m: f"<p>{m.group(1)}</p> [SEG]", text or "")


def build_segments(text: str, masks: Mapping[str, dict]) -> list[dict]:
    """``segments`` for a marked text: one entry per marked phrase whose node has a mask."""
    out = []
    for node_id, phrase in parse(text):
        m = masks.get(node_id)
        if m is None:
            continue
        out.append({"node_id": node_id, "phrase": phrase, "mask": m})
    return out


def check_segments(text: str, segments: list[dict]) -> str | None:
    """Why ``segments`` do not match the marks of ``text`` (DESIGN: the k-th mark has the k-th mask), or None."""
    marks = parse(text)
    got = [(s["node_id"], s["phrase"]) for s in segments]
    if marks == got:
        return None
    missing = [n for n, _ in marks if n not in {g for g, _ in got}]
    if missing:
        return f"marked region(s) without a mask: {', '.join(dict.fromkeys(missing))}"
    return f"{len(marks)} mark(s) but {len(got)} segment(s), or in another order"


def clean_model_text(text: str) -> str:
    """Model text made safe to embed: its marks become plain phrases and no bracket survives, so the
    only marks of an explanation are the ones we add (no ``[x](any_id)`` can slip in, not even by
    joining two pieces of text)."""
    return to_plain(text).replace("[", "(").replace("]", ")")


def marked_ids(text: str) -> list[str]:
    return [n for n, _ in parse(text)]


def check_ids(text: str, allowed: Iterable[str]) -> list[str]:
    """Node ids marked in ``text`` that are not in ``allowed`` (the hallucination guard)."""
    allowed = set(allowed)
    return [n for n in marked_ids(text) if n not in allowed]
