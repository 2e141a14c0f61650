"""What ``fifa-bench score`` does, as a library: validate the two files, build the judge's config, score, write.

* :func:`validate_inputs`: the bench and the submission, read and validated before the heavier metric
  imports (so a bad file fails fast): ``(Bench, AlignedSubmission)``, or :class:`~fifa.core.errors.UserError`.
* :func:`judge_config`: a :class:`~fifa.benchmarks.judge.JudgeConfig` from the judge options, None without a
  model.
* :func:`score_to_folder`: :func:`fifa.benchmarks.scoring.score` of validated inputs, its report written to
  a folder (``report.json``, ``report.md``, plots, ``judge_scores.jsonl``): ``(Report, path of report.json)``.

Their defaults are read from the configs (:class:`~fifa.benchmarks.score_config.ScoreConfig`,
:class:`~fifa.benchmarks.judge.JudgeConfig`), never written here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fifa.core.errors import UserError

from .bench import Bench, BenchError, load_bench
from .judge import JudgeConfig
from .score_config import ScoreConfig
from .submission import AlignedSubmission, SubmissionError, load_submission

if TYPE_CHECKING:
    from .report import Report


def validate_inputs(
    bench: Path | str, submission: Path | str, *, strict: bool = ScoreConfig.strict
) -> tuple[Bench, AlignedSubmission]:
    """The bench and the submission validated against it; an unusable one is a :class:`UserError`."""
    try:
        b = load_bench(bench)
        return b, load_submission(submission, b, strict=strict)
    except (SubmissionError, BenchError) as e:
        raise UserError(str(e)) from None


def judge_config(
    model: str | None,
    *,
    base_url: str | None = JudgeConfig.base_url,
    max_cost: float | None = JudgeConfig.max_cost,
    concurrency: int = JudgeConfig.concurrency,
    images: bool = JudgeConfig.images,
    price_in: float = JudgeConfig.price_in_per_mtok,
    price_out: float = JudgeConfig.price_out_per_mtok,
    cache_dir: Path | str | None = JudgeConfig.cache_dir,
) -> JudgeConfig | None:
    """The judge of ``model`` (any OpenAI-compatible endpoint), or None when no model is named."""
    if not model:
        return None
    return JudgeConfig(
        model=model,
        base_url=base_url,
        max_cost=max_cost,
        concurrency=concurrency,
        images=images,
        price_in_per_mtok=price_in,
        price_out_per_mtok=price_out,
        cache_dir=str(cache_dir) if cache_dir else None,
    )


def score_to_folder(
    bench: Bench,
    sub: AlignedSubmission,
    out: Path | str,
    *,
    strict: bool = ScoreConfig.strict,
    seed: int = ScoreConfig.seed,
    bootstrap: int = ScoreConfig.bootstrap,
    plots: bool = ScoreConfig.plots,
    meteor: bool = ScoreConfig.meteor,
    judge: Any = None,
) -> tuple[Report, Path]:
    """Scores validated inputs and writes the report to ``out``; returns it and the path of ``report.json``."""
    from .scoring import score

    report = score(bench, sub, strict=strict, seed=seed, bootstrap=bootstrap, meteor=meteor, judge=judge)
    return report, report.write(out, plots=plots)


__all__ = ["judge_config", "score_to_folder", "validate_inputs"]
