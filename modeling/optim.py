"""One optimizer step of training: the learning-rate schedule, the optimizer, the data loader from a
position in the epoch's order, and gradient accumulation under mixed precision (``train.py`` runs the loop)."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field

import torch

from .collate import OrderSampler
from .config import TrainConfig
from .dist import Dist, sum_over_ranks
from .heads import unused_zero
from .precision import Precision


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


def make_loader(ds, collator, order, start: int, cfg: TrainConfig, epoch: int):
    g = torch.Generator().manual_seed(cfg.train.seed * 1000 + epoch)  # workers never draw from the global RNG
    nw = cfg.data.num_workers
    return torch.utils.data.DataLoader(
        ds,
        batch_size=cfg.train.batch_size,
        sampler=OrderSampler(order, start),
        collate_fn=collator,
        num_workers=nw,
        generator=g,
        persistent_workers=False,
        prefetch_factor=4 if nw else None,
    )


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def optimizer_step(
    ddp, model, loader, opt, sched, scaler, precision: Precision, cfg, device, pos: Position, d: Dist
) -> dict:
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
                    loss, logs = ddp(to_device(batch, device))
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
        acc["loss"] = sum_over_ranks([acc.get("loss", 0.0)], d, device)[0] / d.world
    return acc
