"""One precision policy for training, evaluation and prediction.

- The frozen base keeps the configured dtype (``model.dtype``: bf16 halves its memory).
- Every *trained* parameter (LoRA, projector, new token rows, heads) is fp32: these are the master
  weights the optimizer updates (LISA and LLaVA do the same); a bf16 copy updated by AdamW loses
  updates smaller than its 8-bit mantissa can hold, and fp16 gradients cannot be unscaled.
- Wherever the model runs (a training step, evaluation, prediction), it runs under autocast in the
  compute dtype, so fp32 heads and bf16 activations meet in one dtype, on CPU as on GPU.
- A gradient scaler only for fp16 compute (bf16 has fp32's range).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from fifa.core.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def gpu_low_precision() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def weights_dtype(model_dtype: str) -> torch.dtype:
    """The dtype the base's weights are loaded in (``auto``: bf16/fp16 on a GPU, fp32 on CPU)."""
    if model_dtype == "auto":
        return gpu_low_precision() if torch.cuda.is_available() else torch.float32
    return DTYPES[model_dtype]


@dataclass(frozen=True)
class Precision:
    """Where and in which dtype the model computes; ``compute`` None means plain fp32."""

    device_type: str
    compute: torch.dtype | None

    def autocast(self):
        if self.compute is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.compute)

    def scaler(self):
        """A gradient scaler for fp16 compute, else None."""
        if self.compute is not torch.float16:
            return None
        return torch.amp.GradScaler(self.device_type)


def resolve(train_precision: str, base_dtype: torch.dtype, device: torch.device) -> Precision:
    """The compute dtype of a run: ``auto`` follows a low-precision base, and uses bf16 (fp16 without bf16
    support) on a GPU; fp32 compute over a bf16/fp16 base is refused (the base would be upcast anyway)."""
    low = base_dtype in (torch.bfloat16, torch.float16)
    if train_precision == "auto":
        if low:
            dtype = base_dtype
        elif device.type == "cuda":
            dtype = gpu_low_precision()
        else:
            dtype = None
    else:
        dtype = PRECISIONS[train_precision]
        if dtype is torch.float32 and low:
            raise UserError(
                f"train.precision=fp32 over a {str(base_dtype).replace('torch.', '')} base: "
                "set model.dtype=float32, or train.precision=auto"
            )
        dtype = None if dtype is torch.float32 else dtype
    return Precision(device.type, dtype)


def trainable_in_fp32(module: torch.nn.Module) -> int:
    """Cast every trainable parameter to fp32 in place (the master weights); returns how many were cast."""
    n = 0
    for p in module.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
            n += 1
    return n


def model_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of the frozen weights (the first non-trainable floating parameter; fp32 when all train)."""
    for p in module.parameters():
        if not p.requires_grad and p.is_floating_point():
            return p.dtype
    return torch.float32
