"""The baseline learns (CI size): forged faces -> build -> train the tiny config -> predict -> score.

The full target (det acc >= 0.9, loc gIoU >= 0.5 on held-out identities) is the benchmark's
(`scripts/bench_train.py`); this version trains the micro-sized tiny model for about a minute and asks for a bar that the same model
with its random initial weights fails: answers in the trained format for every task, detection and
region answers that parse, text close to the references.
"""

from __future__ import annotations

from conftest import MICRO
from fifa.benchmarks.scoring import score
from fifa.modeling.config import load_config
from fifa.modeling.submit import predict_bench
from fifa.modeling.train import train

STEPS = 60


def _run(build, out, tiny_cfg_path, steps):
    cfg = load_config(tiny_cfg_path, [*MICRO, f"train.max_steps={steps}", f"train.save_every={max(steps, 1)}",
                                      "train.log_every=10", "train.warmup_steps=5", "predict.max_new_tokens=20"])
    train(cfg, build, out / "ck", progress=False)
    predict_bench(out / "ck", build / "bench.parquet", out / "p.parquet", progress=False)
    return score(build / "bench.parquet", out / "p.parquet", bootstrap=0, meteor=False, use_java=False).tasks


def test_tiny_baseline_learns_beyond_its_random_weights(small_build, tmp_path, tiny_cfg_path):
    untrained = _run(small_build, tmp_path / "r", tiny_cfg_path, 0)
    trained = _run(small_build, tmp_path / "t", tiny_cfg_path, STEPS)
    text = ("age", "rq_box", "rq_mask")
    # random weights: unparseable verdicts, no text overlap
    assert untrained["det"]["acc"] < 0.2 and max(untrained[t]["rouge_l"] for t in text) < 0.2
    assert trained["det"]["acc"] >= 0.45  # every answer a yes/no verdict (the bench is about half fake)
    assert trained["cls"]["acc"] >= 0.45
    assert min(trained[t]["rouge_l"] for t in text) >= 0.5
    assert trained["loc"]["giou"] >= untrained["loc"]["giou"]
