"""``score(bench, submission) -> Report``: validation, metrics, breakdowns, CIs.

Main metric of each task (bootstrap CI, per-method / per-category bars):
``det`` auc (acc when auc is undefined), ``cls`` acc, text tasks rouge_l,
``loc`` and ``age`` giou. The grounding metrics of ``age`` and ``judge_mean`` get their own
bootstrap CIs (``_meta.tasks[task].cis``).
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from typing import Any, Callable

import numpy as np
from sklearn.metrics import roc_curve

import fifa
from fifa.core.marks import strip_submitted
from fifa.core.tasks import MASK_TASKS, TASKS, TEXT_TASKS

from .bench import Bench, load_bench
from .bootstrap import LEVEL, bootstrap_auc, bootstrap_mean, bootstrap_ratio, interval, task_rng
from .metrics_cls import cls_confusion, cls_metrics
from .metrics_det import det_metrics, ranking_scores
from .metrics_ground import GROUNDING_METRICS, grounding_scores
from .metrics_mask import mask_scores
from .metrics_text import MeteorProcess, java_available, text_scores
from .parsing import class_parser, parse_det
from .report import Report
from .submission import Submission, load_submission

_parse_det_cached = lru_cache(maxsize=200_000)(parse_det)


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


def _ci(stats: np.ndarray, metric: str, resamples: int, seed: int) -> dict | None:
    iv = interval(stats, LEVEL)
    if iv is None:
        return None
    return {"metric": metric, "low": iv[0], "high": iv[1], "level": LEVEL, "resamples": resamples, "seed": seed}


# ------------------------------------------------------------------- tasks
def _score_det(bench, sub, rows, resamples, seed, warnings):
    labels, kept, dropped = [], [], 0
    for i in rows:
        y = bench.label[i]
        if y is None:
            y = parse_det(bench.answer[i])
        if y is None:
            dropped += 1
            continue
        labels.append(y)
        kept.append(i)
    if dropped:
        warnings.append(f"det: {dropped} question(s) without a usable label (label column or answer) were skipped")
    y = np.asarray(labels, dtype=int)
    parsed = [_parse_det_cached(sub.answer[i]) if sub.present[i] and sub.answer[i] is not None else None
              for i in kept]
    sc = ranking_scores(y, parsed, [sub.score[i] if sub.present[i] else None for i in kept])
    metrics, w = det_metrics(y, parsed, sc)
    warnings.extend(f"det: {x}" for x in w)
    correct = np.array([p is not None and p == t for p, t in zip(parsed, y)], dtype=float)
    main = "auc" if metrics["auc"] is not None else "acc"
    tm = {"main_metric": main,
          "missing": sum(not sub.present[i] for i in kept),
          "unparsed": sum(sub.present[i] and p is None for i, p in zip(kept, parsed)),
          "with_score": sum(sub.present[i] and sub.score[i] is not None for i in kept)}
    if resamples and len(kept):
        rng = task_rng(seed, "det")
        stats = bootstrap_auc(y, sc, resamples, rng) if main == "auc" else bootstrap_mean(correct, resamples, rng)
        tm["ci"] = _ci(stats, main, resamples, seed)

    reals = [k for k in range(len(kept)) if y[k] == 0]

    def sub_fn(pos):
        m, _ = det_metrics(y[pos], [parsed[k] for k in pos], sc[pos])
        out = {"acc": m["acc"], "auc": m["auc"]}
        if m["auc"] is None and len(pos) and y[pos].all() and reals:
            # a fake-only group (one method): AUC against all real questions, as in FF++ per-method results
            both = list(pos) + reals
            out["auc"] = det_metrics(y[both], [parsed[k] for k in both], sc[both])[0]["auc"]
        return out

    tm.update(_breakdowns(bench, kept, sub_fn))
    plot = None
    if metrics["auc"] is not None:
        fpr, tpr, _ = roc_curve(y, sc)
        plot = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    return {**metrics, "n": len(kept)}, tm, plot


def _score_cls(bench, sub, rows, resamples, seed, warnings):
    classes = bench.classes()
    parser = class_parser(tuple(classes))
    cache: dict = {}

    def parse(a):
        if a not in cache:
            cache[a] = parser(a)
        return cache[a]

    rows = [i for i in rows if bench.answer[i] is not None]
    refs = [bench.answer[i] for i in rows]
    preds = [parse(sub.answer[i]) if sub.present[i] and sub.answer[i] is not None else None for i in rows]
    metrics = cls_metrics(refs, preds, classes)
    correct = np.array([p == r for p, r in zip(preds, refs)], dtype=float)
    tm = {"main_metric": "acc", "classes": classes,
          "missing": sum(not sub.present[i] for i in rows),
          "unparsed": sum(sub.present[i] and p is None for i, p in zip(rows, preds))}
    if resamples and rows:
        tm["ci"] = _ci(bootstrap_mean(correct, resamples, task_rng(seed, "cls")), "acc", resamples, seed)
    tm.update(_breakdowns(bench, rows, lambda pos: cls_metrics([refs[k] for k in pos], [preds[k] for k in pos],
                                                               classes)))
    plot = {"classes": classes, "matrix": cls_confusion(refs, preds, classes).tolist()} if rows else None
    return {**metrics, "n": len(rows)}, tm, plot


def _score_grounding(bench, sub, rows, metrics, tm, resamples, seed, warnings):
    """grounded_recall / grounded_precision / consistency of ``age`` (what the bench's columns allow)."""
    lacking = {}
    if bench.mask_node_ids is None:
        lacking.update(dict.fromkeys(GROUNDING_METRICS[:2], "the bench has no mask_node_ids"))
    if bench.anchor_masks is None:
        lacking["consistency"] = "the bench has no anchor_masks"
    if lacking:
        tm["not_computed"] = lacking
        warnings.append(f"age: {', '.join(lacking)} not computed: the bench lacks "
                        f"{' and '.join(sorted(set(lacking.values()))).replace('the bench has no ', '')} "
                        "(rebuild it with this version of fifa-data build)")
    if len(lacking) == len(GROUNDING_METRICS):
        return
    gs = grounding_scores([sub.answer[i] if sub.present[i] else None for i in rows],
                          [sub.masks[i] if sub.present[i] else None for i in rows],
                          None if bench.mask_node_ids is None else [bench.mask_node_ids[i] for i in rows],
                          [bench.masks[i] for i in rows],
                          None if bench.anchor_masks is None else [bench.anchor_masks[i] for i in rows])
    summary = gs.summary()
    metrics.update(summary)
    if resamples and rows:
        cis = tm.setdefault("cis", {})
        for k in summary:
            num, den = gs.parts(k)
            cis[k] = _ci(bootstrap_ratio(num, den, resamples, task_rng(seed, f"age/{k}")), k, resamples, seed)
    for key, groups in _breakdowns(bench, rows, lambda pos: gs.subset(pos).summary()).items():
        tgt = tm.setdefault(key, {})
        for name, vals in groups.items():
            tgt.setdefault(name, {}).update(vals)


# ------------------------------------------------------------------- score
def score(bench: Any, submission: Any, *, strict: bool = False, seed: int = 0, bootstrap: int = 1000,
          use_java: bool | None = None, meteor: bool = True, judge: Any = None) -> Report:
    """Score ``submission`` against ``bench`` (paths or DataFrames).

    Raises :class:`~fifa.benchmarks.submission.SubmissionError` for an invalid
    submission and :class:`~fifa.benchmarks.bench.BenchError` for an unusable
    bench.  ``bootstrap=0`` disables confidence intervals; ``use_java=None``
    uses Java (PTB tokenizer, METEOR) when ``java`` is on PATH.  ``meteor=False`` skips METEOR (the
    slowest metric: a JVM start of ~15 s plus a few ms per answer) with a warning, e.g. for frequent
    evaluation during training. ``judge`` (a :class:`~fifa.benchmarks.judge.JudgeConfig` or an open
    :class:`~fifa.benchmarks.judge.Judge`) adds ``judge_mean`` to every text task.
    """
    b = load_bench(bench)
    if isinstance(submission, Submission):  # already validated against this bench (the CLI does that first)
        sub = submission
    else:
        sub = load_submission(submission, b, strict=strict)
    if use_java is None:
        use_java = java_available()
    proc = None
    if use_java and meteor and any(t in TEXT_TASKS for t in b.tasks):
        proc = MeteorProcess()  # the METEOR JVM starts while the other tasks are scored
    try:
        return _score(b, sub, submission, seed, bootstrap, use_java, meteor, proc, judge)
    finally:
        if proc is not None:
            proc.close()


def _score(b, sub, submission, seed, bootstrap, use_java, with_meteor, meteor, judge=None) -> Report:
    warnings: list[str] = []
    tasks: dict[str, dict] = {}
    tmeta: dict[str, dict] = {}
    plot_data: dict = {}
    resamples = max(0, int(bootstrap))

    for t in b.tasks:
        if t not in TASKS:
            warnings.append(f"task {t!r} is unknown: {len(b.rows(t))} question(s) not scored")
    if "det" in b.tasks:
        tasks["det"], tmeta["det"], roc = _score_det(b, sub, b.rows("det"), resamples, seed, warnings)
        if roc:
            plot_data["roc"] = roc
    if "cls" in b.tasks:
        tasks["cls"], tmeta["cls"], cm = _score_cls(b, sub, b.rows("cls"), resamples, seed, warnings)
        if cm:
            plot_data["confusion"] = cm

    # text: every text task in one tokenizer call and one METEOR process
    text_rows = {t: b.rows(t) for t in b.tasks if t in TEXT_TASKS}
    text_in = {t: ([b.answer[i] or "" for i in rows],
                   [strip_submitted(sub.answer[i] or "") if sub.present[i] else "" for i in rows])
               for t, rows in text_rows.items()}
    text_out, w = text_scores(text_in, use_java=use_java, meteor=meteor,
                                        with_meteor=with_meteor) if text_in else ({}, [])
    warnings.extend(w)
    for t, rows in text_rows.items():
        ts = text_out.get(t)
        tasks[t] = {**(ts.summary if ts else {}), "n": len(rows)}
        tm = {"main_metric": "rouge_l", "missing": sum(not sub.present[i] for i in rows)}
        if ts is not None:
            if resamples:
                tm["ci"] = _ci(bootstrap_mean(ts.per_sample["rouge_l"], resamples, task_rng(seed, t)),
                               "rouge_l", resamples, seed)
            per = ts.per_sample
            tm.update(_breakdowns(b, rows, lambda pos, per=per: {
                k: float(per[k][pos].mean()) for k in ("rouge_l", "cider", "meteor") if k in per}))
        tmeta[t] = tm

    judge_meta, judge_rows = None, None
    if judge is not None and text_rows:
        from .scoring_judge import judge_text_tasks

        judge_meta, judge_rows = judge_text_tasks(b, sub, text_rows, judge, tasks, tmeta, resamples, seed,
                                                  warnings, _ci, _breakdowns)

    for t in (t for t in b.tasks if t in MASK_TASKS):
        rows = b.rows(t)
        with_miou = t == "age"
        ms = mask_scores([b.masks[i] for i in rows], [sub.masks[i] for i in rows],
                         [not sub.present[i] for i in rows], with_miou=with_miou)
        tasks.setdefault(t, {}).update(ms.summary(with_miou))
        tasks[t]["n"] = len(rows)
        tm = tmeta.setdefault(t, {"missing": sum(not sub.present[i] for i in rows)})
        tm["main_metric"] = "giou"
        if resamples and rows:
            tm["ci"] = _ci(bootstrap_mean(ms.iou, resamples, task_rng(seed, t)), "giou", resamples, seed)
        mask_groups = _breakdowns(b, rows, lambda pos, ms=ms: ms.subset(pos).summary(with_miou))
        for key, groups in mask_groups.items():
            tgt = tm.setdefault(key, {})
            for name, vals in groups.items():
                tgt.setdefault(name, {}).update(vals)
        no_masks = sum(sub.present[i] and not sub.masks[i] for i in rows if b.masks[i])
        if no_masks:
            tm["answers_without_masks"] = no_masks

    if "age" in b.tasks:
        _score_grounding(b, sub, b.rows("age"), tasks.setdefault("age", {}), tmeta.setdefault("age", {}),
                         resamples, seed, warnings)

    for t in tasks:  # metric keys in a stable order, n last
        n = tasks[t].pop("n")
        tasks[t]["n"] = n
    n_missing = sum(not p for p in sub.present)
    if n_missing:
        warnings.append(f"{n_missing} bench question(s) have no answer in the submission; they count as wrong")
    meta = {
        "bench": str(b.path) if b.path else None,
        "submission": sub.source if sub.source else str(submission) if isinstance(submission, str)
        or hasattr(submission, "__fspath__") else type(submission).__name__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "fifa_version": fifa.__version__,
        "n_questions": len(b),
        "n_answered": len(b) - n_missing,
        "n_missing": n_missing,
        "seed": seed,
        "bootstrap": resamples,
        "ci_level": LEVEL,
        "tokenizer": ("ptb" if use_java else "fallback") if text_in else None,
        "meteor": bool(text_in) and all("meteor" in tasks[t] for t in text_rows),
        "warnings": warnings,
        "tasks": tmeta,
    }
    if judge_meta is not None:
        meta["judge"] = judge_meta
    return Report(tasks=tasks, meta=meta, plot_data=plot_data, judge_scores=judge_rows)
