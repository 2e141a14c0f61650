"""The baseline learns (CI size): the real chain (forge -> annotate -> build) -> train -> predict -> score.

The full target (det acc >= 0.9, loc gIoU >= 0.5 on held-out identities, the shipped tiny config) is
the benchmark's (`scripts/bench_train.py`). Here the micro model trains for about half a minute and
must clear bars that the same model with its random initial weights fails: forgery detection on
identities it never saw, masks that overlap the artifacts, region answers in the words of the
references, and region-query verdicts (yes / no) right well above the majority verdict.
The other tasks' targets (cls, age) are the CPU benchmark's (`modeling/configs/cpu-bench.yaml`, docs/train.md).
"""

from __future__ import annotations

from micro_config import MICRO

from fifa.benchmarks.metrics_verdict import verdict_accuracy, verdict_of
from fifa.benchmarks.scoring import score
from fifa.modeling.config import load_config
from fifa.modeling.submit import predict_bench
from fifa.modeling.train import train

STEPS = 800
#: The micro model at 64 px: colour and noise traces survive the downscale there, not at 32 px.
AT_64 = ("model.image_size=64", "heads.mask_size=64")


def _rq_verdicts(build, predictions) -> tuple[float, float]:
    """(accuracy of the yes / no of the region-query answers, share of the majority verdict among the references)."""
    import pandas as pd

    b = pd.read_parquet(build / "bench.parquet", columns=["question_id", "task", "answer"])
    b = b[b.task.str.startswith("rq_")]
    pred = pd.read_parquet(predictions, columns=["question_id", "answer"])
    answer = dict(zip(pred.question_id, pred.answer))
    refs = [verdict_of(a) for a in b.answer]
    majority = max(refs.count("yes"), refs.count("no")) / len(refs)
    return verdict_accuracy(b.answer.tolist(), [answer.get(q) for q in b.question_id]), majority


def _run(build, out, tiny_cfg_path, steps, *extra):
    cfg = load_config(
        tiny_cfg_path,
        [
            *MICRO,
            *AT_64,
            f"train.max_steps={steps}",
            f"train.save_every={max(steps, 1)}",
            "train.log_every=50",
            "train.warmup_steps=10",
            "predict.max_new_tokens=20",
            *extra,
        ],
    )
    train(cfg, build, out / "ck", progress=False)
    predict_bench(out / "ck", build / "bench.parquet", out / "p.parquet", progress=False)
    tasks = score(build / "bench.parquet", out / "p.parquet", bootstrap=0, meteor=False, use_java=False).tasks
    tasks["rq_verdict"], tasks["rq_majority"] = _rq_verdicts(build, out / "p.parquet")
    return tasks


def test_tiny_baseline_learns_beyond_its_random_weights(chain_build, tmp_path, tiny_cfg_path):
    # the random weights answer unguided: what the model itself writes (guided, even random heads open an rq
    # answer with "Yes" / "No", which the references share)
    untrained = _run(chain_build, tmp_path / "r", tiny_cfg_path, 0, "predict.verdicts=text")
    trained = _run(chain_build, tmp_path / "t", tiny_cfg_path, STEPS)
    assert trained["det"]["n"] >= 40 and trained["loc"]["n"] >= 40  # enough held-out questions to mean something
    # random weights: chance detection, empty masks, no text overlap with the references
    assert untrained["det"]["auc"] < 0.65 and untrained["det"]["acc"] < 0.6
    assert untrained["loc"]["ciou"] < 0.05 and untrained["rq_box"]["rouge_l"] < 0.05
    # trained: forgeries found on unseen identities (answers agree with the scores), masks that overlap the
    # artifacts, region answers in the references' words
    assert trained["det"]["auc"] >= 0.8 and trained["det"]["acc"] >= 0.7
    assert trained["loc"]["ciou"] >= 0.3 and trained["loc"]["giou"] > untrained["loc"]["giou"]
    assert trained["rq_box"]["rouge_l"] >= 0.2
    # region queries (the query head guides the yes / no): right well above always answering the majority verdict
    assert trained["rq_verdict"] >= trained["rq_majority"] + 0.1 and trained["rq_verdict"] > untrained["rq_verdict"]


def test_train_demo_function(small_build, tmp_path):
    """What `make demo` calls after the build: train, predict the bench, score."""
    from fifa.modeling.demo import run_train_demo

    out = run_train_demo(
        small_build, tmp_path / "demo", steps=3, progress=False, overrides=(*MICRO, "predict.max_new_tokens=8")
    )
    assert (
        out["steps"] == 3 and "det/auc" in out["metrics"] and (tmp_path / "demo" / "report" / "report.json").is_file()
    )
