"""Bases made from the published non-weight files of the supported models (tests/fixtures/real_bases, see
its README for provenance and licences) with random, shrunk weights: the real flat config.json layout,
the real tokenizer and chat template, the real processor settings."""

from __future__ import annotations

from pathlib import Path

from fifa.modeling.random_base import Shrink, make_random_base

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "real_bases"

#: family name -> folders whose files make the base (later folders add the Qwen tokenizer files)
SOURCES = {
    "qwen2_vl": ["Qwen2-VL-2B-Instruct", "qwen2-tokenizer"],
    "qwen2_5_vl": ["Qwen2.5-VL-7B-Instruct", "qwen2-tokenizer"],
    "llava": ["llava-1.5-7b-hf"],
}
#: model.image_size for each (LLaVA's tower size is shrunk to it; Qwen takes multiples of 28)
IMAGE_SIZE = {"qwen2_vl": 56, "qwen2_5_vl": 56, "llava": 56}
#: the token that ends an answer turn in each published template (llava-hf's has none: the eos is added)
TURN_END = {"qwen2_vl": "<|im_end|>", "qwen2_5_vl": "<|im_end|>", "llava": "</s>"}


def make_base(family: str, dest: Path) -> Path:
    make_random_base([FIXTURES / s for s in SOURCES[family]], dest, Shrink(image_size=IMAGE_SIZE[family]))
    return dest


def recipe_overrides(family: str, base: Path, dtype: str = "bfloat16") -> list[str]:
    """CPU-sized overrides of a shipped recipe (the model's sizes come from the base folder)."""
    return [
        f"model.base={base}",
        f"model.image_size={IMAGE_SIZE[family]}",
        f"model.dtype={dtype}",
        "heads.mask_dim=16",
        "heads.pixel_channels=8",
        "heads.mask_size=32",
        "train.batch_size=2",
        "train.grad_accum=1",
        "train.log_every=1",
        "data.num_workers=0",
        "data.max_length=200",
        "predict.max_new_tokens=6",
        "predict.batch_size=4",
        "model.gradient_checkpointing=false",
        "train.threads=1",
    ]


def recipe(family: str) -> Path:
    name = "llava-1.5-7b.yaml" if family == "llava" else "qwen2-vl-2b.yaml"
    return Path(__file__).resolve().parents[2] / "modeling" / "configs" / name
