"""``score(bench, submission) -> Report``: validation, metrics, breakdowns, CIs.

Main metric of each task (bootstrap CI, per-method / per-category bars):
``det`` auc (acc when auc is undefined), ``cls`` acc, text tasks rouge_l,
``loc`` and ``age`` giou. The grounding metrics of ``age`` and ``judge_mean`` get their own
bootstrap CIs (``_meta.tasks[task].cis``). The tasks are scored by the registry of task scorers
(:data:`fifa.benchmarks.scorers.SCORERS`, picked by each task's answer kind); this module runs them and
assembles ``_meta``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import fifa
from fifa.core.tasks import TASKS, TEXT_TASKS

from .bench import load_bench
from .bootstrap import LEVEL
from .metrics_text import MeteorProcess, java_available
from .report import Report
from .score_config import ScoreConfig
from .scorers import ScoreContext, ScoreState, scorer_tasks
from .submission import AlignedSubmission, load_submission


# ------------------------------------------------------------------- score
def score(
    bench: Any,
    submission: Any,
    *,
    strict: bool = ScoreConfig.strict,
    seed: int = ScoreConfig.seed,
    bootstrap: int = ScoreConfig.bootstrap,
    use_java: bool | None = None,
    meteor: bool = ScoreConfig.meteor,
    judge: Any = None,
) -> Report:
    """Score ``submission`` against ``bench`` (paths or DataFrames); the defaults are :class:`ScoreConfig`'s.

    Raises :class:`~fifa.benchmarks.submission.SubmissionError` for an invalid
    submission and :class:`~fifa.benchmarks.bench.BenchError` for an unusable
    bench.  ``bootstrap=0`` disables confidence intervals; ``use_java=None``
    uses Java (PTB tokenizer, METEOR) when ``java`` is on PATH.  ``meteor=False`` skips METEOR (the
    slowest metric: a JVM start of ~15 s plus a few ms per answer) with a warning, e.g. for frequent
    evaluation during training. ``judge`` (a :class:`~fifa.benchmarks.judge.JudgeConfig` or an open
    :class:`~fifa.benchmarks.judge.Judge`) adds ``judge_mean`` to every text task.
    """
    b = load_bench(bench)
    # an AlignedSubmission is already validated against this bench (the CLI does that first)
    aligned = isinstance(submission, AlignedSubmission)
    sub = submission if aligned else load_submission(submission, b, strict=strict)
    if use_java is None:
        use_java = java_available()
    proc = None
    if use_java and meteor and any(t in TEXT_TASKS for t in b.tasks):
        proc = MeteorProcess()  # the METEOR JVM starts while the other tasks are scored
    try:
        ctx = ScoreContext(
            b,
            sub,
            seed=seed,
            resamples=max(0, int(bootstrap)),
            use_java=use_java,
            with_meteor=meteor,
            meteor=proc,
            judge=judge,
        )
        return _score(ctx, submission)
    finally:
        if proc is not None:
            proc.close()


def _score(ctx: ScoreContext, submission: Any) -> Report:
    """Runs every scorer of the registry over the bench's tasks, then assembles ``_meta``."""
    state = ScoreState()
    for t in ctx.bench.tasks:
        if t not in TASKS:
            state.warnings.append(f"task {t!r} is unknown: {len(ctx.bench.rows(t))} question(s) not scored")
    for scorer, task_ids in scorer_tasks(ctx.bench.tasks):
        scorer(ctx, task_ids, state)
    for t in state.tasks:  # metric keys in a stable order, n last
        state.tasks[t]["n"] = state.tasks[t].pop("n")
    return Report(
        tasks=state.tasks, meta=_meta(ctx, submission, state), plot_data=state.plot_data, judge_scores=state.judge_rows
    )


def _meta(ctx: ScoreContext, submission: Any, state: ScoreState) -> dict:
    """``_meta`` of ``report.json`` (its task entries: ``state.tmeta``); adds the missing-answers warning."""
    b, sub, warnings = ctx.bench, ctx.sub, state.warnings
    n_missing = sum(not p for p in sub.present)
    if n_missing:
        warnings.append(f"{n_missing} bench question(s) have no answer in the submission; they count as wrong")
    text = state.text_tasks
    meta = {
        "bench": str(b.path) if b.path else None,
        "submission": sub.source
        if sub.source
        else str(submission)
        if isinstance(submission, str) or hasattr(submission, "__fspath__")
        else type(submission).__name__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "fifa_version": fifa.__version__,
        "n_questions": len(b),
        "n_answered": len(b) - n_missing,
        "n_missing": n_missing,
        "seed": ctx.seed,
        "bootstrap": ctx.resamples,
        "ci_level": LEVEL,
        "tokenizer": ("ptb" if ctx.use_java else "fallback") if text else None,
        "meteor": bool(text) and all("meteor" in state.tasks[t] for t in text),
        "warnings": warnings,
        "tasks": state.tmeta,
    }
    if state.judge_meta is not None:
        meta["judge"] = state.judge_meta
    return meta
