#!/usr/bin/env python
"""`fifa-train` benchmark: the baseline must learn, and its speed / memory against a plain HF loop.

1. Data: ``--build DIR`` (an existing build, e.g. the real chain ``fifa-data forge -> fifa-annotate run ->
   fifa-data build``), or, without it, a build made here: ``fifa.annotator.forge`` over scikit-image's
   ``lfw_subset`` (100 faces, upscaled to 128 px) + the two bundled photos, written into
   INSTRUCT/BENCH Parquet by the test fixture writer (``tests/testkit/build_fixture.py``), with held-out
   identities in the bench.
2. Train the config (default ``modeling/configs/tiny-cpu.yaml``) in a child process, predict the bench,
   score it (``fifa.benchmarks.scoring.score``) and print det acc / auc and loc gIoU beside the
   trivial baselines: all-fake, empty mask, whole-face mask (MediaPipe face region).
3. Speed / memory: tokens/s (all sequence tokens, image tokens included) and peak RSS of our loop
   and of a plain Hugging Face ``Trainer`` + peft loop on the same tokenised data and the same tiny
   model without our heads, each in its own child process, same steps and batch size.

Usage: python scripts/bench_train.py [--build DIR] [--work DIR] [--steps N] [--set key=value ...]
       [--speed-steps N] [--skip-learn] [--skip-speed]
Writes WORK/bench_train.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchkit import describe, machine, testkit

ROOT = Path(__file__).resolve().parents[1]


def _make_build(work: Path, n: int, seed: int, all_kinds: bool) -> Path:
    fixture = testkit("build_fixture")
    return fixture.real_chain_build(
        work / ("chain_all" if all_kinds else "chain"),
        n=n,
        seed=seed,
        kinds=None if all_kinds else fixture.VISIBLE_KINDS,
    )


def _child(args: list[str]) -> dict:
    """Run this script in a child process (own peak RSS) and return its JSON result."""
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_gpu_mb() -> float | None:
    """Peak memory the process allocated on the GPU (None without one)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


# --------------------------------------------------------------------------- children
def child_ours(build: str, out: str, config: str, overrides: list[str]) -> dict:
    from fifa.modeling.config import load_config
    from fifa.modeling.logs import read_metrics
    from fifa.modeling.train import train

    cfg = load_config(config, overrides)
    t = time.perf_counter()
    s = train(cfg, build, out, progress=False)
    wall = time.perf_counter() - t
    recs = [r for r in read_metrics(out) if "loss" in r]
    return {
        "wall_s": wall,
        "steps": s["steps"],
        "peak_rss_mb": _peak_rss_mb(),
        "peak_gpu_mb": _peak_gpu_mb(),
        "curve": recs,
        **_rate(recs),
    }


def _rate(recs: list[dict]) -> dict:
    """Tokens/s between the first and the last logged step (setup and the first step's warm-up excluded)."""
    if len(recs) < 2:
        return {}
    a, b = recs[0], recs[-1]
    toks = sum(r["seq_tokens"] for r in recs[1:])
    return {"tokens_per_s": toks / max(b["elapsed_s"] - a["elapsed_s"], 1e-9), "timed_steps": len(recs) - 1}


