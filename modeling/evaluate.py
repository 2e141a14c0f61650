"""Periodic evaluation: validation rows as an in-memory bench, predicted and scored by the scoring API."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fifa.core.marks import strip as to_plain
from fifa.core.records import BenchQuestion

from .data import InstructData
from .predict import Predictor, predict_rows

log = logging.getLogger(__name__)


def _absolute(image: dict | None, data: InstructData) -> dict | None:
    """Image paths made absolute (an in-memory bench has no folder to resolve them against)."""
    if image is None or image.get("bytes") or not image.get("path"):
        return image
    return {"bytes": None, "path": str(data.resolve_image(image).resolve())}


def validation_bench(data: InstructData, max_questions: int) -> pd.DataFrame:
    """``max_questions`` validation rows (a fixed seeded sample, so every evaluation asks the same) in bench
    form: question = last user turn before the first answer, answer = that answer as plain text, earlier turns
    as history."""
    rows = []
    ids = [str(x) for x in data.rows.column("id")]
    by_id = sorted(range(len(data)), key=ids.__getitem__)  # storage order must not matter
    order = [by_id[i] for i in np.random.default_rng(0).permutation(len(by_id))]
    for i in order:
        r = data.rows.row(i)
        msgs = r.get("messages") or []
        k = next((j for j, m in enumerate(msgs) if m["role"] == "assistant"), None)
        if k is None or k == 0:
            continue
        rows.append(
            dict(
                question_id=str(r["id"]),
                sample_id=r.get("sample_id"),
                task=r.get("task"),
                image=_absolute(r.get("image"), data),
                question=msgs[k - 1]["content"],
                answer=to_plain(msgs[k]["content"]),
                label=r.get("label"),
                method=r.get("method"),
                category=r.get("category"),
                masks=list(r.get("masks") or []),
                mask_phrases=list(r.get("mask_phrases") or []),
                query_mask=r.get("query_mask"),
                query_box=r.get("query_box"),
                history=[dict(role=m["role"], content=m["content"]) for m in msgs[: k - 1]],
            )
        )
        if len(rows) >= max_questions:
            break
    return pd.DataFrame(rows)


def bench_questions(frame: pd.DataFrame) -> list[BenchQuestion]:
    """The rows of an in-memory bench as the predictor reads a bench's: typed questions (pandas' missing values,
    NaN in its string columns, back to None)."""
    return [
        BenchQuestion.from_row({k: None if isinstance(v, float) and v != v else v for k, v in r.items()})
        for r in frame.to_dict("records")
    ]


def predict_share(
    model,
    tok,
    fam,
    device,
    data: InstructData,
    cfg,
    precision,
    rank: int = 0,
    world: int = 1,
    bench: pd.DataFrame | None = None,
) -> list[dict]:
    """Submission rows of this rank's share (every ``world``-th question) of the validation bench."""
    bench = validation_bench(data, cfg.eval.max_questions) if bench is None else bench
    if bench.empty:
        return []
    share = bench_questions(bench.iloc[rank::world])
    was = model.training
    model.eval()
    try:
        pred = Predictor(
            model,
            tok,
            fam,
            device,
            cfg.predict.max_new_tokens,
            cfg.heads.det_score,
            cfg.predict.verdicts,
            precision,
            cfg.predict.region_masks,
            cfg.predict.mark_source,
        )
        rows = predict_rows(pred, share, data.resolve_image, cfg.predict.batch_size)
    finally:
        model.train(was)
    return [{k: r[k] for k in ("question_id", "answer", "score", "masks")} for r in rows]


def score_predictions(bench: pd.DataFrame, rows: list[dict]) -> dict[str, float]:
    """Main metrics of each task, e.g. ``{"det/acc": 0.9, "loc/giou": 0.6}``, for the gathered predictions."""
    from fifa.benchmarks.scoring import score

    if bench.empty or not rows:
        return {}
    rep = score(bench, pd.DataFrame(rows), bootstrap=0, meteor=False, use_java=False)
    out = {}
    for task, metrics in rep.tasks.items():
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and k != "n" and v is not None:
                out[f"{task}/{k}"] = float(v)
    return out


def evaluate(model, tok, fam, device, data: InstructData, cfg, precision=None) -> dict[str, float]:
    """One process: predict the whole validation bench and score it."""
    bench = validation_bench(data, cfg.eval.max_questions)
    return score_predictions(bench, predict_share(model, tok, fam, device, data, cfg, precision, bench=bench))
