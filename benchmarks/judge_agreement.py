"""How far to trust the judge: its scores against people's ratings of the same answers.

``fifa-bench judge-agreement --judge RUN --human ratings.csv`` pairs the judge's per-question scores
(``RUN/judge_scores.jsonl``, written by ``fifa-bench score --judge-model ...``) with a file of human
ratings (CSV, JSONL or Parquet: ``question_id`` and ``rating`` (or ``score``), 1-5; several raters of
one question are averaged) and reports, over the questions both scored, overall and per task:

* ``spearman``: Spearman's rank correlation (scipy; ``null`` when either side is constant);
* ``exact``: share of questions where the judge's score equals the human rating (the mean rounded
  half up when several people rated it);
* ``within_one``: share where they differ by at most 1.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from fifa.core.errors import FifaError

from .report import JUDGE_SCORES


class AgreementError(FifaError, ValueError):
    """A ratings or judge-scores file that cannot be used."""


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise AgreementError(f"file not found: {path}")
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        if path.suffix in (".jsonl", ".json"):
            return [json.loads(ln) for ln in path.read_text("utf-8").splitlines() if ln.strip()]
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except Exception as e:  # noqa: BLE001
        raise AgreementError(f"cannot read {path}: {e}") from None


def _score(v, where: str) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise AgreementError(f"{where}: rating {v!r} is not a number") from None
    if not (1 <= x <= 5) or math.isnan(x):
        raise AgreementError(f"{where}: rating {v!r} is outside 1-5")
    return x


def read_human(path: str | Path) -> dict[str, float]:
    """{question_id: mean rating} from a ratings file."""
    p = Path(path)
    rows = _rows(p)
    if rows and "question_id" not in rows[0]:
        raise AgreementError(f"{p}: needs a question_id column")
    col = next((c for c in ("rating", "score", "human") if rows and c in rows[0]), None)
    if rows and col is None:
        raise AgreementError(f"{p}: needs a rating (or score) column")
    acc: dict[str, list[float]] = defaultdict(list)
    for k, r in enumerate(rows, 1):
        v = _score(r.get(col), f"{p} row {k}")
        if v is not None:
            acc[str(r["question_id"])].append(v)
    if not acc:
        raise AgreementError(f"{p}: no ratings")
    return {q: float(np.mean(v)) for q, v in acc.items()}


def read_judge(path: str | Path) -> tuple[dict[str, int], dict[str, str]]:
    """({question_id: judge score}, {question_id: task}) from judge_scores.jsonl (or its report folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / JUDGE_SCORES
    rows = _rows(p)
    scores, tasks = {}, {}
    for r in rows:
        if r.get("score") is not None:
            scores[str(r["question_id"])] = int(r["score"])
            tasks[str(r["question_id"])] = str(r.get("task") or "")
    if not scores:
        raise AgreementError(f"{p}: no judge scores (run fifa-bench score with --judge-model)")
    return scores, tasks


def _stats(j: np.ndarray, h: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    n = len(j)
    rho = None
    if n >= 2 and np.ptp(j) > 0 and np.ptp(h) > 0:
        rho = float(spearmanr(j, h)[0])
    return {
        "n": n,
        "spearman": rho,
        "exact": float(np.mean(j == np.floor(h + 0.5))) if n else None,
        "within_one": float(np.mean(np.abs(j - h) <= 1)) if n else None,
    }


def agreement(judge: dict[str, int], human: dict[str, float], tasks: dict[str, str] | None = None) -> dict:
    """Overall and per-task agreement over the questions both sides scored (see the module docstring)."""
    both = sorted(set(judge) & set(human))
    out = _stats(np.array([judge[q] for q in both], dtype=float), np.array([human[q] for q in both], dtype=float))
    out["only_judge"] = len(set(judge) - set(human))
    out["only_human"] = len(set(human) - set(judge))
    if tasks:
        by: dict[str, list[str]] = defaultdict(list)
        for q in both:
            by[tasks.get(q) or "(none)"].append(q)
        out["by_task"] = {
            t: _stats(np.array([judge[q] for q in qs], dtype=float), np.array([human[q] for q in qs], dtype=float))
            for t, qs in sorted(by.items())
        }
    return out


def to_markdown(res: dict) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        "| task | n | spearman | exact | within one |",
        "|---|---:|---:|---:|---:|",
        f"| all | {res['n']} | {f(res['spearman'])} | {f(res['exact'])} | {f(res['within_one'])} |",
    ]
    lines += [
        f"| {t} | {s['n']} | {f(s['spearman'])} | {f(s['exact'])} | {f(s['within_one'])} |"
        for t, s in (res.get("by_task") or {}).items()
    ]
    lines.append(
        f"\n{res['only_judge']} question(s) scored by the judge only, {res['only_human']} rated by people only."
    )
    return "\n".join(lines)


__all__ = ["AgreementError", "agreement", "read_human", "read_judge", "to_markdown"]
