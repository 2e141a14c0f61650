#!/usr/bin/env python
"""A real-size base model with random weights, saved as a local folder `fifa-train` loads like a checkpoint.

No weights can be downloaded on the machines this project measures on, so speed and memory of a real
base are measured on its architecture with random weights: the published config's sizes (below, from
the checkpoints' ``config.json``), a tokenizer trained on a build's own text (the embedding table keeps
the real vocabulary size), the image statistics of the real processor. Loss values mean nothing;
tokens/s and memory are those of the real model.

    python scripts/make_random_base.py --base qwen2-vl-2b --texts BUILD --out /tmp/qwen2-vl-2b-random
    python scripts/bench_train.py --build BUILD --config modeling/configs/qwen2-vl-2b.yaml \
        --set model.base=/tmp/qwen2-vl-2b-random --skip-learn

Writes OUT/config.json, the weights (bf16 safetensors), the tokenizer files and preprocessor_config.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

OPENAI_CLIP = {"image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}

#: Sizes of the published checkpoints (their config.json).
BASES = {
    # Qwen/Qwen2-VL-2B-Instruct
    "qwen2-vl-2b": dict(
        family="qwen2_vl", vocab=151936, image_size=448,
        text=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                  num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}),
        vision=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14,
                    spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        tie=True),
    # llava-hf/llava-1.5-7b-hf (Vicuna-7B + CLIP ViT-L/14 at 336 px)
    "llava-1.5-7b": dict(
        family="llava", vocab=32064, image_size=336,
        text=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5),
        vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=336, patch_size=14, projection_dim=768),
        tie=False),
}


def build_texts(build: Path, limit: int = 20000) -> list[str]:
    import pyarrow.parquet as pq

    texts = []
    for f in sorted((build / "instruct").glob("train*.parquet")):
        for msgs in pq.read_table(f, columns=["messages"]).column("messages").to_pylist():
            texts.extend(m["content"] for m in msgs)
            if len(texts) >= limit:
                return texts
    return texts


def model_config(spec: dict, tok):
    ids = tok.convert_tokens_to_ids
    common = dict(vocab_size=spec["vocab"], pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                  eos_token_id=tok.eos_token_id)
    if spec["family"] == "llava":
        from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

        return LlavaConfig(vision_config=CLIPVisionConfig(**spec["vision"]), text_config=LlamaConfig(**spec["text"], **common),
                           image_token_id=ids("<image>"), vision_feature_layer=-2,
                           vision_feature_select_strategy="default", projector_hidden_act="gelu",
                           tie_word_embeddings=spec["tie"])
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(text_config=dict(spec["text"], **common, tie_word_embeddings=spec["tie"]),
                         vision_config=spec["vision"], image_token_id=ids("<|image_pad|>"),
                         vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
                         video_token_id=ids("<|image_pad|>"), tie_word_embeddings=spec["tie"])


def shrunk(spec: dict) -> dict:
    """The same architecture with one layer per tower (a CPU smoke test of the whole path)."""
    text, vision = dict(spec["text"], num_hidden_layers=1), dict(spec["vision"])
    vision["depth" if "depth" in vision else "num_hidden_layers"] = 1
    return dict(spec, text=text, vision=vision)


def make(base: str, texts: list[str], out: Path, vocab: int = 8192, device: str | None = None,
         smoke: bool = False) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText

    from fifa.modeling.base import QWEN_TOKENS
    from fifa.modeling.tokenizer import train_tiny_tokenizer

    spec = shrunk(BASES[base]) if smoke else BASES[base]
    tok = train_tiny_tokenizer(texts, vocab, extra=QWEN_TOKENS)
    cfg = model_config(spec, tok)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    t = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(cfg, dtype=torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(json.dumps(OPENAI_CLIP, indent=1))
    return {"base": base, "params": n, "seconds": time.perf_counter() - t, "out": str(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", choices=sorted(BASES), required=True)
    ap.add_argument("--texts", type=Path, required=True, help="a build folder: its training text trains the tokenizer")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default=None, help="where the random weights are made (default: cuda if present)")
    ap.add_argument("--smoke", action="store_true", help="one layer per tower: a quick CPU test of the path")
    a = ap.parse_args()
    print(json.dumps(make(a.base, build_texts(a.texts), a.out, device=a.device, smoke=a.smoke)))


if __name__ == "__main__":
    main()
