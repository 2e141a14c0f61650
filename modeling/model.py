"""``FifaModel``: a peft-wrapped base VLM plus the extra heads, with one forward for training and prediction.

Forward: the image features are computed once (``get_image_features``) and handed to the base as
``mm_encoder_outputs``; ``<region>`` embeddings are written into the token embeddings by a forward
hook on the embedding layer (so ``generate`` sees them too); the language model's last hidden
states give the LM loss (on answer tokens only, computed on those positions only), the [SEG]
queries (state of the token before each [SEG], as LISA) and the det/cls inputs (state at the end of
the prompt).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .family import Family
from .heads import FifaHeads, mask_loss, unused_zero
from .tokenizer import REGION, SEG


class FifaModel(nn.Module):
    def __init__(
        self,
        peft_model,
        tokenizer,
        fam: Family,
        cfg: TrainConfig,
        classes: list[str],
        decoder: nn.Module | None = None,
        regions: list[dict] | None = None,
    ):
        super().__init__()
        self.lm = peft_model
        self.fam, self.cfg = fam, cfg
        self.seg_id = tokenizer.convert_tokens_to_ids(SEG)
        self.region_id = tokenizer.convert_tokens_to_ids(REGION)
        d = self.inner.config.get_text_config().hidden_size
        self.heads = FifaHeads(d, d, classes, cfg.heads, decoder, regions, fam.grid)
        self._pending_regions: torch.Tensor | None = None
        self.det_pos_weight: torch.Tensor | None = None  # see balance_detection
        self.inner.get_input_embeddings().register_forward_hook(self._region_hook)

    def balance_detection(self, n_fake: int, n_real: int) -> None:
        """Weigh fake rows by n_real / n_fake in the detection loss: the head then learns a balanced prior, so
        its 0.5 threshold is right on a balanced bench whatever the training mix (FF++: 4 fakes per source)."""
        if n_fake and n_real:
            self.det_pos_weight = torch.tensor(n_real / n_fake)

    @property
    def inner(self):
        """The transformers model under peft (``...ForConditionalGeneration``)."""
        return self.lm.base_model.model

    # ------------------------------------------------------------------ pieces
    def _region_hook(self, module, inputs, output):
        pending = self._pending_regions
        if pending is None:
            return output
        ids = inputs[0]
        where = ids == self.region_id
        n = int(where.sum())
        if n == 0:
            return output
        if n != pending.shape[0]:
            raise RuntimeError(f"{n} <region> tokens but {pending.shape[0]} region queries")
        out = output.clone()
        out[where] = pending.to(out.dtype)
        return out

    def image_features(self, batch: dict):
        """(image outputs for ``mm_encoder_outputs``, features as a (B, g, g, D) grid, pixel features or None).

        With a pixel adapter the LLM's image tokens are the base's features plus the pooled pixel-CNN ones."""
        kw = {k: batch[k] for k in ("pixel_values", "image_grid_thw") if k in batch}
        if self.fam.kind == "llava":
            kw.update(
                vision_feature_layer=self.inner.config.vision_feature_layer,
                vision_feature_select_strategy=self.inner.config.vision_feature_select_strategy,
            )
        kw["pixel_values"] = kw["pixel_values"].to(self.inner.dtype)
        out = self.inner.model.get_image_features(**kw, return_dict=True)
        feats = torch.stack(list(out.pooler_output))
        g = self.fam.grid
        feats = feats.view(feats.shape[0], g, g, feats.shape[-1])
        pix = None
        if self.heads.pixels is not None:
            pix = self.heads.pixels(batch["images"].to(feats.device, feats.dtype))
            if self.heads.pixels.adapter is not None:
                feats = feats + self.heads.pixels.to_grid(pix, g).to(feats.dtype)
                out.pooler_output = list(feats.flatten(1, 2))
        return out, feats, pix

    def region_embeddings(self, batch: dict, feats: torch.Tensor) -> torch.Tensor | None:
        w = batch.get("region_weights")
        if w is None or self.heads.region is None:
            return None
        has = (batch["input_ids"] == self.region_id).any(dim=1)
        return self.heads.region(feats[has], w.to(feats.device), batch["region_boxes"].to(feats.device))

    def hidden(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Last hidden states (B, L, D), image feature grids (B, g, g, D), pixel features."""
        img_out, feats, pix = self.image_features(batch)
        self._pending_regions = self.region_embeddings(batch, feats)
        try:
            kw = {"image_grid_thw": batch["image_grid_thw"]} if "image_grid_thw" in batch else {}
            out = self.inner.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                mm_encoder_outputs={"image": img_out},
                use_cache=False,
                **kw,
                **self.fam.text_kwargs(batch["input_ids"]),
            )
        finally:
            self._pending_regions = None
        return out.last_hidden_state, feats, pix

    def seg_queries(self, ids: torch.Tensor, h: torch.Tensor, answer: torch.Tensor | None = None):
        """Hidden states of the tokens right before each [SEG] (row-major order) and their rows."""
        is_seg = ids[:, 1:] == self.seg_id
        if answer is not None:
            is_seg &= answer[:, 1:]
        rows = is_seg.nonzero()[:, 0]
        return h[:, :-1][is_seg], rows

    def masks(
        self,
        seg_h: torch.Tensor,
        rows: torch.Tensor,
        feats: torch.Tensor,
        pix: torch.Tensor | None,
        size: int,
        images: torch.Tensor | None = None,
        regions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.heads.mask(seg_h, rows, feats, pix, size, images, regions)

    def verdicts(self, h: torch.Tensor, prompt_end: torch.Tensor, feats: torch.Tensor, pix: torch.Tensor | None):
        at = h[torch.arange(h.shape[0], device=h.device), prompt_end.to(h.device)]
        return self.heads.verdict(at, feats, pix)

    def query_areas(self, batch: dict, feats: torch.Tensor) -> torch.Tensor:
        """(B, g, g) grid weights of each row's queried area (zeros for a row without a ``<region>``)."""
        areas = feats.new_zeros(feats.shape[:3])
        w = batch.get("region_weights")
        if w is not None:
            has = (batch["input_ids"] == self.region_id).any(dim=1).to(feats.device)
            areas[has] = w.to(feats.device, feats.dtype)
        return areas

    def query_verdicts(
        self, at: torch.Tensor, feats: torch.Tensor, pix: torch.Tensor | None, areas: torch.Tensor
    ) -> torch.Tensor | None:
        """Logits of "the queried region is manipulated" from the answer-start states ``at`` (B, D)."""
        return None if self.heads.query is None else self.heads.query(at, feats, pix, areas)

    # ------------------------------------------------------------------ training
    def _query_loss(
        self, batch: dict, h: torch.Tensor, feats: torch.Tensor, pix: torch.Tensor | None, logs: dict
    ) -> torch.Tensor:
        """The region-query verdict loss (rows whose answer opens with yes / no of a region query)."""
        if self.heads.query is None:
            return torch.zeros((), device=h.device)
        y = batch["query"].to(h.device)
        at = h[torch.arange(h.shape[0], device=h.device), batch["prompt_end"].to(h.device)]
        logit = self.query_verdicts(at, feats, pix, self.query_areas(batch, feats))
        ok = y >= 0
        if not ok.any():
            return logit.sum() * 0
        ql = F.binary_cross_entropy_with_logits(logit[ok].float(), y[ok].float())
        logs["query"] = ql.detach()
        return self.cfg.heads.query_weight * ql

    def _mark_loss(self, batch: dict, feats: torch.Tensor, pix: torch.Tensor | None, logs: dict) -> torch.Tensor:
        """The mark head's multi-label loss (rows whose sample's marked regions are known)."""
        if self.heads.marks is None:
            return torch.zeros((), device=feats.device)
        logit = self.heads.marks(feats, pix)
        y = batch["marks"].to(logit.device)
        ok = y[:, 0] >= 0
        if not ok.any():
            return logit.sum() * 0
        ml = F.binary_cross_entropy_with_logits(logit[ok].float(), y[ok].float())
        logs["marks"] = ml.detach()
        return self.cfg.heads.mark_weight * ml

    def _parse_loss(self, batch: dict, feats: torch.Tensor, pix: torch.Tensor | None, logs: dict) -> torch.Tensor:
        """Face parsing by the mask head's region queries (rows with region targets: region_maps.py)."""
        gate, w = self.heads.mask.gate, self.cfg.heads.region_parse_weight
        if gate is None or not w:
            return torch.zeros((), device=feats.device)
        if batch.get("parse_ids") is None:
            return sum(p.sum() for p in gate.parameters()) * 0
        t = batch["parse_targets"]
        pred = self.heads.mask.region_logits(
            batch["parse_ids"], batch["parse_rows"], feats, batch["images"], t.shape[-1]
        )
        pl, pl_logs = mask_loss(pred, t.to(pred.device), self.cfg.heads.bce_weight, self.cfg.heads.dice_weight)
        logs["parse_dice"] = pl_logs["mask_dice"]
        return w * pl

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Training loss and its logs: detached loss terms (device tensors, read once per step by the
        loop) and token counts (ints)."""
        cfg = self.cfg.heads
        ids, labels = batch["input_ids"], batch["labels"]
        h, feats, pix = self.hidden(batch)
        # LM loss on answer tokens only: logits only where a label follows
        tgt = labels[:, 1:]
        sel = tgt != -100
        logits = self.inner.lm_head(h[:, :-1][sel])
        lm = F.cross_entropy(logits.float(), tgt[sel])
        loss = cfg.ce_weight * lm
        logs = {"lm": lm.detach()}
        # masks
        seg_h, rows = self.seg_queries(ids, h, labels != -100)
        tmask = batch["mask_targets"]
        if len(seg_h):
            if len(seg_h) != len(tmask):
                raise RuntimeError(f"{len(seg_h)} [SEG] tokens but {len(tmask)} target masks")
            pred = self.masks(seg_h, rows, feats, pix, tmask.shape[-1], batch["images"], batch.get("seg_regions"))
            ml, ml_logs = mask_loss(pred, tmask.to(pred.device), cfg.bce_weight, cfg.dice_weight)
            loss = loss + ml
            logs.update(ml_logs)
        else:  # DDP: every trainable parameter must take part in every step
            loss = loss + unused_zero(self.heads.mask, self.heads.pixels)
        if self._pending_regions is None and batch.get("region_weights") is None and self.heads.region is not None:
            loss = loss + unused_zero(self.heads.region)
        # auxiliary heads on the state that starts the answer
        det, cls = self.verdicts(h, batch["prompt_end"], feats, pix)
        if det is not None:
            y = batch["det"].to(det.device)
            ok = y >= 0
            if ok.any():
                pw = self.det_pos_weight.to(det.device) if self.det_pos_weight is not None else None
                dl = F.binary_cross_entropy_with_logits(det[ok].float(), y[ok].float(), pos_weight=pw)
                loss = loss + cfg.det_weight * dl
                logs["det"] = dl.detach()
            else:
                loss = loss + det.sum() * 0
        if cls is not None:
            y = batch["cls"].to(cls.device)
            ok = y >= 0
            if ok.any():
                cl = F.cross_entropy(cls[ok].float(), y[ok])
                loss = loss + cfg.cls_weight * cl
                logs["cls"] = cl.detach()
            else:
                loss = loss + cls.sum() * 0
        loss = loss + self._query_loss(batch, h, feats, pix, logs) + self._mark_loss(batch, feats, pix, logs)
        loss = loss + self._parse_loss(batch, feats, pix, logs)
        logs["loss"] = loss.detach()
        logs["tokens"] = int(sel.sum())  # answer tokens (the LM loss's)
        logs["seq_tokens"] = int(batch["attention_mask"].sum())  # every token processed, image tokens included
        return loss, logs
