"""Answer-level reads that the text metrics do not give: the yes / no verdict of region-query answers and whether
a grounded explanation names a manipulated region.

* ``verdict_of(text)``: "yes" / "no" when an answer opens with that word (how the build words ``rq_*`` answers,
  and how a guided model opens them), else None.
* ``verdict_accuracy(references, answers)``: the share of questions whose answer's verdict is the reference's
  (a missing or unreadable answer counts wrong); questions whose reference has no verdict are left out.
* ``anchor_named_rate(answers, reference_node_ids)``: the share of questions (fake images: references with at
  least one mark) whose answer names at least one region that rolls up to the same anchor as a reference mark
  (grounding's matching key, without the mask test: "at least one correct anchor named").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fifa.core.marks import parse_submitted

from .metrics_ground import Resolver

_VERDICT = re.compile(r"\s*(yes|no)\b", re.IGNORECASE)


def verdict_of(text: str | None) -> str | None:
    m = _VERDICT.match(text or "")
    return None if m is None else m.group(1).lower()


def verdict_accuracy(references: Sequence[str | None], answers: Sequence[str | None]) -> float | None:
    pairs = [(verdict_of(r), verdict_of(a)) for r, a in zip(references, answers)]
    pairs = [(r, a) for r, a in pairs if r is not None]
    return sum(r == a for r, a in pairs) / len(pairs) if pairs else None


def anchor_named_rate(
    answers: Sequence[str | None], reference_node_ids: Sequence[Sequence[str]], resolver: Resolver | None = None
) -> float | None:
    res = resolver or Resolver()
    hits = []
    for answer, refs in zip(answers, reference_node_ids):
        if not refs:
            continue
        want = {res.key(n) for n in refs}
        got = {res.key(n) for phrase, mark in parse_submitted(answer) if (n := res.resolve(phrase, mark)) is not None}
        hits.append(bool(want & got))
    return sum(hits) / len(hits) if hits else None
