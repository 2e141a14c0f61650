"""Conformance with the published files of every supported base (Qwen2-VL, Qwen2.5-VL, LLaVA-1.5): the flat
config.json, the real tokenizer and chat template, random shrunk weights (tests/modeling/real_bases.py).

What each test guards (the defects a user met with the shipped recipes):
- prompts: llava-hf's template renders only typed content (string content gave 'USER: ASSISTANT: ');
- the recipes' bf16 weights: training, evaluation and prediction under one precision policy;
- `train_embeddings: new` on the flat Qwen config (tie_word_embeddings only on the top level);
- trained parameters are fp32 master weights over a bf16/fp16 base (fp16 gradients could not be unscaled);
- the checkpoint of a step is written before its evaluation, and a failed evaluation loses nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from real_bases import TURN_END, make_base, recipe, recipe_overrides

from fifa.core.marks import render_glamm as to_glamm
from fifa.modeling.collate import Collator, Encoder
from fifa.modeling.config import load_config
from fifa.modeling.data import InstructData
from fifa.modeling.loading import create
from fifa.modeling.logs import read_metrics
from fifa.modeling.vocab import classes_of

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "llava"]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("real_bases")
    return {f: make_base(f, root / f) for f in FAMILIES}


def _loaded(family: str, base: Path, build: Path, *extra: str):
    cfg = load_config(recipe(family), [*recipe_overrides(family, base), *extra])
    return create(cfg, None, classes_of(InstructData(build), cfg), None), cfg


def test_base_keeps_the_published_flat_config(bases):
    cfg = json.loads((bases["qwen2_vl"] / "config.json").read_text())
    assert "text_config" not in cfg and cfg["tie_word_embeddings"] is True and cfg["vocab_size"] == 151936
    assert cfg["hidden_size"] == 64 and cfg["vision_config"]["depth"] == 1  # shrunk in place, still flat


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_holds_image_question_and_answer_and_labels_only_the_answer(family, bases, small_build):
    loaded, cfg = _loaded(family, bases[family], small_build)
    tok, fam = loaded.tokenizer, loaded.fam
    data = InstructData(small_build)
    enc = Encoder(tok, fam, loaded.model.heads.classes, "category", 32, 400)
    for task in ("det", "age"):
        i = next(i for i in range(len(data)) if data.tasks[i] == task and data.rows.row(i)["label"] == "fake")
        row = data.rows.row(i)
        ex = enc(row, data.resolve_image)
        text = tok.decode(ex.input_ids, skip_special_tokens=False)
        question = row["messages"][0]["content"].replace("<image>", "").strip()
        assert question in text, text[-300:]
        assert ex.input_ids.count(fam.image_token_id) == fam.n_image_tokens
        labelled = [t for t in ex.labels if t != -100]
        assert ex.labels[: ex.prompt_end + 1] == [-100] * (ex.prompt_end + 1) and ex.labels[ex.prompt_end + 1] != -100
        answer = to_glamm(row["messages"][1]["content"])
        if task == "age":
            answer += " [SEG]" * (len(row["masks"]) - answer.count("[SEG]"))
        # whitespace aside (Llama's tokenizer puts a word-start mark after every special token), the labelled
        # tokens are the answer and the token that ends it, nothing of the prompt
        got = tok.decode(labelled, skip_special_tokens=False)
        assert "".join(got.split()) == "".join((answer + TURN_END[family]).split()), got
        assert got.strip().startswith(answer.split()[0])
        assert labelled.count(loaded.model.seg_id) == len(ex.masks) == answer.count("[SEG]")
    if family == "llava":  # llava-hf's own template: no system prompt, USER/ASSISTANT turns
        assert text.replace(" ", "").startswith("<s>USER:<image>")
    else:  # Qwen's template adds its default system turn
        assert "<|im_start|>system\nYou are a helpful assistant.<|im_end|>" in text


def test_fallback_template_is_llava_1_5_with_the_vicuna_system_prompt(bases, small_build):
    from fifa.modeling.examples import VICUNA_SYSTEM, chat_text

    loaded, _ = _loaded("llava", bases["llava"], small_build)
    tok = loaded.tokenizer
    tok.chat_template = None
    msgs = [{"role": "user", "content": "<image>\nIs this face forged?"}, {"role": "assistant", "content": "Yes."}]
    text = chat_text(tok, loaded.fam, msgs, add_generation_prompt=False)
    assert text.startswith(VICUNA_SYSTEM + " USER: <image><image>")
    assert text.endswith("\nIs this face forged? ASSISTANT: Yes.</s>")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_trained_parameters_are_fp32_master_weights_over_a_low_precision_base(dtype, bases, small_build):
    from fifa.modeling.collate import InstructDataset
    from fifa.modeling.loading import precision_for
    from fifa.modeling.optim import make_optimizer

    prec = "bf16" if dtype == "bfloat16" else "fp16"
    loaded, cfg = _loaded("qwen2_vl", bases["qwen2_vl"], small_build, f"model.dtype={dtype}", f"train.precision={prec}")
    model = loaded.model
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = [p for p in model.lm.parameters() if not p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable.values())
    assert frozen and all(p.dtype == getattr(torch, dtype) for p in frozen)
    assert any("merger" in n for n in trainable)  # the projector trains (modules_to_save), in fp32
    precision = precision_for(loaded, torch.device("cpu"))
    scaler = precision.scaler()
    assert (scaler is not None) == (dtype == "float16")
    data = InstructData(small_build)
    ds = InstructDataset(data, Encoder(loaded.tokenizer, loaded.fam, model.heads.classes, "category", 32, 200))
    batch = Collator(loaded.fam, loaded.tokenizer.pad_token_id)([ds[i] for i in range(4)])
    opt, _ = make_optimizer(model, cfg)
    before = {n: p.detach().clone() for n, p in trainable.items() if "merger" in n}
    moved = []
    # fp16: the GradScaler skips a step whose scaled gradients overflow and halves its scale (from 2**16), as it
    # should; the master weights move on the first step it takes
    for _ in range(12):
        opt.zero_grad(set_to_none=True)
        with precision.autocast():
            loss, _ = model(batch)
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(opt)  # fp16 gradients could not be unscaled before
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        assert torch.isfinite(loss)
        moved = [n for n, p in trainable.items() if n in before and not torch.equal(p, before[n])]
        if moved:
            break
    assert moved, "the projector did not move"


def test_new_token_rows_on_the_flat_qwen_config(bases, small_build):
    """train_embeddings=new reads the tying from the model (the flat config has no text-config flag)."""
    from fifa.modeling.base import load_base, ties_embeddings

    for family, tied in (("qwen2_vl", True), ("qwen2_5_vl", False)):
        cfg = load_config(recipe(family), recipe_overrides(family, bases[family]))
        assert ties_embeddings(load_base(cfg)[0]) is tied
        loaded, _ = _loaded(family, bases[family], small_build, "model.train_embeddings=new")
        names = [n for n, p in loaded.model.lm.named_parameters() if p.requires_grad]
        assert any("trainable_tokens" in n and "embed_tokens" in n for n in names)
        assert any("trainable_tokens" in n and "lm_head" in n for n in names) is not tied


def _cli(*args, timeout=600):
    p = subprocess.run([str(BIN / args[0]), *args[1:]], env=ENV, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, (args[:2], p.stderr[-4000:])
    return p


@pytest.mark.parametrize("family", FAMILIES)
def test_shipped_recipe_trains_evaluates_resumes_predicts_and_scores_in_bf16(family, bases, small_build, tmp_path):
    """fifa-train run with the family's recipe on a real-file base (bf16 weights, autocast on CPU): evaluation
    and checkpoints every step, a resumed second run, prediction, scoring: all through the command lines."""
    out = tmp_path / "ck"
    sets = [
        *recipe_overrides(family, bases[family]),
        "train.max_steps=2",
        "train.save_every=1",
        "eval.every=1",
        "eval.max_questions=6",
    ]
    args = [
        "fifa-train",
        "run",
        "--config",
        str(recipe(family)),
        "--data",
        str(small_build),
        "--out",
        str(out),
        "--no-progress",
        *[x for s in sets for x in ("--set", s)],
    ]
    _cli(*args)
    rows = read_metrics(out)
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    assert [r["step"] for r in evals] == [1, 2] and not any("eval_error" in r for r in rows)
    assert (out / "checkpoint-000002" / "adapter").is_dir()
    _cli(*args[:-2], "--set", "train.max_steps=3", "--set", "eval.every=0")  # resumes from step 2
    assert [r["step"] for r in read_metrics(out) if "loss" in r][-2:] == [2, 3]
    bench = tmp_path / "bench.parquet"  # a few questions of each task, images resolved from the build
    table = pq.read_table(small_build / "bench.parquet")
    keep = [
        i
        for t in ("det", "loc", "age", "rq_box")
        for i in [k for k, x in enumerate(table.column("task").to_pylist()) if x == t][:2]
    ]
    pq.write_table(table.take(keep), bench)
    sub = tmp_path / "sub.jsonl"
    _cli(
        "fifa-train",
        "predict",
        "--checkpoint",
        str(out),
        "--bench",
        str(bench),
        "--out",
        str(sub),
        "--image-root",
        str(small_build),
        "--no-progress",
    )
    preds = [json.loads(x) for x in sub.read_text().splitlines()]
    assert len(preds) == len(keep) and all(p["answer"] is not None for p in preds)
    assert all(0 <= p["score"] <= 1 for p in preds if p["question_id"].endswith(":det"))
    _cli("fifa-bench", "score", "--bench", str(bench), "--submission", str(sub), "--out", str(tmp_path / "rep"))
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert {"det", "loc", "age", "rq_box"} <= set(report)


def test_checkpoint_is_written_before_evaluation_and_a_failed_evaluation_loses_nothing(
    bases, small_build, tmp_path, monkeypatch
):
    import fifa.modeling.evaluate as ev
    from fifa.modeling.train import train

    def broken(*a, **k):
        assert (tmp_path / "ck" / "checkpoint-000001" / "adapter").is_dir(), "evaluated before the checkpoint"
        raise RuntimeError("out of memory while evaluating")

    monkeypatch.setattr(ev, "predict_share", broken)
    cfg = load_config(
        recipe("llava"),
        [
            *recipe_overrides("llava", bases["llava"]),
            "train.max_steps=2",
            "train.save_every=1",
            "eval.every=1",
            "eval.at_end=false",
        ],
    )
    summary = train(cfg, small_build, tmp_path / "ck", progress=False)
    assert summary["steps"] == 2
    errors = [r for r in read_metrics(tmp_path / "ck") if "eval_error" in r]
    assert [r["step"] for r in errors] == [1, 2] and "out of memory" in errors[0]["eval_error"]
    assert json.loads((tmp_path / "ck" / "latest.json").read_text())["step"] == 2


def test_process_group_has_a_cpu_backend_beside_nccl():
    from fifa.modeling.dist import process_group_backend

    assert process_group_backend(cuda=True) == "cpu:gloo,cuda:nccl"
    assert process_group_backend(cuda=False) == "gloo"


def test_evaluation_shares_split_the_validation_questions(small_build, monkeypatch):
    """Each rank predicts every world-th question: shares are disjoint and together the whole bench."""
    import fifa.modeling.evaluate as ev

    seen = {}

    def fake_rows(pred, rows, resolve, bs):
        return [{"question_id": r.question_id, "answer": "x", "score": None, "masks": None} for r in rows]

    monkeypatch.setattr(ev, "predict_rows", fake_rows)
    monkeypatch.setattr(ev, "Predictor", lambda *a, **k: None)
    cfg = load_config(None, ["eval.max_questions=9"])
    data = InstructData(small_build, "validation")

    class M(torch.nn.Module):
        pass

    for rank in range(3):
        seen[rank] = [r["question_id"] for r in ev.predict_share(M(), None, None, "cpu", data, cfg, None, rank, 3)]
    everything = [r["question_id"] for r in ev.predict_share(M(), None, None, "cpu", data, cfg, None, 0, 1)]
    assert sorted(q for s in seen.values() for q in s) == sorted(everything) and len(everything) == 9
    assert all(seen[r] and not set(seen[r]) & set(seen[s]) for r in seen for s in seen if r != s)
