"""Base VLMs: the tiny random model built from config, real bases from a folder or hub id, LoRA.

``load_base(cfg, texts)`` returns ``(model, tokenizer, family)`` with the added tokens in the
vocabulary; ``apply_lora(model, family, cfg, new_ids)`` wraps it with peft (LoRA on the language
model, projector trainable, vision tower frozen unless configured otherwise).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import torch

from fifa.core.errors import UserError

from .config import TrainConfig
from .family import SUPPORTED, SUPPORTED_TEXT, Family, family_of
from .precision import trainable_in_fp32, weights_dtype
from .tokenizer import ADDED_TOKENS, IMAGE, add_special_tokens, train_tiny_tokenizer

log = logging.getLogger(__name__)

QWEN_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>")


def tiny_model_config(cfg: TrainConfig, tokenizer):
    """A small random LLaVA or Qwen2-VL config over the tiny tokenizer's vocabulary."""
    t = cfg.model.tiny
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=t.hidden,
        intermediate_size=t.intermediate,
        num_hidden_layers=t.layers,
        num_attention_heads=t.heads,
        num_key_value_heads=t.heads,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    if t.family == "llava":
        return _tiny_llava_config(cfg, common, tokenizer.convert_tokens_to_ids)
    return _tiny_qwen2vl_config(cfg, common, tokenizer.convert_tokens_to_ids)


def _tiny_llava_config(cfg: TrainConfig, common: dict, ids):
    """LLaVA: a CLIP vision tower and a Llama language model (``common``: the language model's sizes)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    t = cfg.model.tiny
    vision = CLIPVisionConfig(
        hidden_size=t.vision_hidden,
        intermediate_size=2 * t.vision_hidden,
        num_hidden_layers=t.vision_layers,
        num_attention_heads=t.vision_heads,
        image_size=cfg.model.image_size,
        patch_size=t.patch,
    )
    text = LlamaConfig(**common)
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=ids(IMAGE),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )


def _tiny_qwen2vl_config(cfg: TrainConfig, common: dict, ids):
    """Qwen2-VL: its own vision tower and a language model with multimodal rotary positions."""
    from transformers import Qwen2VLConfig

    t = cfg.model.tiny
    head_dim = t.hidden // t.heads
    q = head_dim // 2  # 2 * sum(mrope_section) == head_dim
    section = [q - 2 * (q * 3 // 8), q * 3 // 8, q * 3 // 8]
    text = dict(common, rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section})
    vision = dict(
        depth=t.vision_layers,
        embed_dim=t.vision_hidden,
        hidden_size=t.hidden,
        num_heads=t.vision_heads,
        mlp_ratio=2,
        patch_size=t.patch,
        spatial_merge_size=2,
        temporal_patch_size=2,
        in_channels=3,
    )
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        video_token_id=ids("<|image_pad|>"),
        tie_word_embeddings=False,
    )


def build_tiny(cfg: TrainConfig, texts: Iterable[str]):
    from transformers import AutoModelForImageTextToText

    tok = train_tiny_tokenizer(texts, cfg.model.tiny.vocab_size, extra=QWEN_TOKENS)
    mcfg = tiny_model_config(cfg, tok)
    torch.manual_seed(cfg.model.tiny.seed)
    model = AutoModelForImageTextToText.from_config(mcfg)  # random init in fp32, then the configured dtype
    return model.to(weights_dtype(cfg.model.dtype)), tok


def _check_base_path(base: str) -> None:
    p = Path(base).expanduser()
    looks_local = base.startswith((".", "/", "~")) or p.exists() or base.count("/") > 1
    if looks_local and not p.is_dir():
        raise UserError(
            f"model path not found: {base} (a folder with config.json, or a hub id); "
            f"supported families: {SUPPORTED_TEXT}"
        )


def _image_stats(base: str) -> tuple:
    p = Path(base) / "preprocessor_config.json"
    if p.is_file():
        d = json.loads(p.read_text())
        return d.get("image_mean"), d.get("image_std")
    return None, None


def load_pretrained(cfg: TrainConfig, folder: str | None = None, tokenizer: bool = True):
    """A real base (or a saved tiny base): model (+ its tokenizer) from a folder or hub id."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

    base = folder or cfg.model.base
    _check_base_path(base)
    try:
        mcfg = AutoConfig.from_pretrained(base, trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load a model config from {base!r}: {e}".split("\n")[0]) from None
    if getattr(mcfg, "model_type", None) not in SUPPORTED:
        raise UserError(
            f"unsupported base model architecture {getattr(mcfg, 'model_type', None)!r} in {base}: "
            f"supported families are {SUPPORTED_TEXT}"
        )
    model = AutoModelForImageTextToText.from_pretrained(
        base, dtype=weights_dtype(cfg.model.dtype), trust_remote_code=cfg.model.trust_remote_code
    )
    if not tokenizer:
        return model, None
    tok = AutoTokenizer.from_pretrained(base)
    if not getattr(tok, "chat_template", None):
        tok.chat_template = processor_chat_template(base)
    return model, tok


def processor_chat_template(base: str) -> str | None:
    """The chat template a base ships beside its processor (``chat_template.json`` or ``.jinja``): llava-hf
    keeps it there, not in the tokenizer's files, so the tokenizer alone would fall back to ours."""
    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        try:
            path = cached_file(base, name, _raise_exceptions_for_missing_entries=False)
        except OSError:
            path = None
        if path:
            text = Path(path).read_text()
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    return None


def load_base(
    cfg: TrainConfig, texts: Iterable[str] | None = None
) -> tuple[torch.nn.Module, object, Family, list[int]]:
    """Base model, tokenizer with the added tokens, family, and the ids of the added tokens."""
    if cfg.model.base == "tiny":
        if texts is None:
            raise ValueError("the tiny model needs texts to train its tokenizer on")
        model, tok = build_tiny(cfg, texts)
        mean = std = None
    else:
        model, tok = load_pretrained(cfg)
        mean, std = _image_stats(cfg.model.base)
    before = len(tok)
    add_special_tokens(tok)
    if len(tok) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok), mean_resizing=False)
    new_ids = [tok.convert_tokens_to_ids(t) for t in ADDED_TOKENS]
    if before == len(tok) and cfg.model.base != "tiny":
        log.info("tokenizer already had the added tokens")
    fam = family_of(model.config, cfg.model.image_size, mean, std)
    return model, tok, fam, new_ids


