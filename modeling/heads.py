"""The extra heads: [SEG] mask head (with a decoder seam), region encoder, detection and classification.

All heads read the base model's *projected* image features (the tokens the LLM sees, one per grid
cell, in raster order) and LLM hidden states, so they work the same on every supported family.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .parsing import RegionParser, and_logits


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(inplace=True), nn.Linear(d_hidden, d_out))


class LinearMaskDecoder(nn.Module):
    """Mask logits = query . patch features on the feature grid (bilinear upsampling happens later)."""

    def __init__(self, feat_dim: int, mask_dim: int):
        super().__init__()
        self.proj = nn.Linear(feat_dim, mask_dim)

    def image_maps(self, feats: torch.Tensor, pix: torch.Tensor | None, images: torch.Tensor | None = None):
        """(B, g, g, D) -> (B, C, g, g): what a query is matched against, once per image."""
        return self.proj(feats).permute(0, 3, 1, 2)

    def forward(self, query: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """query (M, C), maps (M, C, h, w) -> logits (M, h, w)."""
        return torch.einsum("mc,mchw->mhw", query, maps) / maps.shape[1] ** 0.5


class ForensicStem(nn.Module):
    """Fixed residual filters in front of the pixel CNN: the pixels, their high-pass residual (pixel minus
    its 3x3 mean) and their chroma residual (pixel minus its grey level), the last two amplified.

    Forgery traces (noise, blending seams, a colour cast on a grey face) are a few grey levels in
    images whose content spans hundreds; a randomly initialised CNN on raw pixels takes thousands of
    steps to find them, with the residuals in front it finds them in a few hundred (measured in
    docs/train.md). SRM filters and constrained convolutions in forensic detectors do the same job."""

    gain: float = 8.0
    out_channels = 9

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean3 = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        grey = x.mean(dim=1, keepdim=True)
        return torch.cat([x, (x - mean3) * self.gain, (x - grey) * self.gain], dim=1)


class PixelEncoder(nn.Module):
    """A small CNN over the (normalised) pixels at half resolution: local artifacts (colour, noise, blur
    edges) that a patch tokenizer averages away. Feeds the conv mask decoder and the verdict heads and,
    with ``heads.pixel_adapter``, adds pooled features to the image tokens the LLM sees
    (zero-initialised, so a pretrained base starts unchanged)."""

    def __init__(self, channels: int, feat_dim: int, adapter: bool, stem: str = "forensic", context: int = 0):
        super().__init__()
        c = channels
        self.stem = ForensicStem() if stem == "forensic" else nn.Identity()
        c_in = ForensicStem.out_channels if stem == "forensic" else 3
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.GELU(),
        )
        #: dilated residual layers (dilation 2, 4, 8, ...): a swapped region's inside looks like skin up close;
        #: only its seam, seen from a distance, says it is all swapped (without them its masks are rings)
        self.context = nn.ModuleList(nn.Conv2d(c, c, 3, padding=2**k, dilation=2**k) for k in range(1, context + 1))
        self.adapter = nn.Linear(2 * c, feat_dim) if adapter else None
        if self.adapter is not None:
            nn.init.zeros_(self.adapter.weight), nn.init.zeros_(self.adapter.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.net(self.stem(images))
        for conv in self.context:
            x = x + F.gelu(conv(x))
        return x

    def to_grid(self, pix: torch.Tensor, grid: int) -> torch.Tensor:
        """(B, C, H, W) -> (B, g, g, feat_dim): mean and max pooled per grid cell, projected."""
        x = torch.cat([F.adaptive_avg_pool2d(pix, grid), F.adaptive_max_pool2d(pix, grid)], dim=1)
        return self.adapter(x.permute(0, 2, 3, 1))


class ConvMaskDecoder(nn.Module):
    """A light pixel decoder (PixelLM-like, no SAM): patch features upsampled and fused with the pixel
    features at half resolution, then queried. The seam for a stronger decoder (sam.py) is the pair
    ``image_maps(feats, pix, images) -> maps`` (per image) and ``forward(query, maps) -> logits`` (per [SEG])."""

    def __init__(self, feat_dim: int, mask_dim: int, pixel_channels: int):
        super().__init__()
        self.proj = nn.Linear(feat_dim, mask_dim)
        self.fuse = nn.Sequential(
            nn.Conv2d(mask_dim + pixel_channels, mask_dim, 3, padding=1), nn.GELU(), nn.Conv2d(mask_dim, mask_dim, 1)
        )

    def image_maps(self, feats: torch.Tensor, pix: torch.Tensor | None, images: torch.Tensor | None = None):
        """(B, g, g, D) patch features + (B, P, h, w) pixel features -> (B, C, h, w), once per image."""
        f = self.proj(feats).permute(0, 3, 1, 2)  # (B, C, g, g)
        p = pix.to(f.dtype)
        f = F.interpolate(f, size=p.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([f, p], dim=1))

    forward = LinearMaskDecoder.forward


class MaskHead(nn.Module):
    """[SEG] hidden state -> query (Linear-ReLU-Linear, as LISA's text_hidden_fcs) -> mask logits."""

    def __init__(
        self,
        llm_dim: int,
        feat_dim: int,
        mask_dim: int,
        decoder: str | nn.Module = "conv",
        pixel_channels: int = 32,
        n_regions: int = 0,
        region_gate: bool = False,
    ):
        super().__init__()
        #: the named region's embedding joins a mark's [SEG] state (index n_regions: none; zero at the start)
        self.regions = nn.Embedding(n_regions + 1, llm_dim, padding_idx=n_regions) if n_regions else None
        if self.regions is not None:
            nn.init.zeros_(self.regions.weight)
        if isinstance(decoder, nn.Module):  # e.g. sam.SamDecoder: queries at its prompt width
            self.decoder, mask_dim = decoder, decoder.query_dim
        else:
            self.decoder = (
                ConvMaskDecoder(feat_dim, mask_dim, pixel_channels)
                if decoder == "conv"
                else LinearMaskDecoder(feat_dim, mask_dim)
            )
        self.query = mlp(llm_dim, llm_dim, mask_dim)
        #: where each region of the mark vocabulary lies in the image (face parsing). A mark's mask is its [SEG]
        #: query's mask AND its named region's (``_gated``): the [SEG] finds the traces, the parser keeps the
        #: named region's part of them (an iris recolour marks both eyeballs and the lashes)
        self.gate = RegionParser(feat_dim, n_regions) if region_gate and n_regions else None

    def forward(
        self,
        seg_hidden: torch.Tensor,
        rows: torch.Tensor,
        feats: torch.Tensor,
        pix: torch.Tensor | None,
        out_size: int,
        images: torch.Tensor | None = None,
        regions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One mask per [SEG] state; ``rows`` names each one's image, ``regions`` (optional) each one's region
        of the mark vocabulary (-1: none). The decoder's image maps are computed once per image, not once per
        [SEG] (an ``age`` answer has several)."""
        if self.regions is not None and regions is not None:
            idx = torch.where(regions >= 0, regions, self.regions.padding_idx).to(seg_hidden.device)
            seg_hidden = seg_hidden + self.regions(idx).to(seg_hidden.dtype)
        which_images, which = torch.unique(rows, return_inverse=True)
        maps = self.decoder.image_maps(
            feats[which_images],
            pix[which_images] if pix is not None else None,
            images[which_images] if images is not None else None,
        )
        logits = self.decoder(self.query(seg_hidden), maps[which])
        logits = F.interpolate(logits[:, None], size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]
        if self.gate is not None and regions is not None:
            logits = self._gated(logits, regions.to(logits.device), rows, feats, images)
        return logits

    def region_logits(
        self, ids: torch.Tensor, rows: torch.Tensor, feats: torch.Tensor, images: torch.Tensor, out_size: int
    ) -> torch.Tensor:
        """(N, out, out) logits of "pixel in region ids[n]" for the image ``rows[n]`` (face parsing)."""
        which_images, which = torch.unique(rows.to(feats.device), return_inverse=True)
        maps = self.gate.image_maps(feats[which_images], images[which_images].to(feats.device))
        logits = self.gate(ids, maps[which])
        return F.interpolate(logits[:, None], size=(out_size, out_size), mode="bilinear", align_corners=False)[:, 0]

    def _gated(self, logits: torch.Tensor, regions: torch.Tensor, rows, feats, images) -> torch.Tensor:
        """Masks of marks that name a vocabulary region: p = p(trace) * p(region), returned as logits. The
        parser learns from the segmentation alone (region_parse_weight): its logits are not trained through
        the product, so "where is the left eyeball" stays what it says."""
        named = regions >= 0
        if not bool(named.any()) or images is None:
            return logits
        size = logits.shape[-1]
        with torch.no_grad():
            region = self.region_logits(regions[named], rows[named], feats, images, size)
        out = logits.clone()
        out[named] = and_logits(logits[named].float(), region.float()).to(logits.dtype)
        return out


class RegionEncoder(nn.Module):
    """A ``<region>`` token's embedding: mask-pooled image features plus a box-position MLP (GLaMM-like)."""

    def __init__(self, feat_dim: int, llm_dim: int):
        super().__init__()
        self.feat = mlp(feat_dim, llm_dim, llm_dim)
        self.pos = mlp(4, llm_dim // 2, llm_dim)

    def forward(self, feats: torch.Tensor, weights: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        # feats (R, g, g, D), weights (R, g, g) in [0, 1], boxes (R, 4) normalised to [0, 1]
        w = weights.to(feats.dtype)
        pooled = torch.einsum("rhw,rhwd->rd", w, feats) / w.sum(dim=(1, 2)).clamp_min(1e-6)[:, None]
        return self.feat(pooled) + self.pos(boxes.to(feats.dtype))


class VerdictHeads(nn.Module):
    """Detection (fake logit) and classification over [hidden state at the answer start ; mean and max
    of the image features ; mean and max of the pixel CNN's features] (max: a small edited region must
    not be averaged away; pixels: traces finer than a patch)."""

    def __init__(self, llm_dim: int, feat_dim: int, n_classes: int, det: bool = True, pixel_channels: int = 0):
        super().__init__()
        d = llm_dim + 2 * feat_dim + 2 * pixel_channels
        self.pixel_channels = pixel_channels
        self.det = mlp(d, 256, 1) if det else None
        self.cls = mlp(d, 256, n_classes) if n_classes > 0 else None

    def forward(self, hidden: torch.Tensor, feats: torch.Tensor, pix: torch.Tensor | None = None):
        parts = [hidden, feats.mean(dim=(1, 2)).to(hidden.dtype), feats.amax(dim=(1, 2)).to(hidden.dtype)]
        if self.pixel_channels:
            parts += [pix.mean(dim=(2, 3)).to(hidden.dtype), pix.amax(dim=(2, 3)).to(hidden.dtype)]
        x = torch.cat(parts, dim=-1)
        det = self.det(x)[:, 0] if self.det is not None else None
        cls = self.cls(x) if self.cls is not None else None
        return det, cls


class QueryVerdictHead(nn.Module):
    """Yes/no of a region query (``rq_*``: is the queried region manipulated?) over [hidden state at the answer
    start ; image features pooled over the query area, mean and max ; pixel-CNN features pooled over it ; the
    global means and maxima]. A query given by name (``rq_name``) has no area: its pooled parts are zeros and the
    state, which has read the name, carries it."""

    def __init__(self, llm_dim: int, feat_dim: int, pixel_channels: int = 0):
        super().__init__()
        self.pixel_channels = pixel_channels
        self.net = mlp(llm_dim + 4 * feat_dim + 3 * pixel_channels + 1, 256, 1)

    def forward(
        self, hidden: torch.Tensor, feats: torch.Tensor, pix: torch.Tensor | None, weights: torch.Tensor
    ) -> torch.Tensor:
        # hidden (B, D), feats (B, g, g, D), pix (B, C, h, w) or None, weights (B, g, g): 0 where no area
        w = weights.to(hidden.dtype)
        area = w.sum(dim=(1, 2))
        has = (area > 0).to(hidden.dtype)[:, None]
        f = feats.to(hidden.dtype)
        inside = torch.einsum("bhw,bhwd->bd", w, f) / area.clamp_min(1e-6)[:, None]
        peak = (f * w[..., None] - 1e4 * (1 - w[..., None])).amax(dim=(1, 2)) * has
        parts = [hidden, inside, peak, f.mean(dim=(1, 2)), f.amax(dim=(1, 2))]
        if self.pixel_channels:
            p = pix.to(hidden.dtype)
            wp = F.interpolate(w[:, None], size=p.shape[-2:], mode="nearest")
            p_in = (p * wp).sum(dim=(2, 3)) / wp.sum(dim=(2, 3)).clamp_min(1e-6)
            parts += [p_in, p.mean(dim=(2, 3)), p.amax(dim=(2, 3))]
        return self.net(torch.cat(parts + [has], dim=-1))[:, 0]


class MarkHead(nn.Module):
    """Which tree regions an ``age`` answer marks (FiFa-MLLM's auxiliary region task): one logit per region of
    the vocabulary (the nodes marked in the training answers). A 1x1 conv turns the feature grid (and the pixel
    CNN's features pooled to it) into a few artifact maps; a linear layer over the whole flattened maps scores
    each region, so where on the face the traces are decides which region (faces are aligned crops)."""

    def __init__(self, feat_dim: int, pixel_channels: int, grid: int, n_regions: int, maps: int = 16):
        super().__init__()
        self.grid, self.pixel_channels = grid, pixel_channels
        self.maps = nn.Sequential(nn.Conv2d(feat_dim + 2 * pixel_channels, maps, 1), nn.GELU())
        self.score = nn.Linear(maps * grid * grid, n_regions)

    def forward(self, feats: torch.Tensor, pix: torch.Tensor | None) -> torch.Tensor:
        x = feats.permute(0, 3, 1, 2)  # (B, D, g, g)
        if self.pixel_channels:
            p = pix.to(x.dtype)
            x = torch.cat([x, F.adaptive_avg_pool2d(p, self.grid), F.adaptive_max_pool2d(p, self.grid)], dim=1)
        return self.score(self.maps(x).flatten(1))


class FifaHeads(nn.Module):
    """Every extra head. ``decoder``: a mask decoder module built outside (SAM, loaded from its files), else
    the ``heads.mask_decoder`` named in the config is built here."""

    def __init__(
        self,
        llm_dim: int,
        feat_dim: int,
        classes: list[str],
        cfg,
        decoder: nn.Module | None = None,
        regions: list[dict] | None = None,
        grid: int = 0,
    ):
        super().__init__()
        self.classes = list(classes)
        #: the mark head's vocabulary: ``{"id": node id, "phrase": how training answers name it}``
        self.regions = list(regions or [])
        use_pix = cfg.mask_decoder == "conv" or cfg.pixel_adapter
        self.pixels = (
            PixelEncoder(cfg.pixel_channels, feat_dim, cfg.pixel_adapter, cfg.pixel_stem, cfg.pixel_context)
            if use_pix
            else None
        )
        n_marked = len(regions or []) if cfg.mark_head and cfg.mark_queries else 0
        self.mask = MaskHead(
            llm_dim, feat_dim, cfg.mask_dim, decoder or cfg.mask_decoder, cfg.pixel_channels, n_marked, cfg.region_gate
        )
        self.region = RegionEncoder(feat_dim, llm_dim) if cfg.region_encoder else None
        self.verdict = VerdictHeads(
            llm_dim, feat_dim, len(classes) if cfg.cls_head else 0, cfg.det_head, cfg.pixel_channels if use_pix else 0
        )
        self.query = (
            QueryVerdictHead(llm_dim, feat_dim, cfg.pixel_channels if use_pix else 0) if cfg.query_head else None
        )
        self.marks = (
            MarkHead(feat_dim, cfg.pixel_channels if use_pix else 0, grid, len(self.regions))
            if cfg.mark_head and self.regions and grid
            else None
        )
        #: per class, the words a training answer of that class opens with ("IrisRecolour", "Real"): a guided
        #: cls answer starts with them (modeling/predict.py)
        self.class_openings: dict[str, str] = {}

    def saved_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps: every head weight except a frozen, loaded-from-files decoder's (SAM's image and
        prompt encoders are read from ``heads.sam_model`` again; its trained mask decoder is kept)."""
        frozen = self._frozen_keys()
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = set(missing) - self._frozen_keys()
        if missing or unexpected:
            raise RuntimeError(
                f"heads do not match the checkpoint: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
            )

    def _frozen_keys(self) -> set[str]:
        sam = getattr(self.mask.decoder, "sam", None)
        if sam is None:
            return set()
        prefix = "mask.decoder.sam."
        return {prefix + k for k in sam.state_dict() if not k.startswith("mask_decoder.")}


def dice_loss(logits: torch.Tensor, target: torch.Tensor, scale: float = 1000.0, eps: float = 1e-6) -> torch.Tensor:
    """LISA's dice loss per mask (mean over masks)."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    num = 2 * (p / scale * t).sum(-1)
    den = (p / scale).sum(-1) + (t / scale).sum(-1)
    return (1 - (num + eps) / (den + eps)).mean()


def mask_loss(logits: torch.Tensor, target: torch.Tensor, bce_w: float, dice_w: float) -> tuple[torch.Tensor, dict]:
    bce = (
        F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none").flatten(1).mean(-1).mean()
    )
    dice = dice_loss(logits.float(), target.float())
    return bce_w * bce + dice_w * dice, {"mask_bce": bce.detach(), "mask_dice": dice.detach()}


def unused_zero(*modules: nn.Module | None) -> torch.Tensor:
    """``0 * sum(p)`` over a branch's parameters: keeps DDP ranks in step on batches that skip it."""
    total = None
    for m in modules:
        if m is None:
            continue
        for p in m.parameters():
            if p.requires_grad:
                total = p.sum() * 0 if total is None else total + p.sum() * 0
    return total if total is not None else torch.zeros(())
