"""``judge_mean`` of every text task in a report (the scorer's side of :mod:`fifa.benchmarks.judge`).

Per text task: the judge's mean 1-5 score over the questions it scored, a bootstrap CI of it
(``_meta.tasks[task].cis.judge_mean``), per-method / per-category means, and counts of questions left
unscored (``_meta.tasks[task].judge``: judged, failed, budget). ``_meta.judge`` holds the judge's
identity (model, endpoint, rubric version) and its cost; the per-question scores go to
``judge_scores.jsonl`` next to the report (for ``fifa-bench judge-agreement``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from fifa.core.marks import strip_submitted

from .bootstrap import bootstrap_mean, task_rng
from .judge import Judge, JudgeConfig, JudgeItem, jpeg_of


def judge_text_tasks(
    bench,
    sub,
    text_rows: dict[str, list[int]],
    judge: Judge | JudgeConfig,
    tasks: dict,
    tmeta: dict,
    resamples: int,
    seed: int,
    warnings: list[str],
    ci,
    breakdowns,
) -> tuple[dict, list]:
    """Adds ``judge_mean`` to ``tasks[t]`` for every text task; returns (``_meta.judge``, per-question rows)."""
    items, results, summary = _judge_all(bench, sub, text_rows, judge)
    per_q = [
        {
            "question_id": it.question_id,
            "task": it.task,
            "score": r.score,
            "reason": r.reason,
            "error": r.error_code,
            "cached": r.cached,
        }
        for it, r in zip(items, results)
    ]
    k = 0
    for t, rows in text_rows.items():
        res = results[k : k + len(rows)]
        k += len(rows)
        scores = np.array([np.nan if r.score is None else r.score for r in res], dtype=float)
        ok = ~np.isnan(scores)
        tasks[t]["judge_mean"] = float(scores[ok].mean()) if ok.any() else None
        errs = Counter(r.error_code for r in res if r.score is None)
        tm = tmeta[t]
        tm["judge"] = {
            "judged": int(ok.sum()),
            "failed": sum(v for c, v in errs.items() if c != "budget"),
            "budget": errs.get("budget", 0),
        }
        if errs:
            warnings.append(
                f"{t}: the judge scored {int(ok.sum())} of {len(rows)} question(s); left unscored: "
                + ", ".join(f"{v} {c}" for c, v in sorted(errs.items()))
            )
        if resamples and ok.any():
            tm.setdefault("cis", {})["judge_mean"] = ci(
                bootstrap_mean(scores[ok], resamples, task_rng(seed, f"{t}/judge")), "judge_mean", resamples, seed
            )
        ok_rows = [rows[p] for p in np.flatnonzero(ok)]
        okv = scores[ok]
        for key, groups in breakdowns(bench, ok_rows, lambda pos, v=okv: {"judge_mean": float(v[pos].mean())}).items():
            tgt = tm.setdefault(key, {})
            for name, vals in groups.items():
                tgt.setdefault(name, {})["judge_mean"] = vals["judge_mean"]
    return summary, per_q


def _judge_all(bench, sub, text_rows: dict[str, list[int]], judge: Judge | JudgeConfig) -> tuple[list, list, dict]:
    """Every text question judged, in ``text_rows``' order: (items, results, the judge's summary)."""
    own = not isinstance(judge, Judge)
    j = Judge(judge) if own else judge
    try:
        root = bench.image_root() if j.cfg.images else None
        order = [(t, i) for t, rows in text_rows.items() for i in rows]
        items = [
            JudgeItem(
                bench.question_id[i],
                t,
                (bench.question or [None] * len(bench))[i] or "",
                bench.answer[i] or "",
                strip_submitted(sub.answer[i] or "") if sub.present[i] and sub.answer[i] is not None else None,
                jpeg_of(bench.image(i), root) if j.cfg.images else None,
            )
            for t, i in order
        ]
        results = j.judge_many(items)
        summary = j.summary()
    finally:
        if own:
            j.close()
    return items, results, summary


__all__ = ["judge_text_tasks"]
