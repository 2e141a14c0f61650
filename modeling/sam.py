"""A SAM grounding decoder for ``[SEG]`` (``heads.mask_decoder: sam``), as LISA, GLaMM and FiFa-MLLM use.

transformers' ``SamModel`` from a local folder or hub id (``heads.sam_model``): its image encoder is
frozen and runs once per image (no gradients), the ``[SEG]`` query (the mask head's MLP output, at
the prompt encoder's width) is the one sparse prompt embedding, the dense embedding is SAM's
"no mask" one, and SAM's mask decoder is trained (BCE + Dice, as every mask decoder here). Only the
mask decoder's weights are saved with the heads; the rest is read from ``heads.sam_model`` again.

Images reach SAM through the same letterboxed square as the VLM (so masks line up), de-normalised
from the family's statistics and re-normalised with SAM's (ImageNet), resized to SAM's input side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fifa.core.errors import UserError

SAM_MEAN = (0.485, 0.456, 0.406)
SAM_STD = (0.229, 0.224, 0.225)
#: Prefix of the SAM parameters inside the heads' state dict; only its mask decoder is trained and saved.
TRAINED_PREFIX = "mask_decoder."


def load_sam(name: str, weights_dtype: torch.dtype):
    """``SamModel`` from a folder or hub id; a clear error when it cannot be had (no weights, not SAM)."""
    from transformers import AutoConfig, SamModel

    try:
        cfg = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise UserError(
            f"heads.sam_model={name!r}: no SAM config there ({str(e).splitlines()[0]}); give a folder "
            "with config.json and model.safetensors, or a hub id such as facebook/sam-vit-base"
        ) from None
    if getattr(cfg, "model_type", None) != "sam":
        raise UserError(f"heads.sam_model={name!r} is a {getattr(cfg, 'model_type', None)!r} model, not SAM")
    try:
        sam = SamModel.from_pretrained(name, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise UserError(
            f"heads.sam_model={name!r}: cannot load SAM's weights ({str(e).splitlines()[0]}); the "
            "folder needs model.safetensors (or a hub id and the network)"
        ) from None
    for p in sam.parameters():
        p.requires_grad_(False)
    for p in sam.mask_decoder.parameters():  # trained, fp32 master weights (precision.py)
        p.requires_grad_(True)
    sam.vision_encoder.to(weights_dtype)
    return sam


class SamDecoder(nn.Module):
    """The decoder seam of :class:`fifa.modeling.heads.MaskHead` over SAM: ``image_maps`` are SAM's image
    embeddings (once per image), ``forward(query, maps)`` prompts the mask decoder with each query."""

    def __init__(self, sam, mean: tuple, std: tuple):
        super().__init__()
        self.sam = sam
        self.query_dim = sam.config.prompt_encoder_config.hidden_size
        self.side = sam.config.vision_config.image_size
        self.register_buffer("in_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("sam_mean", torch.tensor(SAM_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("sam_std", torch.tensor(SAM_STD).view(1, 3, 1, 1), persistent=False)

    def image_maps(self, feats: torch.Tensor, pix: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images normalised for the VLM -> (B, C, h, w) SAM image embeddings (frozen encoder)."""
        x = images.float() * self.in_std + self.in_mean
        x = (x - self.sam_mean) / self.sam_std
        x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        enc = self.sam.vision_encoder
        with torch.no_grad():
            return enc(x.to(next(enc.parameters()).dtype))[0].float()  # after the neck: the decoder's width

    def forward(self, query: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """query (M, C) -> one sparse prompt each; maps (M, C, h, w) -> mask logits (M, 4h, 4w)."""
        m, _, h, w = maps.shape
        pe = self.sam.get_image_wide_positional_embeddings().to(maps.dtype).expand(m, -1, -1, -1)
        dense = self.sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(m, -1, h, w)
        masks, _ = self.sam.mask_decoder(
            image_embeddings=maps,
            image_positional_embeddings=pe,
            sparse_prompt_embeddings=query[:, None, None, :].to(maps.dtype),
            dense_prompt_embeddings=dense.to(maps.dtype),
            multimask_output=False,
        )
        return masks[:, 0, 0]
