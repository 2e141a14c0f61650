"""The training part of ``make demo``: a short run of the tiny config, predictions on the bench, a score."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run_train_demo(
    build_dir: str | Path, out_dir: str | Path, steps: int = 60, progress: bool = True, overrides: tuple[str, ...] = ()
) -> dict:
    """Train ``modeling/configs/tiny-cpu.yaml`` for ``steps`` steps on ``build_dir`` (about a minute on
    2 cores), predict ``build_dir/bench.parquet`` and score it. Writes ``out_dir/{ckpt, predictions.parquet,
    report/}``; returns the main metrics."""
    from fifa.benchmarks.scoring import score

    from .config import load_config
    from .submit import predict_bench
    from .train import train

    build, out = Path(build_dir), Path(out_dir)
    cfg = load_config(
        Path(__file__).parent / "configs" / "tiny-cpu.yaml",
        [f"train.max_steps={steps}", f"train.save_every={steps}", "eval.at_end=false", *overrides],
    )
    summary = train(cfg, build, out / "ckpt", progress=progress)
    bench = build / "bench.parquet"
    preds = out / "predictions.parquet"
    predict_bench(out / "ckpt", bench, preds, progress=progress)
    report = score(bench, preds, bootstrap=0, meteor=False)
    report.write(out / "report")
    metrics = report.main_metrics()
    log.info("train demo: %d steps, bench %s", summary["steps"], metrics)
    return {"steps": summary["steps"], "metrics": metrics, "report": str(out / "report" / "report.json")}
