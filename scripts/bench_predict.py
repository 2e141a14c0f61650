#!/usr/bin/env python
"""`fifa-train predict` speed: questions/s of the tiny config on a held-out bench, this checkout against another.

1. A build (forged lfw faces, held-out identities; tests/testkit/build_fixture.py) and a tiny-config
   checkpoint trained on it (``--steps``), both cached under ``--work``.
2. The prediction loop (``Predictor`` + ``predict_rows``, what ``fifa-train predict`` runs per shard) over the
   first ``--questions`` bench questions, timed without the model load, in a child process per run,
   alternating this checkout and ``--before PYTHON`` (an interpreter
   whose ``fifa`` is another commit, e.g. a venv with the old commit installed editable) ``--repeats`` times.
3. Prints questions/s of each, their ratio, and whether answers, scores and masks agree.

    python scripts/bench_predict.py --work bench_predict_out --before /tmp/oldvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchkit import describe, machine, testkit

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "modeling" / "configs" / "tiny-cpu.yaml"


def _prepare(work: Path, steps: int) -> tuple[Path, Path]:
    build, ck = work / "build", work / "ck"
    if not (build / "bench.parquet").is_file():
        fixture = testkit("build_fixture")
        fixture.make_build(build, n=160, seed=3, faces=fixture.lfw_faces(work / "lfw", n=100, size=128))
    if not (ck / "adapter").is_dir():
        from fifa.modeling.config import load_config
        from fifa.modeling.train import train

        train(load_config(TINY, [f"train.max_steps={steps}", f"train.save_every={steps}"]), build, ck, progress=False)
    return build, ck


CHILD = """
import json, os, sys, time
from pathlib import Path
import pyarrow.parquet as pq, torch
from fifa.modeling.loading import from_checkpoint
from fifa.modeling.predict import Predictor, bench_resolver, predict_rows
# the bench's rows as this checkout's predictor reads them: BenchQuestion records (dicts before #21)
typed = "BenchQuestion" in str(predict_rows.__annotations__.get("rows"))
ck, bench, out, n, in_order = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
loaded = from_checkpoint(ck)
c = loaded.cfg
model = loaded.model.eval()
pred = Predictor(model, loaded.tokenizer, loaded.fam, torch.device("cpu"), c.predict.max_new_tokens, c.heads.det_score,
                 c.predict.verdicts)
table = pq.read_table(bench).slice(0, n)
if typed:
    from fifa.core.records import BenchQuestion
rows = BenchQuestion.from_arrow(table) if typed else table.to_pylist()
resolve = bench_resolver(bench)
t, cpu = time.perf_counter(), sum(os.times()[:2])
bs = c.predict.batch_size
with torch.no_grad():  # in_order: batches in bench order, whatever predict_rows does
    res = ([r for i in range(0, len(rows), bs) for r in pred(rows[i:i + bs], resolve)] if in_order
           else predict_rows(pred, rows, resolve, bs))
seconds, cpu = time.perf_counter() - t, sum(os.times()[:2]) - cpu
out.write_text("".join(json.dumps({k: r[k] for k in ("question_id", "answer", "score", "masks")}) + "\\n" for r in res))
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "questions": len(res)}))
"""


def _child(python: str, ck: Path, bench: Path, out: Path, n: int, in_order: bool) -> dict:
    """Questions/s of the prediction loop alone (model loaded first, not timed), in a process of its own."""
    p = subprocess.run(
        [python, "-c", CHILD, str(ck), str(bench), str(out), str(n), str(int(in_order))],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "2", "PATH": ""},
    )
    if p.returncode != 0:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def _older_copy(ck: Path) -> Path:
    """The checkpoint with the config keys added since (their defaults) left out, for an older checkout."""
    import shutil

    old = ck.with_name(ck.name + "_older")
    if not old.is_dir():
        shutil.copytree(ck, old, ignore=shutil.ignore_patterns("checkpoint-*"))
        lines = (old / "config.yaml").read_text().splitlines()
        (old / "config.yaml").write_text("\n".join(x for x in lines if "sam_model:" not in x) + "\n")
    return old


def _agreement(a: Path, b: Path) -> dict:
    ra = {r["question_id"]: r for r in map(json.loads, a.read_text().splitlines())}
    rb = {r["question_id"]: r for r in map(json.loads, b.read_text().splitlines())}
    same_answer = sum(ra[q]["answer"] == rb[q]["answer"] for q in ra)
    same_masks = sum(ra[q].get("masks") == rb[q].get("masks") for q in ra)
    score_diff = max([abs(ra[q]["score"] - rb[q]["score"]) for q in ra if ra[q].get("score") is not None] or [0.0])
    return {"questions": len(ra), "same_answers": same_answer, "same_masks": same_masks, "max_score_diff": score_diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("bench_predict_out"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--questions", type=int, default=456)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--before", default=None, help="python of the other checkout (omit: this checkout only)")
    ap.add_argument("--in-order", action="store_true", help="batches in bench order (no batching by task)")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    build, ck = _prepare(a.work, a.steps)
    runs = {"after": sys.executable, **({"before": a.before} if a.before else {})}
    cks = {"after": ck, "before": _older_copy(ck)} if a.before else {"after": ck}
    times: dict[str, list[float]] = {k: [] for k in runs}
    per_cpu: dict[str, list[float]] = {k: [] for k in runs}  # questions per CPU second: steadier under load
    for _ in range(a.repeats):
        for name, python in runs.items():
            out = a.work / f"{name}.jsonl"
            for f in (out, out.with_name(out.name + ".parts")):
                subprocess.run(["rm", "-rf", str(f)])
            r = _child(python, cks[name], build / "bench.parquet", out, a.questions, a.in_order)
            times[name].append(r["questions"] / r["seconds"])
            per_cpu[name].append(r["questions"] / r["cpu_seconds"])
    result = {
        "machine": describe(machine()),
        "questions": a.questions,
        "in_order": a.in_order,
        "questions_per_s": {k: max(v) for k, v in times.items()},
        "runs": times,
        "questions_per_cpu_s": {k: max(v) for k, v in per_cpu.items()},
        "cpu_runs": per_cpu,
        "date": time.strftime("%Y-%m-%d"),
    }
    if a.before:
        result["ratio"] = result["questions_per_s"]["after"] / result["questions_per_s"]["before"]
        result["cpu_ratio"] = result["questions_per_cpu_s"]["after"] / result["questions_per_cpu_s"]["before"]
        result["agreement"] = _agreement(a.work / "after.jsonl", a.work / "before.jsonl")
    (a.work / "bench_predict.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
