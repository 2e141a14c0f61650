"""Face parsing for the marks' masks (``heads.region_gate``): where each region of the mark vocabulary lies.

A mark's mask is p(trace) x p(region) (:func:`and_logits`): the mark's [SEG] query finds the traces, the
:class:`RegionParser` keeps the named region's part of them. The parser learns from the FICT segmentation of
the training images (modeling/region_maps.py) alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RegionParser(nn.Module):
    """Where each region of the mark vocabulary lies (face parsing): maps at half resolution from the image
    itself (pooled), the patch features (upsampled) and pixel coordinates, matched against one learned
    query per region. Its own maps: the mask decoder's are trained to find traces, not parts of a face."""

    def __init__(self, feat_dim: int, n_regions: int, channels: int = 32):
        super().__init__()
        self.proj = nn.Linear(feat_dim, channels)
        self.net = nn.Sequential(
            nn.Conv2d(channels + 5, channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.queries = nn.Embedding(n_regions, channels)

    def image_maps(self, feats: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """(B, g, g, D) patch features + (B, 3, S, S) images -> (B, C, S/2, S/2)."""
        size = images.shape[-1] // 2
        f = F.interpolate(self.proj(feats).permute(0, 3, 1, 2), size=(size, size), mode="bilinear")
        im = F.adaptive_avg_pool2d(images.to(f.dtype), size)
        ramp = torch.linspace(-1, 1, size, device=f.device, dtype=f.dtype)
        yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
        coords = torch.stack([yy, xx]).expand(len(f), 2, size, size)
        maps: torch.Tensor = self.net(torch.cat([f, im, coords], dim=1))
        return maps

    def forward(self, ids: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Region ids (N,), each one's image maps (N, C, h, w) -> logits (N, h, w)."""
        q = self.queries(ids.to(maps.device)).to(maps.dtype)
        logits: torch.Tensor = torch.einsum("nc,nchw->nhw", q, maps) / maps.shape[1] ** 0.5
        return logits


def and_logits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """logit(sigmoid(a) * sigmoid(b)), stable for large |a|, |b|."""
    log_p = (F.logsigmoid(a) + F.logsigmoid(b)).clamp(max=-1e-6)
    return log_p - torch.log(-torch.expm1(log_p))
