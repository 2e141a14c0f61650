"""The training loop: accumulation, mixed precision, checkpoints with exact resume, evaluation, logs.

Run under ``torchrun`` / ``accelerate launch`` it uses DDP (gloo on CPU, nccl on GPUs): each rank
takes every ``world``-th row of the same seeded epoch order. Resume: rerunning on the same ``out``
continues from ``out/latest.json`` (same config required, see ``config.RESUMABLE_CHANGES``) with
the optimizer, scheduler, RNG states and data position restored, so the losses continue exactly.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from fifa.core.errors import UserError

from . import checkpoint as ck
from .collate import Collator, Encoder, InstructDataset
from .config import TrainConfig
from .data import InstructData, epoch_order, split_files, task_weights
from .dist import Dist, barrier, init_dist, sum_over_ranks
from .examples import load_image
from .loading import Loaded, create, device_for, from_checkpoint, precision_for
from .logs import MetricsLog, progress_bar
from .optim import Position, make_loader, make_optimizer, optimizer_step
from .precision import Precision
from .region_maps import RegionMaps, segment_images
from .vocab import class_openings, classes_of, mark_vocabulary, sample_marks

log = logging.getLogger(__name__)


#: What a run writes into its folder before its first checkpoint (a rerun then starts afresh).
OWN_FILES = {"base", "init", "metrics.jsonl", "tensorboard", "plots"}
#: Steps after which a run (or a resumed run) that has not used a single row stops with the skip reasons.
NOTHING_USED_STEPS = 5


def training_texts(data: InstructData, extra: InstructData | None = None):
    """Every message of the build (the tiny tokenizer is trained on them), marks rendered as in training."""
    from fifa.core.marks import render_glamm as to_glamm

    for src in (data, extra):
        if src is None:
            continue
        for msgs in src.rows.column("messages"):
            for m in msgs or []:
                yield to_glamm(m["content"] or "")


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
        raise UserError(
            f"{out} is not empty and holds no checkpoint to resume ({', '.join(sorted(foreign)[:5])}); "
            "choose a new --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    if d.main:
        texts = list(training_texts(data, val)) if cfg.model.base == "tiny" else None
        classes = classes_of(data, cfg)
        regions = mark_vocabulary(data, cfg.heads.mark_regions) if cfg.heads.mark_head else []
        loaded = create(cfg, texts, classes, out, regions)
        loaded.model.heads.class_openings = class_openings(data, cfg.heads.cls_field, classes)
        if d.world > 1:
            ck.save_model_files(out / "init", loaded.model, loaded.tokenizer, cfg, loaded.base_dir)
    barrier(d)
    if not d.main:  # every rank starts from rank 0's initial model (the tokenizer is trained once)
        loaded = from_checkpoint(out / "init", cfg)
    return loaded, None, data, val


@dataclass
class _Run:
    """What one training run holds, from :func:`_start` to :func:`_finish`."""

    cfg: TrainConfig
    out: Path
    d: Dist
    device: torch.device
    loaded: Loaded
    val: InstructData | None
    ddp: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: object
    scaler: object
    precision: Precision
    pos: Position
    ds: InstructDataset
    collator: Collator
    orders: EpochOrders
    mlog: MetricsLog
    resumed_from: int | None
    t0: float = field(default_factory=time.perf_counter)
    tokens: int = 0
    used: int = 0
    last_save: int = 0

    @property
    def model(self):
        return self.loaded.model

    def save(self) -> None:
        _save(self.out, self.loaded, self.opt, self.sched, self.scaler, self.cfg, self.pos, self.d)
        self.last_save = self.pos.step


@dataclass
class EpochOrders:
    """This rank's share of each epoch's row order (the current epoch's cached)."""

    data: InstructData
    weights: dict[str, float]
    cfg: TrainConfig
    d: Dist
    cache: dict = field(default_factory=dict)

    def __call__(self, epoch: int) -> np.ndarray:
        if epoch not in self.cache:
            full = epoch_order(self.data.tasks, self.weights, self.cfg.train.seed, epoch, self.cfg.data.chunk_rows)
            n = len(full) // self.d.world * self.d.world
            self.cache.clear()
            self.cache[epoch] = full[:n][self.d.rank :: self.d.world]
        return self.cache[epoch]


def train(cfg: TrainConfig, build: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Train (or resume) into ``out``; returns a summary (steps, losses, evaluation, timings)."""
    run = _start(cfg, Path(build), Path(out))
    bar = progress_bar(cfg.train.max_steps, run.pos.step, enabled=progress and run.d.main)
    try:
        _loop(run, bar)
    except KeyboardInterrupt:
        if run.pos.step > run.last_save:
            run.save()
        raise
    finally:
        bar.close()
    return _finish(run)


def _encoder(loaded: Loaded, data: InstructData, cfg: TrainConfig) -> Encoder:
    """Training rows -> examples, with every target the heads learn (marks, face parsing)."""
    heads = loaded.model.heads
    return Encoder(
        loaded.tokenizer,
        loaded.fam,
        heads.classes,
        cfg.heads.cls_field,
        cfg.heads.mask_size,
        cfg.data.max_length,
        sample_marks(data, heads.regions) if heads.marks is not None else None,
        [r["id"] for r in heads.regions],
        parse_maps(data, loaded.model, cfg),
        cfg.heads.region_parse_samples,
        cfg.heads.mark_masks,
    )


def parse_maps(data: InstructData, model, cfg: TrainConfig) -> RegionMaps | None:
    """The FICT segmentation of every training image, for the region queries' face parsing (when trained)."""
    if model.heads.mask.gate is None or not cfg.heads.region_parse_weight:
        return None
    ids = [r["id"] for r in model.heads.regions]
    return segment_images(data.rows.column("image"), ids, lambda img: load_image(data.resolve_image(img)))


def _start(cfg: TrainConfig, build: Path, out: Path) -> _Run:
    """The model (new or resumed), its optimizer state, the data and its order, the metrics log."""
    d = init_dist()
    torch.manual_seed(cfg.train.seed + d.rank)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = device_for(cfg)
    weights = task_weights(InstructData(build, "train").task_counts(), cfg.data.tasks)  # before any model is built
    loaded, resume, data, val = _prepare(cfg, build, out, d)
    model = loaded.model.to(device)
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
    enc = _encoder(loaded, data, cfg)
    orders = EpochOrders(data, weights, cfg, d)
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    if len(orders(0)) // per_step == 0:
        raise UserError(f"too little data: {len(orders(0))} rows per process for batch_size x grad_accum = {per_step}")
    resumed_from = pos.step if resume is not None else None
    return _Run(
        cfg,
        out,
        d,
        device,
        loaded,
        val,
        ddp,
        opt,
        sched,
        scaler,
        precision,
        pos,
        InstructDataset(data, enc),
        Collator(loaded.fam, loaded.tokenizer.pad_token_id),
        orders,
        MetricsLog(out, enabled=d.main, resume_step=resumed_from),
        resumed_from,
        last_save=pos.step,
    )


def _loop(run: _Run, bar) -> None:
    """Steps until ``train.max_steps``, epoch by epoch (a resumed run starts inside its epoch)."""
    cfg, pos = run.cfg, run.pos
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    steps_per_epoch = len(run.orders(0)) // per_step
    while pos.step < cfg.train.max_steps:
        epoch, k = divmod(pos.step, steps_per_epoch)
        loader = iter(make_loader(run.ds, run.collator, run.orders(epoch), k * per_step, cfg, epoch))
        for _ in range(steps_per_epoch - k):
            logs = optimizer_step(
                run.ddp, run.model, loader, run.opt, run.sched, run.scaler, run.precision, cfg, run.device, pos, run.d
            )
            pos.step += 1
            _after_step(run, logs, epoch, bar)
            if pos.step >= cfg.train.max_steps:
                break
        del loader


def _after_step(run: _Run, logs: dict, epoch: int, bar) -> None:
    """Counts, the metrics log, the checkpoint (before any evaluation: a failing one must not cost it)."""
    cfg, pos = run.cfg, run.pos
    run.tokens += logs.get("seq_tokens", 0)
    run.used += logs.pop("rows", 0)
    if pos.step - (run.resumed_from or 0) == NOTHING_USED_STEPS:
        _stop_if_nothing_used(run.used, pos, run.d, run.device)
    bar.advance(logs)
    if pos.step % cfg.train.log_every == 0 or pos.step == cfg.train.max_steps:
        el = time.perf_counter() - run.t0
        run.mlog.write(
            {
                "step": pos.step,
                "epoch": epoch,
                **logs,
                "lr": run.sched.get_last_lr()[0],
                "tokens_per_s": run.tokens / max(el, 1e-9),
                "elapsed_s": el,
                "skipped": sum(pos.skipped.values()),
            }
        )
    if pos.step % cfg.train.save_every == 0 or pos.step == cfg.train.max_steps:
        run.save()
    if cfg.eval.every and pos.step % cfg.eval.every == 0 and run.val is not None:
        _evaluate_run(run)


def _evaluate_run(run: _Run) -> None:
    """The validation bench scored at this step (every ``eval.every`` steps and at the end)."""
    _evaluate(
        run.model,
        run.loaded.tokenizer,
        run.loaded.fam,
        run.device,
        run.val,
        run.cfg,
        run.precision,
        run.mlog,
        run.pos.step,
        run.d,
    )


def _finish(run: _Run) -> dict:
    """The last evaluation (unless the last step had one), the final model files, the summary."""
    cfg, pos, d = run.cfg, run.pos, run.d
    if cfg.eval.at_end and run.val is not None and not (cfg.eval.every and pos.step % cfg.eval.every == 0):
        _evaluate_run(run)
    if d.main:
        ck.save_model_files(run.out, run.model, run.loaded.tokenizer, cfg, run.loaded.base_dir)
        run.mlog.finish()
    barrier(d)
    return {
        "resumed_from": run.resumed_from,
        "steps": pos.step,
        "skipped": dict(pos.skipped),
        "elapsed_s": time.perf_counter() - run.t0,
        "tokens": run.tokens,
        "last": run.mlog.last,
        "eval": run.mlog.last_eval,
    }


def _stop_if_nothing_used(used: int, pos: Position, d: Dist, device: torch.device) -> None:
    """Every row of the first steps was skipped (images not found, masks that do not fit, ...): a run that
    would train on nothing stops with the reasons instead of pretending to learn."""
    used = int(sum_over_ranks([used], d, device)[0])
    if used == 0:
        reasons = "; ".join(f"{r} ({n})" for r, n in pos.skipped.most_common(3)) or "no rows"
        raise UserError(
            f"every row of the first {NOTHING_USED_STEPS} steps was skipped: {reasons}. "
            "Check that the build's images are where build.json says (image_root)."
        )


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
    barrier(d)
    ck.save_state(target, opt, sched, scaler, {"step": pos.step, "skipped": dict(pos.skipped)}, d.rank)
    barrier(d)
    if d.main:
        ck.mark_latest(out, target, pos.step, cfg.train.keep_checkpoints)
