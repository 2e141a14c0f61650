"""Putting a :class:`FifaModel` together: fresh for training, or from a checkpoint for prediction/resume."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from fifa.core.errors import UserError

from .base import _image_stats, apply_lora, load_base, load_pretrained
from .checkpoint import load_trained, read_config, resolve
from .config import TrainConfig
from .family import Family, family_of
from .model import FifaModel
from .precision import Precision, model_dtype
from .precision import resolve as resolve_precision
from .tokenizer import ADDED_TOKENS, check_single_ids


def quiet_transformers() -> None:
    """No weight-loading progress bars or deprecation chatter from transformers on our console, and no
    compiled kernels fetched from the Hub at run time (transformers does that on GPUs when the ``kernels``
    package is installed: a download, and an error on a machine without the network). A user opts in with
    ``USE_HUB_KERNELS=YES``."""
    import os
    import warnings

    os.environ.setdefault("USE_HUB_KERNELS", "NO")

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    warnings.filterwarnings("ignore", message="Could not find a config file in")  # peft, saving a tiny base


@dataclass
class Loaded:
    model: FifaModel
    tokenizer: object
    fam: Family
    cfg: TrainConfig
    base_dir: Path | None  # where the tiny base's weights are saved (copied into checkpoints)


def create(
    cfg: TrainConfig,
    texts: Iterable[str] | None,
    classes: list[str],
    out: Path | None,
    regions: list[dict] | None = None,
) -> Loaded:
    """A new model: base (tiny: built and saved under ``out/base``), tokens, LoRA, heads (``regions``: the mark
    head's vocabulary, ``modeling/train.py:mark_vocabulary``)."""
    quiet_transformers()
    base, tok, fam, new_ids = load_base(cfg, texts)
    base_dir = None
    if cfg.model.base == "tiny" and out is not None:
        base_dir = out / "base"
        base.save_pretrained(str(base_dir))
    if cfg.model.gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    pm = apply_lora(base, fam, cfg, new_ids)
    return Loaded(
        FifaModel(pm, tok, fam, cfg, classes, mask_decoder(cfg, fam, model_dtype(pm)), regions), tok, fam, cfg, base_dir
    )


def from_checkpoint(path: str | Path, cfg: TrainConfig | None = None) -> Loaded:
    """Rebuild the model a checkpoint was trained as and load its trained weights."""
    from transformers import AutoTokenizer

    quiet_transformers()
    ckpt = resolve(path)
    cfg = cfg or read_config(ckpt)
    tok = AutoTokenizer.from_pretrained(str(ckpt / "tokenizer"))
    check_single_ids(tok)
    base_dir = ckpt / "base" if cfg.model.base == "tiny" else None
    if base_dir is not None and not base_dir.is_dir():
        raise UserError(f"{ckpt} lacks base/ (the tiny base model's weights)")
    model, _ = load_pretrained(cfg, str(base_dir) if base_dir else None, tokenizer=False)
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok), mean_resizing=False)
    mean, std = _image_stats(cfg.model.base) if base_dir is None else (None, None)
    fam = family_of(model.config, cfg.model.image_size, mean, std)
    new_ids = [tok.convert_tokens_to_ids(t) for t in ADDED_TOKENS]
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    pm = apply_lora(model, fam, cfg, new_ids)
    heads = json.loads((ckpt / "heads.json").read_text())
    fm = FifaModel(pm, tok, fam, cfg, heads["classes"], mask_decoder(cfg, fam, model_dtype(pm)), heads.get("regions"))
    fm.heads.class_openings = heads.get("class_openings", {})
    load_trained(ckpt, cfg, fm)
    return Loaded(fm, tok, fam, cfg, base_dir)


def mask_decoder(cfg: TrainConfig, fam: Family, weights: torch.dtype):
    """The SAM decoder when ``heads.mask_decoder: sam`` (loaded from ``heads.sam_model``), else None (the
    heads build the light decoders themselves)."""
    if cfg.heads.mask_decoder != "sam":
        return None
    from .sam import SamDecoder, load_sam

    return SamDecoder(load_sam(cfg.heads.sam_model, weights), fam.mean, fam.std)


def device_for(cfg: TrainConfig) -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def precision_for(loaded: Loaded, device: torch.device) -> Precision:
    """The run's compute precision (precision.py): from ``train.precision`` and the base's weights."""
    return resolve_precision(loaded.cfg.train.precision, model_dtype(loaded.model.lm), device)
