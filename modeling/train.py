"""The training loop: accumulation, mixed precision, checkpoints with exact resume, evaluation, logs.

Run under ``torchrun`` / ``accelerate launch`` it uses DDP (gloo on CPU, nccl on GPUs): each rank
takes every ``world``-th row of the same seeded epoch order. Resume: rerunning on the same ``out``
continues from ``out/latest.json`` (same config required, see ``config.RESUMABLE_CHANGES``) with
the optimizer, scheduler, RNG states and data position restored, so the losses continue exactly.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from fifa.core.errors import UserError

from . import checkpoint as ck
from .collate import Collator, Encoder, InstructDataset, OrderSampler
from .config import TrainConfig
from .data import InstructData, epoch_order, split_files, task_weights
from .vocab import class_openings, classes_of, mark_vocabulary, sample_marks
from .heads import unused_zero
from .loading import Loaded, create, device_for, from_checkpoint, precision_for
from .precision import Precision
from .logs import MetricsLog, progress_bar

log = logging.getLogger(__name__)


#: What a run writes into its folder before its first checkpoint (a rerun then starts afresh).
OWN_FILES = {"base", "init", "metrics.jsonl", "tensorboard", "plots"}
#: Steps after which a run (or a resumed run) that has not used a single row stops with the skip reasons.
NOTHING_USED_STEPS = 5


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def process_group_backend(cuda: bool) -> str:
    """gloo for CPU tensors beside nccl for CUDA ones: object gathers and host-side counters go through
    gloo, so no reduction depends on where a tensor happens to live."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_dist() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(process_group_backend(torch.cuda.is_available()))
    d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local)
    return d


def _barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def _sum_over_ranks(values: list[float], d: Dist, device: torch.device) -> list[float]:
    """Element-wise sum over ranks (a tensor on the run's device: nccl reduces CUDA tensors only)."""
    if d.world <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def training_texts(data: InstructData, extra: InstructData | None = None):
    """Every message of the build (the tiny tokenizer is trained on them), marks rendered as in training."""
    from fifa.core.marks import render_glamm as to_glamm

    for src in (data, extra):
        if src is None:
            continue
        for msgs in src.rows.column("messages"):
            for m in msgs or []:
                yield to_glamm(m["content"] or "")


