"""Checkpoint layout (DESIGN.md) and exact-resume state.

``CKPT/checkpoint-NNNNNN/`` (one per save, the last ``train.keep_checkpoints`` kept) and, at the end
of a run, the same files at ``CKPT/`` itself::

    config.yaml          the full resolved config
    adapter/             peft adapter (LoRA, projector, trained token rows / modules)
    heads.safetensors    the extra heads; heads.json: their sizes and the class names
    tokenizer/           tokenizer with the added tokens
    base/                the tiny base model (only for model.base: tiny; real bases are named in config.yaml)
    state/               optimizer, scheduler, RNG states per rank, trainer_state.json (step, counters)

``CKPT/latest.json`` names the newest complete checkpoint (written last, atomically).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import yaml

from fifa.core.atomic import write_json_atomic
from fifa.core.errors import UserError

from .config import TrainConfig, config_from_dict, incompatible_keys

STATE = "state"


def ckpt_dir(out: Path, step: int) -> Path:
    return out / f"checkpoint-{step:06d}"


def latest(out: Path) -> Path | None:
    """The newest complete checkpoint under a run folder, or None."""
    p = out / "latest.json"
    if not p.is_file():
        return None
    d = out / json.loads(p.read_text())["path"]
    return d if (d / "config.yaml").is_file() else None


def resolve(path: str | Path) -> Path:
    """A checkpoint folder given a run folder (its final model or newest checkpoint) or a checkpoint folder."""
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"checkpoint not found: {p}")
    if (p / "adapter").is_dir() and (p / "config.yaml").is_file():
        return p
    lt = latest(p)
    if lt is None:
        raise UserError(f"{p} holds no checkpoint (expected config.yaml and adapter/, or latest.json)")
    return lt


def read_config(ckpt: Path) -> TrainConfig:
    return config_from_dict(yaml.safe_load((ckpt / "config.yaml").read_text()) or {})


def check_resume(ckpt: Path, cfg: TrainConfig) -> None:
    saved = yaml.safe_load((ckpt / "config.yaml").read_text()) or {}
    bad = incompatible_keys(saved, cfg.to_dict())
    if bad:
        raise UserError(
            f"cannot resume from {ckpt}: it was made with another config ({', '.join(bad[:8])} differ); "
            "use a new --out folder, or the same config"
        )


def save_model_files(d: Path, model, tokenizer, cfg: TrainConfig, base_dir: Path | None) -> None:
    """The files predict needs (config, adapter, heads, tokenizer, tiny base)."""
    from safetensors.torch import save_file

    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(cfg.to_yaml())
    model.lm.save_pretrained(str(d / "adapter"))
    heads = {k: v.detach().cpu().contiguous() for k, v in model.heads.saved_state().items()}
    save_file(heads, str(d / "heads.safetensors"))
    (d / "heads.json").write_text(
        json.dumps(
            {
                "classes": model.heads.classes,
                "family": model.fam.kind,
                "class_openings": model.heads.class_openings,
                "regions": model.heads.regions,
            },
            indent=1,
        )
    )
    tokenizer.save_pretrained(str(d / "tokenizer"))
    if base_dir is not None and base_dir.resolve() != (d / "base").resolve():
        shutil.copytree(base_dir, d / "base", dirs_exist_ok=True)


def rng_state() -> dict:
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_state(d: Path, optimizer, scheduler, scaler, trainer_state: dict, rank: int) -> None:
    st = d / STATE
    st.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), st / f"rng_rank{rank}.pt")
    if rank == 0:
        torch.save(optimizer.state_dict(), st / "optimizer.pt")
        torch.save(scheduler.state_dict(), st / "scheduler.pt")
        if scaler is not None:
            torch.save(scaler.state_dict(), st / "scaler.pt")
        (st / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))


def load_state(d: Path, optimizer, scheduler, scaler, rank: int) -> dict:
    st = d / STATE
    optimizer.load_state_dict(torch.load(st / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(st / "scheduler.pt", weights_only=False))
    if scaler is not None and (st / "scaler.pt").is_file():
        scaler.load_state_dict(torch.load(st / "scaler.pt", weights_only=False))
    rng = st / f"rng_rank{rank}.pt"
    if not rng.is_file():
        raise UserError(f"cannot resume from {d}: no RNG state for rank {rank} (another world size?)")
    set_rng_state(torch.load(rng, weights_only=False))
    return json.loads((st / "trainer_state.json").read_text())


def mark_latest(out: Path, d: Path, step: int, keep: int) -> None:
    write_json_atomic({"path": d.name, "step": step}, out / "latest.json")
    olds = sorted(p for p in out.glob("checkpoint-*") if p.is_dir() and p != d)
    for p in olds[: max(0, len(olds) - max(0, keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)


def load_trained(ckpt: Path, cfg: TrainConfig, model_wrapper) -> None:
    """Load adapter and head weights of a checkpoint into a freshly built :class:`FifaModel`."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights
    from safetensors.torch import load_file

    set_peft_model_state_dict(model_wrapper.lm, load_peft_weights(str(ckpt / "adapter"), device="cpu"))
    model_wrapper.heads.load_saved_state(load_file(str(ckpt / "heads.safetensors")))
