"""How ``fifa-bench score`` scores: one frozen config, the home of its defaults.

:class:`ScoreConfig` holds the scoring options that are no judge's (those are
:class:`~fifa.benchmarks.judge.JudgeConfig`'s): :func:`fifa.benchmarks.scoring.score`,
:func:`fifa.benchmarks.score_run.score_to_folder` and the options of ``fifa-bench score`` (generated from it by
:mod:`fifa.cli_options`) read their defaults here. Kept free of heavy imports: the CLI reads it when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScoreConfig"]


@dataclass(frozen=True)
class ScoreConfig:
    """Options of a scoring run (``fifa-bench score``'s ``--strict``, ``--seed``, ``--bootstrap``, ...)."""

    strict: bool = False  # refuse a submission that misses bench questions
    seed: int = 0  # seed of the bootstrap
    bootstrap: int = 1000  # resamples for the confidence intervals (0 disables them)
    plots: bool = True  # write the PNG plots next to the report
    meteor: bool = True  # score METEOR (the slowest metric; skipped with a warning)