def lr_lambda(cfg: TrainConfig):
    t = cfg.train

    def f(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / max(1, t.warmup_steps)
        if t.scheduler == "constant":
            return 1.0
        frac = (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps)
        frac = min(1.0, frac)
        return 0.5 * (1 + math.cos(math.pi * frac)) if t.scheduler == "cosine" else 1.0 - frac
    return f


def make_optimizer(model, cfg: TrainConfig):
    heads = [p for p in model.heads.parameters() if p.requires_grad]
    base = [p for p in model.lm.parameters() if p.requires_grad]
    groups = [{"params": base, "lr": cfg.train.lr}, {"params": heads, "lr": cfg.train.head_lr}]
    # fused: one kernel for every parameter (on CPU torch otherwise loops over them one by one); the master
    # weights are fp32 (precision.py), which fused AdamW needs
    fused = all(p.dtype == torch.float32 for p in base + heads)
    opt = torch.optim.AdamW(groups, weight_decay=cfg.train.weight_decay, fused=fused or None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    return opt, sched


@dataclass
class Position:
    step: int = 0
    skipped: Counter = field(default_factory=Counter)


def _loader(ds, collator, order, start: int, cfg: TrainConfig, epoch: int):
    g = torch.Generator().manual_seed(cfg.train.seed * 1000 + epoch)  # workers never draw from the global RNG
    nw = cfg.data.num_workers
    return torch.utils.data.DataLoader(ds, batch_size=cfg.train.batch_size, sampler=OrderSampler(order, start),
                                       collate_fn=collator, num_workers=nw, generator=g,
                                       persistent_workers=False, prefetch_factor=4 if nw else None)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _prepare(cfg: TrainConfig, build: Path, out: Path, d: Dist):
    """(loaded model, resume checkpoint or None, train data, validation data or None)."""
    data = InstructData(build, "train")
    val = InstructData(build, "validation") if split_files(build, "validation") else None
    resume = ck.latest(out)
    if resume is not None:
        ck.check_resume(resume, cfg)
        loaded = from_checkpoint(resume, cfg)
        if cfg.model.base == "tiny":  # the run folder's own copy (checkpoints get rotated away)
            if not (out / "base").is_dir():
                shutil.copytree(resume / "base", out / "base")
            loaded.base_dir = out / "base"
        return loaded, resume, data, val
    foreign = [p.name for p in out.iterdir() if p.name not in OWN_FILES] if out.is_dir() else []
    if foreign:
        raise UserError(f"{out} is not empty and holds no checkpoint to resume ({', '.join(sorted(foreign)[:5])}); "
                        "choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    if d.main:
        texts = list(training_texts(data, val)) if cfg.model.base == "tiny" else None
        classes = classes_of(data, cfg)
        regions = mark_vocabulary(data, cfg.heads.mark_regions) if cfg.heads.mark_head else []
        loaded = create(cfg, texts, classes, out, regions)
        loaded.model.heads.class_openings = class_openings(data, cfg.heads.cls_field, classes)
        if d.world > 1:
            ck.save_model_files(out / "init", loaded.model, loaded.tokenizer, cfg, loaded.base_dir)
    _barrier(d)
    if not d.main:  # every rank starts from rank 0's initial model (the tokenizer is trained once)
        loaded = from_checkpoint(out / "init", cfg)
    return loaded, None, data, val


def train(cfg: TrainConfig, build: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Train (or resume) into ``out``; returns a summary (steps, losses, evaluation, timings)."""
    build, out = Path(build), Path(out)
    d = init_dist()
    torch.manual_seed(cfg.train.seed + d.rank)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = device_for(cfg)
    weights = task_weights(InstructData(build, "train").task_counts(), cfg.data.tasks)  # before any model is built
    loaded, resume, data, val = _prepare(cfg, build, out, d)
    model, tok, fam = loaded.model.to(device), loaded.tokenizer, loaded.fam
    if cfg.heads.det_balance:
        labels = Counter(str(x).lower() for x in data.rows.column("label"))
        model.balance_detection(labels["fake"], labels["real"])
    model.train()
    ddp = torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 else model
    opt, sched = make_optimizer(model, cfg)
    precision = precision_for(loaded, device)
    scaler = precision.scaler()
    pos = Position()
    if resume is not None:
        st = ck.load_state(resume, opt, sched, scaler, d.rank)
        pos = Position(st["step"], Counter(st.get("skipped", {})))
        log.info("resuming from %s (step %d)", resume, pos.step)
    enc = Encoder(tok, fam, model.heads.classes, cfg.heads.cls_field, cfg.heads.mask_size, cfg.data.max_length,
                  sample_marks(data, model.heads.regions) if model.heads.marks is not None else None,
                  len(model.heads.regions))
    ds, collator = InstructDataset(data, enc), Collator(fam, tok.pad_token_id)
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    orders = {}

    def rank_order(epoch: int):
        if epoch not in orders:
            full = epoch_order(data.tasks, weights, cfg.train.seed, epoch, cfg.data.chunk_rows)
            n = len(full) // d.world * d.world
            orders.clear()
            orders[epoch] = full[:n][d.rank::d.world]
        return orders[epoch]

    steps_per_epoch = len(rank_order(0)) // per_step
    if steps_per_epoch == 0:
        raise UserError(f"too little data: {len(rank_order(0))} rows per process for batch_size x grad_accum = {per_step}")
    mlog = MetricsLog(out, enabled=d.main, resume_step=pos.step if resume is not None else None)
    t0, tokens, last_save, used = time.perf_counter(), 0, pos.step, 0
    bar = progress_bar(cfg.train.max_steps, pos.step, enabled=progress and d.main)
    summary: dict = {"resumed_from": pos.step if resume is not None else None}
    try:
        while pos.step < cfg.train.max_steps:
            epoch, k = divmod(pos.step, steps_per_epoch)
            loader = iter(_loader(ds, collator, rank_order(epoch), k * per_step, cfg, epoch))
            for _ in range(steps_per_epoch - k):
                logs = _step(ddp, model, loader, opt, sched, scaler, precision, cfg, device, pos, d)
                pos.step += 1
                tokens += logs.get("seq_tokens", 0)
                used += logs.pop("rows", 0)
                if pos.step - (summary["resumed_from"] or 0) == NOTHING_USED_STEPS:
                    _stop_if_nothing_used(used, pos, d, device)
                bar.advance(logs)
                if pos.step % cfg.train.log_every == 0 or pos.step == cfg.train.max_steps:
                    el = time.perf_counter() - t0
                    mlog.write({"step": pos.step, "epoch": epoch, **logs, "lr": sched.get_last_lr()[0],
                                "tokens_per_s": tokens / max(el, 1e-9), "elapsed_s": el,
                                "skipped": sum(pos.skipped.values())})
                # the step's checkpoint first: an evaluation that fails or hangs must not cost it
                if pos.step % cfg.train.save_every == 0 or pos.step == cfg.train.max_steps:
                    _save(out, loaded, opt, sched, scaler, cfg, pos, d)
                    last_save = pos.step
                if cfg.eval.every and pos.step % cfg.eval.every == 0 and val is not None:
                    _evaluate(model, tok, fam, device, val, cfg, precision, mlog, pos.step, d)
                if pos.step >= cfg.train.max_steps:
                    break
            del loader
    except KeyboardInterrupt:
        if pos.step > last_save:
            _save(out, loaded, opt, sched, scaler, cfg, pos, d)
        raise
    finally:
        bar.close()
    if cfg.eval.at_end and val is not None and not (cfg.eval.every and pos.step % cfg.eval.every == 0):
        _evaluate(model, tok, fam, device, val, cfg, precision, mlog, pos.step, d)
    if d.main:
        ck.save_model_files(out, model, tok, cfg, loaded.base_dir)
        mlog.finish()
    _barrier(d)
    summary.update(steps=pos.step, skipped=dict(pos.skipped), elapsed_s=time.perf_counter() - t0,
                   tokens=tokens, last=mlog.last, eval=mlog.last_eval)
    return summary


def _stop_if_nothing_used(used: int, pos: Position, d: Dist, device: torch.device) -> None:
    """Every row of the first steps was skipped (images not found, masks that do not fit, ...): a run that
    would train on nothing stops with the reasons instead of pretending to learn."""
    used = int(_sum_over_ranks([used], d, device)[0])
    if used == 0:
        reasons = "; ".join(f"{r} ({n})" for r, n in pos.skipped.most_common(3)) or "no rows"
        raise UserError(f"every row of the first {NOTHING_USED_STEPS} steps was skipped: {reasons}. "
                        "Check that the build's images are where build.json says (image_root).")


def _evaluate(model, tok, fam, device, val, cfg, precision: Precision, mlog, step, d: Dist) -> None:
    """Every rank predicts its share of the validation questions, rank 0 scores the gathered predictions.
    A failure (on any rank) is logged and written to the metrics, and training goes on: the step's
    checkpoint is already on disk."""
    from .evaluate import predict_share, score_predictions, validation_bench

    t = time.perf_counter()
    try:
        bench = validation_bench(val, cfg.eval.max_questions)  # the same seeded sample on every rank
        share: list | str = predict_share(model, tok, fam, device, val, cfg, precision, d.rank, d.world, bench)
    except Exception as e:  # noqa: BLE001 - reported below, never fatal to training
        share = f"rank {d.rank}: {type(e).__name__}: {e}"[:500]
    shares = [share]
    if d.world > 1:
        shares = [None] * d.world
        dist.all_gather_object(shares, share)
    if not d.main:
        return
    errors = [s for s in shares if isinstance(s, str)]
    try:
        if errors:
            raise RuntimeError(errors[0])
        m = score_predictions(bench, [r for s in shares for r in s])
    except Exception as e:  # noqa: BLE001
        log.error("evaluation at step %d failed (training goes on): %s", step, e)
        mlog.write({"step": step, "eval_error": str(e)[:500]})
        return
    mlog.write({"step": step, **{f"eval/{k}": v for k, v in m.items()}, "eval_s": time.perf_counter() - t})


def _save(out: Path, loaded: Loaded, opt, sched, scaler, cfg: TrainConfig, pos: Position, d: Dist) -> None:
    target = ck.ckpt_dir(out, pos.step)
    if d.main:
        ck.save_model_files(target, loaded.model, loaded.tokenizer, cfg, loaded.base_dir)
    _barrier(d)
    ck.save_state(target, opt, sched, scaler, {"step": pos.step, "skipped": dict(pos.skipped)}, d.rank)
    _barrier(d)
    if d.main:
        ck.mark_latest(out, target, pos.step, cfg.train.keep_checkpoints)


def _step(ddp, model, loader, opt, sched, scaler, precision: Precision, cfg, device, pos: Position, d: Dist) -> dict:
    """One optimizer step over ``grad_accum`` micro-batches; returns averaged logs."""
    acc: dict = {}
    n_micro = cfg.train.grad_accum
    for micro in range(n_micro):
        batch = next(loader)
        pos.skipped.update(batch["skipped"])
        acc["rows"] = acc.get("rows", 0) + batch["n"]
        sync = micro == n_micro - 1 or d.world == 1
        ctx = contextlib.nullcontext() if sync else ddp.no_sync()
        with ctx:
            if batch["n"] == 0:  # every row of this micro-batch was skipped: keep ranks in step
                loss, logs = unused_zero(model), {}
            else:
                with precision.autocast():
                    loss, logs = ddp(_to(batch, device))
            loss = loss / n_micro
            (scaler.scale(loss) if scaler else loss).backward()
        for k, v in logs.items():
            acc[k] = acc.get(k, 0) + (v if k in ("tokens", "seq_tokens") else v / n_micro)
    if scaler:
        scaler.unscale_(opt)
    if cfg.train.max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], cfg.train.max_grad_norm)
    if scaler:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    # loss terms stay on the device until here: one host read per step, not several per micro-batch
    acc = {k: float(v) if torch.is_tensor(v) else v for k, v in acc.items()}
    if d.world > 1:  # the logged loss is the mean over ranks
        acc["loss"] = _sum_over_ranks([acc.get("loss", 0.0)], d, device)[0] / d.world
    return acc

