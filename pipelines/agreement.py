"""Inter-reviewer agreement over review decisions (pure functions; ``fifa-data review-stats`` and the card).

Decisions are ``accepted`` / ``rejected`` per sample. Cohen's kappa for each pair of reviewers over the
samples both decided; Fleiss' kappa over the samples every reviewer decided; each reviewer's agreement with
the annotator's status (``ok`` counts as accepted, ``failed`` / ``skipped`` as rejected); the disputed
samples (reviewers disagree). A kappa is ``None`` where it is undefined: no common sample, or chance
agreement 1 (every decision the same category), where the formula divides by zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations

CATEGORIES = ("accepted", "rejected")


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (scikit-learn's ``cohen_kappa_score``)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return None if pe == 1 else (po - pe) / (1 - pe)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of ``counts[i][k]``: raters putting item i in category k (the same rater count per item)."""
    if not counts:
        return None
    m = sum(counts[0])
    if m < 2 or any(sum(r) != m for r in counts):
        return None
    n = len(counts)
    p_i = [(sum(c * c for c in r) - m) / (m * (m - 1)) for r in counts]
    p_bar = sum(p_i) / n
    p_k = [sum(r[k] for r in counts) / (n * m) for k in range(len(counts[0]))]
    pe = sum(p * p for p in p_k)
    return None if pe == 1 else (p_bar - pe) / (1 - pe)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def agreement(
    reviews: Mapping[str, Mapping[str, str]], status: Mapping[str, str] | None = None, max_disputed: int = 1000
) -> dict:
    """Agreement figures of ``reviews`` (reviewer -> sample_id -> decision) and, when given, the annotator's
    ``status`` (sample_id -> ok | failed | skipped)."""
    names = sorted(reviews)
    pairs = []
    for x, y in combinations(names, 2):
        common = sorted(set(reviews[x]) & set(reviews[y]))
        a, b = [reviews[x][s] for s in common], [reviews[y][s] for s in common]
        pairs.append(
            {
                "reviewers": [x, y],
                "n": len(common),
                "agreement": _round(sum(p == q for p, q in zip(a, b)) / len(common)) if common else None,
                "cohen_kappa": _round(cohen_kappa(a, b)),
            }
        )
    every = sorted(set.intersection(*(set(reviews[r]) for r in names))) if names else []
    counts = [[sum(reviews[r][s] == k for r in names) for k in CATEGORIES] for s in every]
    fleiss = {"n": len(every), "raters": len(names), "kappa": _round(fleiss_kappa(counts)) if len(names) >= 2 else None}
    annot = []
    if status is not None:
        for r in names:
            common = sorted(s for s in reviews[r] if s in status)
            a = [reviews[r][s] for s in common]
            b = ["accepted" if status[s] == "ok" else "rejected" for s in common]
            annot.append(
                {
                    "reviewer": r,
                    "n": len(common),
                    "agreement": _round(sum(p == q for p, q in zip(a, b)) / len(common)) if common else None,
                    "cohen_kappa": _round(cohen_kappa(a, b)),
                }
            )
    samples = sorted(set().union(*(set(v) for v in reviews.values()))) if names else []
    disputed = [
        {"sample_id": s, "decisions": {r: reviews[r][s] for r in names if s in reviews[r]}}
        for s in samples
        if len({reviews[r][s] for r in names if s in reviews[r]}) > 1
    ]
    return {
        "reviewers": names,
        "samples": len(samples),
        "pairs": pairs,
        "fleiss": fleiss,
        "annotator": annot,
        "disputed": len(disputed),
        "disputed_samples": disputed[:max_disputed],
    }


def combine(reviews: Mapping[str, Mapping[str, str]], rule: str) -> dict[str, tuple[str, list[str]]]:
    """sample_id -> (combined decision, reviewers who decided), under ``rule``: ``all`` (accepted only when
    every reviewer who decided accepted), ``majority`` (accepted when more accepted than rejected; a tie
    rejects) or ``any`` (accepted when one reviewer accepted)."""
    if rule not in ("all", "majority", "any"):
        raise ValueError(f"review rule must be all, majority or any, got {rule!r}")
    out = {}
    names = sorted(reviews)
    for s in sorted(set().union(*(set(v) for v in reviews.values()))) if names else []:
        who = [r for r in names if s in reviews[r]]
        acc = sum(reviews[r][s] == "accepted" for r in who)
        ok = {"all": acc == len(who), "majority": acc > len(who) - acc, "any": acc > 0}[rule]
        out[s] = ("accepted" if ok else "rejected", who)
    return out