def _module_names(model, suffixes: list[str]) -> list[str]:
    names = []
    for n, _ in model.named_modules():
        matches = any(n == s or n.endswith("." + s) for s in suffixes)
        if matches and not any(n.startswith(x + ".") for x in names):
            names.append(n)
    return names


def apply_lora(model, fam: Family, cfg: TrainConfig, new_ids: list[int]):
    """peft-wrap the base: LoRA on the LLM, full training of the projector (and vision tower / embeddings
    when configured). Everything trained is saved with the adapter."""
    from peft import LoraConfig, get_peft_model

    for p in model.parameters():
        p.requires_grad_(False)
    save = []
    if cfg.model.train_projector:
        save += fam.projector_names()
    if not cfg.model.freeze_vision:
        save += fam.vision_module_names()
    token_indices = None
    emb = cfg.model.train_embeddings
    if emb == "all":
        save += ["embed_tokens", "lm_head"]
    elif emb == "new":
        token_indices = {"embed_tokens": list(new_ids)}
        if not ties_embeddings(model):
            token_indices["lm_head"] = list(new_ids)
    lcfg = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules if cfg.lora.enabled else [],
        modules_to_save=save or None,
        trainable_token_indices=token_indices,
        exclude_modules=r".*(vision_tower|visual).*" if cfg.lora.enabled else None,
    )
    if not cfg.lora.enabled:
        lcfg.target_modules = r"^$"  # no LoRA layers: only modules_to_save / token rows train
    pm = get_peft_model(model, lcfg)
    for n, p in pm.named_parameters():  # LLaVA reads the tower's hidden states before its final norm
        if fam.kind == "llava" and "vision_tower" in n and "post_layernorm" in n:
            p.requires_grad_(False)
    trainable_in_fp32(pm)  # master weights in fp32 over a bf16/fp16 base (precision.py)
    return pm


def ties_embeddings(model) -> bool:
    """Whether the output layer shares the input embeddings: read from the modules themselves, since the
    flag's place differs between configs (flat Qwen configs keep it on the top level only)."""
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight
