"""The baseline learns (CI size): forged faces -> build -> train the tiny config -> predict -> score.

The full target (det acc >= 0.9, loc gIoU >= 0.5 on held-out identities) is the benchmark's
(`scripts/bench_train.py`); this version trains the micro-sized tiny model for about a minute and
asks for a bar that the same model with its random initial weights fails: detection answers that are
all verdicts, classes that all parse, region answers in the words of the references. (Forgery detection itself needs the benchmark's budget.)
"""

from __future__ import annotations

from micro_config import MICRO
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
    rep = score(build / "bench.parquet", out / "p.parquet", bootstrap=0, meteor=False, use_java=False)
    return rep.tasks, rep.meta["tasks"]


def test_tiny_baseline_learns_beyond_its_random_weights(small_build, tmp_path, tiny_cfg_path):
    untrained, u_meta = _run(small_build, tmp_path / "r", tiny_cfg_path, 0)
    trained, t_meta = _run(small_build, tmp_path / "t", tiny_cfg_path, STEPS)
    text = ("rq_box", "rq_mask")
    n_det, n_cls = trained["det"]["n"], trained["cls"]["n"]
    # random weights: answers that are no verdict and no class, no text overlap with the references
    assert u_meta["det"]["unparsed"] >= 0.8 * n_det and u_meta["cls"]["unparsed"] >= 0.5 * n_cls
    assert untrained["det"]["acc"] < 0.2 and max(untrained[t]["rouge_l"] for t in text) < 0.2
    # trained: every det answer a verdict and every cls answer a class, region answers in the references' words
    assert t_meta["det"]["unparsed"] == 0 and t_meta["cls"]["unparsed"] == 0
    assert trained["det"]["acc"] >= 0.35 and trained["cls"]["acc"] >= 0.35
    assert min(trained[t]["rouge_l"] for t in text) >= 0.5


def test_train_demo_function(small_build, tmp_path):
    """What `make demo` calls after the build: train, predict the bench, score."""
    from fifa.modeling.demo import run_train_demo

    out = run_train_demo(small_build, tmp_path / "demo", steps=3, progress=False,
                         overrides=(*MICRO, "predict.max_new_tokens=8"))
    assert out["steps"] == 3 and "det/auc" in out["metrics"] and (tmp_path / "demo" / "report" / "report.json").is_file()