def child_plain(build: str, out: str, config: str, overrides: list[str]) -> dict:
    """HF Trainer + peft on the same encoded rows (text + image tokens, LM loss only), same tiny model."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from fifa.modeling.collate import Encoder, InstructDataset
    from fifa.modeling.config import load_config
    from fifa.modeling.data import InstructData
    from fifa.modeling.loading import create
    from fifa.modeling.train import training_texts

    cfg = load_config(config, overrides)
    torch.manual_seed(cfg.train.seed)
    data = InstructData(build, "train")
    loaded = create(cfg, list(training_texts(data)), [], None)
    tok, fam = loaded.tokenizer, loaded.fam
    enc = Encoder(tok, fam, [], "category", cfg.heads.mask_size, cfg.data.max_length)
    ds = InstructDataset(data, enc)
    pad = tok.pad_token_id

    def collate(items):
        items = [x for x in items if hasattr(x, "input_ids")]
        L = max(len(x.input_ids) for x in items)
        ids = torch.full((len(items), L), pad)
        lab = torch.full((len(items), L), -100)
        att = torch.zeros((len(items), L), dtype=torch.long)
        for b, x in enumerate(items):
            ids[b, : len(x.input_ids)] = torch.tensor(x.input_ids)
            lab[b, : len(x.labels)] = torch.tensor(x.labels)
            att[b, : len(x.input_ids)] = 1
        return {
            "input_ids": ids,
            "labels": lab,
            "attention_mask": att,
            **fam.batch_pixels([x.pixels for x in items]),
            **fam.text_kwargs(ids),
        }  # Qwen2-VL's M-RoPE needs mm_token_type_ids

    times, toks = [], []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter())

    class Counting(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            toks.append(int(inputs["attention_mask"].sum()))
            return super().training_step(model, inputs, num_items_in_batch)

    from fifa.modeling.loading import device_for, precision_for

    compute = precision_for(loaded, device_for(cfg)).compute  # the same precision as ours (modeling/precision.py)
    bf16, fp16 = compute is torch.bfloat16, compute is torch.float16
    targs = TrainingArguments(
        output_dir=out,
        max_steps=cfg.train.max_steps,
        per_device_train_batch_size=cfg.train.batch_size,
        gradient_accumulation_steps=cfg.train.grad_accum,
        learning_rate=cfg.train.lr,
        warmup_steps=cfg.train.warmup_steps,
        lr_scheduler_type=cfg.train.scheduler,
        logging_steps=cfg.train.log_every,
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=bf16,
        fp16=fp16,
        dataloader_num_workers=cfg.data.num_workers,
        remove_unused_columns=False,
        seed=cfg.train.seed,
        disable_tqdm=True,
    )
    t = time.perf_counter()
    Counting(model=loaded.model.lm, args=targs, train_dataset=ds, data_collator=collate, callbacks=[Clock()]).train()
    wall = time.perf_counter() - t
    rate = sum(toks[1:]) / max(times[-1] - times[0], 1e-9) if len(times) > 1 else None
    return {
        "wall_s": wall,
        "steps": len(times),
        "peak_rss_mb": _peak_rss_mb(),
        "peak_gpu_mb": _peak_gpu_mb(),
        "tokens_per_s": rate,
        "timed_steps": len(times) - 1,
    }


def child_predict(ckpt: str, bench: str, out: str) -> dict:
    from fifa.modeling.submit import predict_bench

    t = time.perf_counter()
    s = predict_bench(ckpt, bench, out, progress=False)
    return {"wall_s": time.perf_counter() - t, "questions": s.total, "failed": s.failed, "peak_rss_mb": _peak_rss_mb()}


# --------------------------------------------------------------------------- scoring
def trivial_submissions(bench_path: Path):
    """all-fake (det), empty mask and whole-face mask (loc/age) submissions."""
    import numpy as np
    import pandas as pd

    from fifa.concept_tree.imageio import load_rgb
    from fifa.concept_tree.segmentation.segment import Segmenter
    from fifa.core import rle
    from fifa.pipelines.buildinfo import build_image_root

    b = pd.read_parquet(bench_path)
    root = build_image_root(bench_path.parent)
    fake = pd.DataFrame({"question_id": b.question_id, "answer": "Yes, it is fake.", "score": 1.0})
    empty = pd.DataFrame({"question_id": b.question_id, "answer": "", "masks": [[] for _ in range(len(b))]})
    faces = []
    with Segmenter() as seg:
        cache: dict = {}
        for img in b.image:
            key = img["path"] or id(img["bytes"])
            if key not in cache:
                rgb = load_rgb(img["bytes"] or (root / img["path"]))
                r = seg.segment(rgb)
                m = r.mask("face") if r.ok else np.ones(rgb.shape[:2], bool)
                cache[key] = [rle.encode(m.astype(bool))]
            faces.append(cache[key])
    face = pd.DataFrame({"question_id": b.question_id, "answer": "", "masks": faces})
    # "No." to every question and "real" to cls: the majority verdict of region queries (most queries are negative)
    no = pd.DataFrame(
        {
            "question_id": b.question_id,
            "answer": ["real" if t == "cls" else "No." for t in b.task],
            "score": 0.0,
            "masks": [[] for _ in range(len(b))],
        }
    )
    return {"all-fake": fake, "empty mask": empty, "whole-face mask": face, "all-no / real": no}


def headline(report, bench_path: Path, submission) -> dict:
    """The figures of docs/train.md's table: the scorer's, plus the region-query verdict accuracy and the share of
    fake images whose age answer names a right anchor (fifa.benchmarks.metrics_verdict)."""
    import pandas as pd

    from fifa.benchmarks.metrics_verdict import anchor_named_rate, verdict_accuracy

    t = report.tasks
    out = {}
    for task, keys in (
        ("det", ("acc", "auc")),
        ("cls", ("acc", "macro_f1")),
        ("loc", ("giou", "ciou")),
        ("age", ("giou", "ciou", "grounded_recall", "rouge_l")),
        ("rq_box", ("rouge_l",)),
    ):
        for k in keys:
            if task in t and t[task].get(k) is not None:
                out[f"{task}/{k}"] = round(float(t[task][k]), 4)
    b = pd.read_parquet(bench_path, columns=["question_id", "task", "answer", "mask_node_ids"])
    sub = submission if isinstance(submission, pd.DataFrame) else pd.read_parquet(submission)
    answer = dict(zip(sub.question_id.astype(str), sub.answer))
    got = [answer.get(str(q)) for q in b.question_id]
    rq = b.task.str.startswith("rq_").to_numpy()
    out["rq/verdict_acc"] = round(verdict_accuracy(b.answer[rq].tolist(), [g for g, r in zip(got, rq) if r]) or 0, 4)
    age = (b.task == "age").to_numpy()
    named = anchor_named_rate([g for g, r in zip(got, age) if r], [list(x) for x in b.mask_node_ids[age]])
    out["age/anchor_named"] = round(named or 0, 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", type=Path, help="an existing build folder (default: make one from lfw_subset)")
    ap.add_argument("--work", type=Path, default=Path("bench_train_out"))
    ap.add_argument("--config", default=str(ROOT / "modeling/configs/tiny-cpu.yaml"), help="training config")
    ap.add_argument("--n", type=int, default=600, help="fakes to forge when making the build")
    ap.add_argument(
        "--all-kinds",
        action="store_true",
        help="forge every edit kind (default: the kinds a single image shows, see VISIBLE_KINDS)",
    )
    ap.add_argument("--steps", type=int, help="training steps (default: the config's train.max_steps)")
    ap.add_argument("--speed-steps", type=int, default=40)
    ap.add_argument("--speed-repeats", type=int, default=1, help="ours/plain pairs, alternated (the median ratio)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--skip-learn", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        fn = {"ours": child_ours, "plain": child_plain, "predict": child_predict}[kind]
        res = fn(*rest[:3], rest[3:]) if kind != "predict" else fn(*rest)
        print(json.dumps(res))
        return
    import shutil

    a.work.mkdir(parents=True, exist_ok=True)
    build = a.build or _make_build(a.work, a.n, 0, a.all_kinds)
    result = {
        "machine": describe(machine(gpu=True)),
        "load_before": os.getloadavg(),
        "config": a.config,
        "overrides": a.overrides,
        "build": str(build),
    }
    if not a.skip_learn:
        ck = a.work / "ckpt"
        shutil.rmtree(ck, ignore_errors=True)
        steps = [f"train.max_steps={a.steps}", f"train.save_every={a.steps}"] if a.steps else []
        tr = _child(["--child", "ours", str(build), str(ck), a.config, *steps, "train.log_every=10", *a.overrides])
        pr = _child(["--child", "predict", str(ck), str(build / "bench.parquet"), str(a.work / "preds.parquet")])
        from fifa.benchmarks.scoring import score

        bench = build / "bench.parquet"
        rep = score(bench, a.work / "preds.parquet", bootstrap=0, meteor=False)
        rep.write(a.work / "report")
        result["learn"] = {
            "train": {k: v for k, v in tr.items() if k != "curve"},
            "predict": pr,
            "ours": headline(rep, bench, a.work / "preds.parquet"),
            "curve": [
                {k: r[k] for k in ("step", "loss", "lm", "mask_dice", "det", "cls", "query", "marks") if k in r}
                for r in tr["curve"]
            ],
        }
        for name, sub in trivial_submissions(bench).items():
            result["learn"][name] = headline(score(bench, sub, bootstrap=0, meteor=False), bench, sub)
    if not a.skip_speed:
        sp = [
            f"train.max_steps={a.speed_steps}",
            "train.log_every=1",
            f"train.save_every={a.speed_steps}",
            "eval.at_end=false",
            *a.overrides,
        ]
        pairs = []
        for _ in range(a.speed_repeats):  # alternated, so that load on a shared machine hits both alike
            shutil.rmtree(a.work / "speed_ours", ignore_errors=True)
            ours = _child(["--child", "ours", str(build), str(a.work / "speed_ours"), a.config, *sp])
            plain = _child(["--child", "plain", str(build), str(a.work / "speed_plain"), a.config, *sp])
            ours.pop("curve", None)
            pairs.append((ours, plain))
        ratios = sorted(o["tokens_per_s"] / p["tokens_per_s"] for o, p in pairs)
        ours, plain = pairs[-1]
        result["speed"] = {
            "ours": ours,
            "plain": plain,
            "tokens_per_s_ratio": ratios[len(ratios) // 2],
            "tokens_per_s_ratios": ratios,
            "peak_rss_ratio": ours["peak_rss_mb"] / plain["peak_rss_mb"],
        }
        if ours.get("peak_gpu_mb") and plain.get("peak_gpu_mb"):
            result["speed"]["peak_gpu_ratio"] = ours["peak_gpu_mb"] / plain["peak_gpu_mb"]
    result["load_after"] = os.getloadavg()
    (a.work / "bench_train.json").write_text(json.dumps(result, indent=1))
    _print(result)


def _print(r: dict) -> None:
    print(f"machine: {r['machine']}; load {r['load_before']} -> {r['load_after']}")
    if "learn" in r:
        L = r["learn"]
        keys = list(L["ours"])
        print(f"{'':18}" + "".join(f"{k:>16}" for k in keys))
        for name in ("ours", "all-fake", "empty mask", "whole-face mask", "all-no / real"):
            print(f"{name:18}" + "".join(f"{L[name].get(k, float('nan')):>16.3f}" for k in keys))
        print(
            f"train: {L['train']['steps']} steps in {L['train']['wall_s']:.0f} s; predict {L['predict']['questions']} "
            f"questions in {L['predict']['wall_s']:.0f} s"
        )
    if "speed" in r:
        s = r["speed"]
        for k in ("ours", "plain"):
            gpu = f"  peak GPU {s[k]['peak_gpu_mb']:7.0f} MB" if s[k].get("peak_gpu_mb") else ""
            print(f"{k:6} tokens/s {s[k]['tokens_per_s']:8.0f}  peak RSS {s[k]['peak_rss_mb']:7.0f} MB{gpu}")
        runs = ", ".join(f"{x:.2f}" for x in s.get("tokens_per_s_ratios", []))
        print(
            f"ratio ours/plain: tokens/s {s['tokens_per_s_ratio']:.2f} (median of {runs}), "
            f"peak RSS {s['peak_rss_ratio']:.2f}"
        )


if __name__ == "__main__":
    main()
