"""A base model folder with random weights around a base's *published* non-weight files.

No weights can be downloaded on the machines this project is tested and measured on. What a user's
real base brings besides its weights is its files: the flat ``config.json`` as the Hub serves it, the
tokenizer, the chat template, the processor settings. :func:`make_random_base` copies those files
into a folder, optionally shrinks the layer sizes in the config (same keys, same layout: the flat
config stays flat), and writes random weights of that architecture beside them, so the folder loads
through the same code as a real download (``AutoConfig`` / ``AutoTokenizer`` / ``from_pretrained``).

At full size (``shrink=None``) the result has the real architecture: speed and memory are those of
the real model, loss values mean nothing. Shrunk, it is a CPU test of the whole path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Files that are never copied from a source folder (weights, or what the random model writes itself).
_SKIP = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}


@dataclass(frozen=True)
class Shrink:
    """Layer sizes of a shrunk base (the vocabulary, token ids and image interface are kept)."""

    hidden: int = 64
    layers: int = 1
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    vision_hidden: int = 32
    vision_layers: int = 1
    vision_heads: int = 2
    image_size: int = 56  # LLaVA's tower input (a multiple of its patch); Qwen takes any multiple of 28


def _mrope_section(head_dim: int) -> list[int]:
    """Qwen2-VL's M-RoPE split (temporal, height, width) of half the head dim, in the published 1:1.5:1.5."""
    q = head_dim // 2
    t = q - 2 * (q * 3 // 8)
    return [t, q * 3 // 8, q * 3 // 8]


def _shrink_text(cfg: dict, s: Shrink) -> None:
    cfg.update(
        hidden_size=s.hidden,
        intermediate_size=s.intermediate,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
    )
    if "max_window_layers" in cfg:
        cfg["max_window_layers"] = s.layers


def shrink_config(config: dict, s: Shrink) -> dict:
    """The published config with smaller layers, in the same layout (flat Qwen configs stay flat)."""
    cfg = json.loads(json.dumps(config))
    mt = cfg.get("model_type")
    if mt == "llava":
        text = cfg.setdefault("text_config", {})
        _shrink_text(text, s)
        vision = cfg.setdefault("vision_config", {})
        vision.update(
            hidden_size=s.vision_hidden,
            intermediate_size=2 * s.vision_hidden,
            num_hidden_layers=s.vision_layers,
            num_attention_heads=s.vision_heads,
            image_size=s.image_size,
            projection_dim=s.vision_hidden,
        )
        return cfg
    if mt not in ("qwen2_vl", "qwen2_5_vl"):
        raise ValueError(f"cannot shrink a {mt!r} config (llava, qwen2_vl, qwen2_5_vl)")
    text = cfg.get("text_config", cfg)  # published Qwen configs are flat
    _shrink_text(text, s)
    for holder in (text, cfg):
        for key in ("rope_scaling", "rope_parameters"):
            if isinstance(holder.get(key), dict) and "mrope_section" in holder[key]:
                holder[key]["mrope_section"] = _mrope_section(s.hidden // s.heads)
    vision = cfg["vision_config"]
    if mt == "qwen2_vl":  # embed_dim: the tower's width; hidden_size: the merger's output (the LLM's width)
        vision.update(depth=s.vision_layers, embed_dim=s.vision_hidden, num_heads=s.vision_heads, hidden_size=s.hidden)
    else:
        vision.update(
            depth=s.vision_layers,
            hidden_size=s.vision_hidden,
            num_heads=s.vision_heads,
            intermediate_size=2 * s.vision_hidden,
            out_hidden_size=s.hidden,
            fullatt_block_indexes=[s.vision_layers - 1],
        )
    return cfg


def copy_files(sources: list[Path], out: Path) -> None:
    """Every non-weight file of the source folders into ``out`` (later folders win on equal names)."""
    out.mkdir(parents=True, exist_ok=True)
    for src in sources:
        for f in sorted(Path(src).iterdir()):
            if f.is_file() and f.name not in _SKIP and not f.name.startswith("."):
                shutil.copyfile(f, out / f.name)


def make_random_base(
    sources: list[str | Path],
    out: str | Path,
    shrink: Shrink | None = None,
    dtype: str = "bfloat16",
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    """Copy the published files of ``sources`` into ``out`` and add random weights (see the module doc).

    Returns ``{"out", "model_type", "params"}``. ``config.json`` in ``out`` is the published one (shrunk
    when asked), not the one transformers would write: the folder looks like the download."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    out = Path(out)
    copy_files([Path(s) for s in sources], out)
    published = json.loads((out / "config.json").read_text())
    flat = shrink_config(published, shrink) if shrink is not None else published
    (out / "config.json").write_text(json.dumps(flat, indent=2) + "\n")
    mcfg = AutoConfig.from_pretrained(str(out))
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(mcfg, dtype=getattr(torch, dtype))
    params = sum(p.numel() for p in model.parameters())
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        model.save_pretrained(tmp)
        for f in Path(tmp).iterdir():
            if f.name.endswith((".safetensors", ".safetensors.index.json")):
                shutil.move(str(f), out / f.name)
    (out / "config.json").write_text(json.dumps(flat, indent=2) + "\n")
    return {"out": str(out), "model_type": flat.get("model_type"), "params": params}


#: The published files of each shipped recipe's base in this repository (tests/fixtures/real_bases).
RECIPE_SOURCES = {
    "qwen2-vl-2b": ["Qwen2-VL-2B-Instruct", "qwen2-tokenizer"],
    "qwen2.5-vl-7b": ["Qwen2.5-VL-7B-Instruct", "qwen2-tokenizer"],
    "llava-1.5-7b": ["llava-1.5-7b-hf"],
}


def main(argv: list[str] | None = None) -> None:
    """``python -m fifa.modeling.random_base --sources DIR [DIR ...] --out OUT [--shrink]``."""
    import argparse

    ap = argparse.ArgumentParser(
        description="A base folder with random weights around published non-weight "
        "files (full size, or --shrink for a CPU test)."
    )
    ap.add_argument("--sources", nargs="+", required=True, help="folders of published files (config, tokenizer, ...)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shrink", action="store_true", help="one small layer per tower (a CPU test of the path)")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--device", default="cpu", help="where the random weights are made (cuda is faster at 7B)")
    a = ap.parse_args(argv)
    print(json.dumps(make_random_base(a.sources, a.out, Shrink() if a.shrink else None, a.dtype, device=a.device)))


if __name__ == "__main__":
    main()
