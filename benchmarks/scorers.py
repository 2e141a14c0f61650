"""The task scorers of :func:`fifa.benchmarks.scoring.score`, and their registry.

Data shapes:

* :class:`ScoreContext` (frozen): what every scorer reads: the bench, the validated submission, the seed,
  the bootstrap resamples, the text options (Java, METEOR and its process) and the judge.
* :class:`ScoreState`: what the scorers write: ``tasks`` (``report.json``'s task entries), ``tmeta``
  (``_meta.tasks``), ``plot_data``, ``warnings``, the judge's ``_meta.judge`` and per-question rows, and
  ``text_tasks`` (the tasks scored with the text metrics).
* :data:`Scorer`: ``(ctx, task_ids, state) -> None``: scores ``task_ids`` (the bench's tasks that it
  applies to, in the bench's task order) into ``state``.
* :data:`SCORERS`: ``{name: Scorer}`` in the order they run (a later scorer adds to an earlier one's
  entries: ``age`` is text, then masks, then grounding); :data:`SCORERS_BY_ANSWER`: the scorers each
  :data:`~fifa.core.tasks.AnswerKind` of :data:`~fifa.core.tasks.TASKS` goes through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

from fifa.core.marks import strip_submitted
from fifa.core.tasks import TASKS, AnswerKind

from .bench import Bench
from .bootstrap import LEVEL, bootstrap_auc, bootstrap_mean, bootstrap_ratio, interval, task_rng
from .metrics_cls import cls_confusion, cls_metrics
from .metrics_det import det_metrics, ranking_scores
from .metrics_ground import GROUNDING_METRICS, grounding_scores
from .metrics_mask import mask_scores
from .metrics_text import MeteorProcess, text_scores
from .parsing import class_parser, parse_det
from .submission import AlignedSubmission

_parse_det_cached = lru_cache(maxsize=200_000)(parse_det)


@dataclass(frozen=True)
class ScoreContext:
    """What the scorers read (see the module's data shapes); ``resamples`` 0: no confidence intervals."""

    bench: Bench
    sub: AlignedSubmission
    seed: int = 0
    resamples: int = 1000
    use_java: bool = False
    with_meteor: bool = True
    meteor: MeteorProcess | None = None  # a METEOR process started early, or None
    judge: Any = None  # a JudgeConfig or an open Judge, or None


@dataclass
class ScoreState:
    """What the scorers write (see the module's data shapes)."""

    tasks: dict[str, dict] = field(default_factory=dict)
    tmeta: dict[str, dict] = field(default_factory=dict)
    plot_data: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    judge_meta: dict | None = None
    judge_rows: list[dict] | None = None
    text_tasks: dict[str, list[int]] = field(default_factory=dict)


Scorer = Callable[[ScoreContext, list[str], ScoreState], None]


# ------------------------------------------------------------------- helpers
def _groups(bench: Bench, rows: list[int], attr: str) -> dict[str, list[int]]:
    """Positions (into ``rows``) per value of ``method`` / ``category``; null values are "(none)"."""
    vals = getattr(bench, attr)
    out: dict[str, list[int]] = {}
    for k, i in enumerate(rows):
        out.setdefault(vals[i] if vals[i] is not None else "(none)", []).append(k)
    return dict(sorted(out.items()))


def _breakdowns(bench: Bench, rows: list[int], fn: Callable[[list[int]], dict]) -> dict:
    out = {}
    for attr in ("method", "category"):
        g = _groups(bench, rows, attr)
        if g and not (len(g) == 1 and "(none)" in g):
            out[f"by_{attr}"] = {name: {**fn(pos), "n": len(pos)} for name, pos in g.items()}
    return out


def _merge_breakdowns(tm: dict, breakdowns: dict) -> None:
    """Adds the metrics of ``breakdowns`` to the groups already in ``tm`` (one task scored twice)."""
    for key, groups in breakdowns.items():
        tgt = tm.setdefault(key, {})
        for name, vals in groups.items():
            tgt.setdefault(name, {}).update(vals)


def _ci(stats: np.ndarray, metric: str, resamples: int, seed: int) -> dict | None:
    iv = interval(stats, LEVEL)
    if iv is None:
        return None
    return {"metric": metric, "low": iv[0], "high": iv[1], "level": LEVEL, "resamples": resamples, "seed": seed}


# The metrics of one group of a task's rows (``pos``: positions in the task's row list), for _breakdowns;
# bound with functools.partial to the task's own values, so they never read a later loop iteration's.
def _cls_subset_metrics(refs: list, preds: list, classes: list[str], pos: list[int]) -> dict:
    return cls_metrics([refs[k] for k in pos], [preds[k] for k in pos], classes)


def _text_subset_means(per_sample: dict, pos: list[int]) -> dict:
    return {k: float(per_sample[k][pos].mean()) for k in ("rouge_l", "cider", "meteor") if k in per_sample}


def _mask_subset_summary(ms, with_miou: bool, pos: list[int]) -> dict:
    return ms.subset(pos).summary(with_miou)


# ------------------------------------------------------------------- yes/no
def _det_labels(ctx: ScoreContext, t: str, state: ScoreState) -> tuple[np.ndarray, list[int]]:
    """Reference labels (label column, else the reference answer) and the rows that have one."""
    b = ctx.bench
    labels, kept, dropped = [], [], 0
    for i in b.rows(t):
        y = b.label[i]
        if y is None:
            y = parse_det(b.answer[i])
        if y is None:
            dropped += 1
            continue
        labels.append(y)
        kept.append(i)
    if dropped:
        state.warnings.append(
            f"{t}: {dropped} question(s) without a usable label (label column or answer) were skipped"
        )
    return np.asarray(labels, dtype=int), kept


def score_yes_no(ctx: ScoreContext, task_ids: list[str], state: ScoreState) -> None:
    """acc / auc / ap / eer, a CI of the main metric, per-group acc and auc, the ROC curve."""
    sub, seed, resamples = ctx.sub, ctx.seed, ctx.resamples
    for t in task_ids:
        y, kept = _det_labels(ctx, t, state)
        parsed = [
            _parse_det_cached(sub.answer[i]) if sub.present[i] and sub.answer[i] is not None else None for i in kept
        ]
        sc = ranking_scores(y, parsed, [sub.score[i] if sub.present[i] else None for i in kept])
        metrics, w = det_metrics(y, parsed, sc)
        state.warnings.extend(f"{t}: {x}" for x in w)
        correct = np.array([p is not None and p == r for p, r in zip(parsed, y)], dtype=float)
        main = "auc" if metrics["auc"] is not None else "acc"
        tm = {
            "main_metric": main,
            "missing": sum(not sub.present[i] for i in kept),
            "unparsed": sum(sub.present[i] and p is None for i, p in zip(kept, parsed)),
            "with_score": sum(sub.present[i] and sub.score[i] is not None for i in kept),
        }
        if resamples and len(kept):
            rng = task_rng(seed, t)
            stats = bootstrap_auc(y, sc, resamples, rng) if main == "auc" else bootstrap_mean(correct, resamples, rng)
            tm["ci"] = _ci(stats, main, resamples, seed)
        tm.update(_breakdowns(ctx.bench, kept, _det_group_fn(y, parsed, sc)))
        state.tasks[t], state.tmeta[t] = {**metrics, "n": len(kept)}, tm
        if metrics["auc"] is not None:
            fpr, tpr, _ = roc_curve(y, sc)
            state.plot_data["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


def _det_group_fn(y: np.ndarray, parsed: list, sc: np.ndarray) -> Callable[[list[int]], dict]:
    reals = [k for k in range(len(y)) if y[k] == 0]

    def sub_fn(pos: list[int]) -> dict:
        m, _ = det_metrics(y[pos], [parsed[k] for k in pos], sc[pos])
        out = {"acc": m["acc"], "auc": m["auc"]}
        if m["auc"] is None and len(pos) and y[pos].all() and reals:
            # a fake-only group (one method): AUC against all real questions, as in FF++ per-method results
            both = list(pos) + reals
            out["auc"] = det_metrics(y[both], [parsed[k] for k in both], sc[both])[0]["auc"]
        return out

    return sub_fn


# ------------------------------------------------------------------- class
def score_class(ctx: ScoreContext, task_ids: list[str], state: ScoreState) -> None:
    """acc / macro_f1 over the bench's classes, a CI of acc, per-group metrics, the confusion matrix."""
    b, sub, seed, resamples = ctx.bench, ctx.sub, ctx.seed, ctx.resamples
    classes = b.classes()
    parse = lru_cache(maxsize=None)(class_parser(tuple(classes)))
    for t in task_ids:
        rows = [i for i in b.rows(t) if b.answer[i] is not None]
        refs = [b.answer[i] for i in rows]
        preds = [parse(sub.answer[i]) if sub.present[i] and sub.answer[i] is not None else None for i in rows]
        metrics = cls_metrics(refs, preds, classes)
        correct = np.array([p == r for p, r in zip(preds, refs)], dtype=float)
        tm = {
            "main_metric": "acc",
            "classes": classes,
            "missing": sum(not sub.present[i] for i in rows),
            "unparsed": sum(sub.present[i] and p is None for i, p in zip(rows, preds)),
        }
        if resamples and rows:
            tm["ci"] = _ci(bootstrap_mean(correct, resamples, task_rng(seed, t)), "acc", resamples, seed)
        tm.update(_breakdowns(b, rows, partial(_cls_subset_metrics, refs, preds, classes)))
        state.tasks[t], state.tmeta[t] = {**metrics, "n": len(rows)}, tm
        if rows:
            state.plot_data["confusion"] = {"classes": classes, "matrix": cls_confusion(refs, preds, classes).tolist()}


# ------------------------------------------------------------------- text
def score_text(ctx: ScoreContext, task_ids: list[str], state: ScoreState) -> None:
    """The text metrics of every text task in one tokenizer call and one METEOR process, a CI of rouge_l."""
    b, sub, seed, resamples = ctx.bench, ctx.sub, ctx.seed, ctx.resamples
    text_rows = {t: b.rows(t) for t in task_ids}
    state.text_tasks = text_rows
    text_in = {
        t: (
            [b.answer[i] or "" for i in rows],
            [strip_submitted(sub.answer[i] or "") if sub.present[i] else "" for i in rows],
        )
        for t, rows in text_rows.items()
    }
    text_out, w = text_scores(text_in, use_java=ctx.use_java, meteor=ctx.meteor, with_meteor=ctx.with_meteor)
    state.warnings.extend(w)
    for t, rows in text_rows.items():
        ts = text_out.get(t)
        state.tasks[t] = {**(ts.summary if ts else {}), "n": len(rows)}
        tm = {"main_metric": "rouge_l", "missing": sum(not sub.present[i] for i in rows)}
        if ts is not None:
            if resamples:
                tm["ci"] = _ci(
                    bootstrap_mean(ts.per_sample["rouge_l"], resamples, task_rng(seed, t)), "rouge_l", resamples, seed
                )
            tm.update(_breakdowns(b, rows, partial(_text_subset_means, ts.per_sample)))
        state.tmeta[t] = tm


def score_judge(ctx: ScoreContext, task_ids: list[str], state: ScoreState) -> None:
    """``judge_mean`` of every text task, when a judge is given (:mod:`fifa.benchmarks.scoring_judge`)."""
    if ctx.judge is None:
        return
    from .scoring_judge import judge_text_tasks

    text_rows = {t: ctx.bench.rows(t) for t in task_ids}
    state.judge_meta, state.judge_rows = judge_text_tasks(
        ctx.bench,
        ctx.sub,
        text_rows,
        ctx.judge,
        state.tasks,
        state.tmeta,
        ctx.resamples,
        ctx.seed,
        state.warnings,
        _ci,
        _breakdowns,
    )


# ------------------------------------------------------------------- masks
def score_masks(ctx: ScoreContext, task_ids: list[str], state: ScoreState) -> None:
    """giou / ciou (and miou for grounded text) against the reference masks, a CI of giou."""
    b, sub, seed, resamples = ctx.bench, ctx.sub, ctx.seed, ctx.resamples
    for t in task_ids:
        rows = b.rows(t)
        with_miou = TASKS[t].answer == "grounded_text"
        ms = mask_scores(
            [b.masks[i] for i in rows],
            [sub.masks[i] for i in rows],
            [not sub.present[i] for i in rows],
            with_miou=with_miou,
        )
        state.tasks.setdefault(t, {}).update(ms.summary(with_miou))
        state.tasks[t]["n"] = len(rows)
        tm = state.tmeta.setdefault(t, {"missing": sum(not sub.present[i] for i in rows)})
        tm["main_metric"] = "giou"
        if resamples and rows:
            tm["ci"] = _ci(bootstrap_mean(ms.iou, resamples, task_rng(seed, t)), "giou", resamples, seed)
        _merge_breakdowns(tm, _breakdowns(b, rows, partial(_mask_subset_summary, ms, with_miou)))
        no_masks = sum(sub.present[i] and not sub.masks[i] for i in rows if b.masks[i])
        if no_masks:
            tm["answers_without_masks"] = no_masks


def _grounding_lacking(b: Bench) -> dict[str, str]:
    lacking = {}
    if b.mask_node_ids is None:
        lacking.update(dict.fromkeys(GROUNDING_METRICS[:2], "the bench has no mask_node_ids"))
    if b.anchor_masks is None:
        lacking["consistency"] = "the bench has no anchor_masks"
    return lacking


def score_grounding(ctx: ScoreContext, task_ids: list[str], state: ScoreState) -> None:
    """grounded_recall / grounded_precision / consistency (what the bench's columns allow), their CIs."""
    b, sub, seed, resamples = ctx.bench, ctx.sub, ctx.seed, ctx.resamples
    for t in task_ids:
        rows = b.rows(t)
        metrics, tm = state.tasks.setdefault(t, {}), state.tmeta.setdefault(t, {})
        lacking = _grounding_lacking(b)
        if lacking:
            tm["not_computed"] = lacking
            state.warnings.append(
                f"{t}: {', '.join(lacking)} not computed: the bench lacks "
                f"{' and '.join(sorted(set(lacking.values()))).replace('the bench has no ', '')} "
                "(rebuild it with this version of fifa-data build)"
            )
        if len(lacking) == len(GROUNDING_METRICS):
            continue
        gs = grounding_scores(
            [sub.answer[i] if sub.present[i] else None for i in rows],
            [sub.masks[i] if sub.present[i] else None for i in rows],
            None if b.mask_node_ids is None else [b.mask_node_ids[i] for i in rows],
            [b.masks[i] for i in rows],
            None if b.anchor_masks is None else [b.anchor_masks[i] for i in rows],
        )
        summary = gs.summary()
        metrics.update(summary)
        if resamples and rows:
            cis = tm.setdefault("cis", {})
            for k in summary:
                num, den = gs.parts(k)
                cis[k] = _ci(bootstrap_ratio(num, den, resamples, task_rng(seed, f"{t}/{k}")), k, resamples, seed)
        _merge_breakdowns(tm, _breakdowns(b, rows, lambda pos, gs=gs: gs.subset(pos).summary()))


# ------------------------------------------------------------------- registry
#: every scorer, in the order they run
SCORERS: Mapping[str, Scorer] = {
    "yes_no": score_yes_no,
    "class": score_class,
    "text": score_text,
    "judge": score_judge,
    "masks": score_masks,
    "grounding": score_grounding,
}
#: the scorers (names of :data:`SCORERS`) each answer kind goes through
SCORERS_BY_ANSWER: Mapping[AnswerKind, tuple[str, ...]] = {
    "yes_no": ("yes_no",),
    "class": ("class",),
    "text": ("text", "judge"),
    "grounded_text": ("text", "judge", "masks", "grounding"),
    "mask": ("masks",),
}


def scorer_tasks(bench_tasks: list[str]) -> list[tuple[Scorer, list[str]]]:
    """``(scorer, task ids)`` in run order for the known tasks of ``bench_tasks`` (kept in their order)."""
    out = []
    for name, fn in SCORERS.items():
        ids = [t for t in bench_tasks if t in TASKS and name in SCORERS_BY_ANSWER[TASKS[t].answer]]
        if ids:
            out.append((fn, ids))
    return out


__all__ = [
    "SCORERS",
    "SCORERS_BY_ANSWER",
    "ScoreContext",
    "ScoreState",
    "Scorer",
    "score_class",
    "score_grounding",
    "score_judge",
    "score_masks",
    "score_text",
    "score_yes_no",
    "scorer_tasks",
]
