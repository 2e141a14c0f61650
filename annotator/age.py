"""Artifact-Grounding Explanation (AGE) records: text whose region phrases each carry a mask.

The ``explanation`` column is a marked text (:mod:`fifa.core.marks`: every region phrase written
``[phrase](node_id)`` with its FICT node id)::

    The [left iris](left_iris) shows a colour shift; the [upper lip](upper_lip) is blurred.

``segments`` lists, in order of appearance, ``{"node_id", "phrase", "mask"}``; the mask is the
artifact inside that node (the node's own mask when the artifact misses it, e.g. ungrounded text).
Marks are written, read and rendered (plain, GLaMM) by :mod:`fifa.core.marks`; this module pairs them
with masks and guards their ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fifa.core import marks


def build_segments(text: str, masks: Mapping[str, dict]) -> list[dict]:
    """``segments`` for a marked text: one entry per marked phrase whose node has a mask."""
    out = []
    for node_id, phrase in marks.parse(text):
        m = masks.get(node_id)
        if m is None:
            continue
        out.append({"node_id": node_id, "phrase": phrase, "mask": m})
    return out


def check_segments(text: str, segments: list[dict]) -> str | None:
    """Why ``segments`` do not match the marks of ``text`` (DESIGN: the k-th mark has the k-th mask), or None."""
    found = marks.parse(text)
    got = [(s["node_id"], s["phrase"]) for s in segments]
    if found == got:
        return None
    missing = [n for n, _ in found if n not in {g for g, _ in got}]
    if missing:
        return f"marked region(s) without a mask: {', '.join(dict.fromkeys(missing))}"
    return f"{len(found)} mark(s) but {len(got)} segment(s), or in another order"


def check_ids(text: str, allowed: Iterable[str]) -> list[str]:
    """Node ids marked in ``text`` that are not in ``allowed`` (the hallucination guard)."""
    allowed = set(allowed)
    return [n for n in marks.marked_ids(text) if n not in allowed]
