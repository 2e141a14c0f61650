"""What differs between the supported VLM families: image placeholders, pixel layout, module names.

Supported: LLaVA (1.5 style: CLIP tower, MLP projector, ``<image>`` expanded to one token per
patch) and Qwen2-VL / Qwen2.5-VL (``<|vision_start|><|image_pad|>...<|vision_end|>``, patches
merged 2x2 by the projector, M-RoPE positions that need ``mm_token_type_ids``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fifa.core.errors import UserError

SUPPORTED = {"llava": "llava", "qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_vl"}
SUPPORTED_TEXT = "LLaVA (model_type llava), Qwen2-VL (qwen2_vl), Qwen2.5-VL (qwen2_5_vl)"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Family:
    """One base model's image interface (what the collator and the model wrapper need)."""

    kind: str  # llava | qwen2_vl
    model_type: str
    image_size: int
    patch: int
    merge: int  # patches merged per side by the projector (1 for LLaVA)
    temporal_patch: int
    image_token_id: int
    mean: tuple
    std: tuple

    @property
    def grid(self) -> int:
        """Side of the grid of image features the LLM sees (one feature per grid cell)."""
        return self.image_size // (self.patch * self.merge)

    @property
    def n_image_tokens(self) -> int:
        return self.grid * self.grid

    def image_text(self, tokenizer) -> str:
        """The text that replaces ``<image>`` in a prompt: the placeholder expanded to every feature."""
        tok = tokenizer.convert_ids_to_tokens(self.image_token_id)
        if self.kind == "llava":
            return tok * self.n_image_tokens
        return "<|vision_start|>" + tok * self.n_image_tokens + "<|vision_end|>"

    def pixel_values(self, chw: np.ndarray) -> np.ndarray:
        """One normalised 3xSxS image -> this family's pixel_values for it."""
        if self.kind == "llava":
            return chw
        c, h, w = chw.shape
        p, m = self.patch, self.merge
        gh, gw = h // p, w // p
        x = chw.reshape(c, gh // m, m, p, gw // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
        x = np.broadcast_to(x[:, :, :, :, :, None], (*x.shape[:5], self.temporal_patch, p, p))
        return np.ascontiguousarray(x.reshape(gh * gw, c * self.temporal_patch * p * p))

    def batch_pixels(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Stack per-image pixel_values into the model's keyword arguments."""
        if self.kind == "llava":
            return {"pixel_values": torch.from_numpy(np.stack(items))}
        g = self.image_size // self.patch
        return {
            "pixel_values": torch.from_numpy(np.concatenate(items)),
            "image_grid_thw": torch.tensor([[1, g, g]] * len(items), dtype=torch.long),
        }

    def text_kwargs(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra per-token inputs (Qwen2-VL's M-RoPE needs to know which tokens are image tokens)."""
        if self.kind == "llava":
            return {}
        return {"mm_token_type_ids": (input_ids == self.image_token_id).to(torch.int)}

    def vision_module_names(self) -> list[str]:
        return ["vision_tower"] if self.kind == "llava" else ["visual"]

    def projector_names(self) -> list[str]:
        return ["multi_modal_projector"] if self.kind == "llava" else ["merger"]


def family_of(config, image_size: int, mean=None, std=None) -> Family:
    """The :class:`Family` of a base model config; a clear error for any other architecture."""
    mt = getattr(config, "model_type", None)
    if mt not in SUPPORTED:
        raise UserError(f"unsupported base model architecture {mt!r}: supported families are {SUPPORTED_TEXT}")
    kind = SUPPORTED[mt]
    vc = config.vision_config
    if kind == "llava":
        if getattr(config, "vision_feature_select_strategy", "default") != "default":
            raise UserError("LLaVA bases with vision_feature_select_strategy != 'default' are not supported")
        if vc.image_size != image_size:
            raise UserError(f"model.image_size={image_size} but the LLaVA vision tower takes {vc.image_size} px images")
        return Family(
            "llava",
            mt,
            image_size,
            vc.patch_size,
            1,
            1,
            config.image_token_id,
            tuple(mean or CLIP_MEAN),
            tuple(std or CLIP_STD),
        )
    m = vc.spatial_merge_size
    if image_size % (vc.patch_size * m):
        raise UserError(f"model.image_size must be a multiple of {vc.patch_size * m} for {mt}")
    return Family(
        "qwen2_vl",
        mt,
        image_size,
        vc.patch_size,
        m,
        vc.temporal_patch_size,
        config.image_token_id,
        tuple(mean or CLIP_MEAN),
        tuple(std or CLIP_STD),
    )
