"""Torch datasets over instruction rows, and the collator that pads them into batches.

Rows that cannot be used (an image that does not decode, a mask that does not fit) come back as
:class:`Skipped` and are dropped by the collator, which counts them by reason.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from fifa.core.marks import parse as parse_marks

from .data import InstructData
from .examples import (
    REGION_TASKS,
    Example,
    Skip,
    class_value,
    det_label,
    encode_chat,
    image_inputs,
    load_image,
    mask_targets,
    query_label,
    region_query,
    render_messages,
)
from .family import Family
from .region_maps import RegionMaps, image_key, pick_regions, region_targets
from .tokenizer import SEG


@dataclass
class Skipped:
    id: str
    reason: str


class Encoder:
    """Turns one instruction row into an :class:`Example` (runs in DataLoader worker processes)."""

    def __init__(
        self,
        tokenizer,
        fam: Family,
        classes: list[str],
        cls_field: str,
        mask_size: int,
        max_length: int,
        marks: dict[str, list[int]] | None = None,
        regions: list[str] | tuple[str, ...] = (),
        region_maps: RegionMaps | None = None,
        region_samples: int = 0,
        mark_masks: str = "region",
    ):
        self.tok, self.fam = tokenizer, fam
        self.regions = list(regions)
        #: where the vocabulary's regions lie in each image (region_maps.py); ``region_samples`` of them per row
        self.region_maps, self.region_samples = region_maps, region_samples
        #: ``artifact``: every mark of an age answer learns the whole artifact (predict.region_masks: segmenter
        #: then keeps the named region's anchor of it)
        self.mark_masks = mark_masks
        self.marks = marks  # the mark head's targets per sample (vocab.sample_marks)
        self.region_index = {r: k for k, r in enumerate(regions)}  # the mark vocabulary's node ids
        self.n_regions = len(regions)
        self.classes = {c: i for i, c in enumerate(classes)}
        self.cls_field, self.mask_size, self.max_length = cls_field, mask_size, max_length
        self.seg_id = tokenizer.convert_tokens_to_ids(SEG)

    def __call__(self, row: dict, resolve) -> Example:
        task = row.get("task") or ""
        region = task in REGION_TASKS
        masks = row.get("masks") or []
        msgs = render_messages(row.get("messages") or [], region, len(masks))
        enc = encode_chat(self.tok, self.fam, msgs, self.max_length, self.seg_id)
        rgb = load_image(resolve(row.get("image")))
        lb, chw, pix = image_inputs(rgb, self.fam)
        targets = mask_targets(masks[: enc.n_seg], lb, self.mask_size)
        if len(targets) != enc.n_seg:
            raise Skip("more [SEG] marks than masks")
        if self.mark_masks == "artifact" and task == "age" and len(targets) > 1:
            targets = np.repeat(targets.max(axis=0, keepdims=True), len(targets), axis=0)
        rq = region_query(row, lb, self.fam.grid) if region else None
        cls = self.classes.get(class_value(row, self.cls_field), -1) if self.classes else -1
        ex = Example(
            str(row.get("id")),
            task,
            enc.input_ids,
            enc.labels,
            enc.prompt_end,
            chw,
            pix,
            targets,
            rq,
            det_label(row.get("label")),
            cls,
            query_label(task, row.get("messages") or []),
            self._marks(row),
            self._seg_regions(row.get("messages") or [], enc.n_seg),
        )
        return self._parse_targets(ex, row, lb)

    def _parse_targets(self, ex: Example, row: dict, lb) -> Example:
        """The example with ``region_samples`` vocabulary regions of its image and their masks (face parsing)."""
        found = None if self.region_maps is None else self.region_maps.get(image_key(row.get("image")) or "")
        if found is None or not self.region_samples or not self.regions:
            return ex
        rng = np.random.default_rng(zlib.crc32(str(row.get("id")).encode()))
        chosen = pick_regions(found, self.regions, self.region_samples, rng)
        ex.region_ids = np.asarray(chosen, np.int64)
        ex.region_maps = region_targets(found, self.regions, chosen, lb, self.mask_size)
        return ex

    def _seg_regions(self, messages: list[dict], n_seg: int) -> np.ndarray:
        """The vocabulary index of the region each [SEG] marks (the k-th [SEG] is the k-th mark of the answers;
        -1 for an appended one or a region outside the vocabulary)."""
        nodes = [n for m in messages if m.get("role") == "assistant" for n, _ in parse_marks(m.get("content"))]
        out = np.full(n_seg, -1, np.int64)
        for k, node in enumerate(nodes[:n_seg]):
            out[k] = self.region_index.get(node, -1)
        return out

    def _marks(self, row: dict) -> np.ndarray:
        """Multi-hot regions the row's sample marks; -1 everywhere when unknown (no ``age`` row of the sample)."""
        out = np.full(max(self.n_regions, 1), -1.0, np.float32)
        known = None if self.marks is None else self.marks.get(str(row.get("sample_id")))
        if known is not None:
            out[:] = 0
            out[known] = 1
        return out


class InstructDataset(torch.utils.data.Dataset):
    """Map-style dataset over a build split (rows read by row group in each worker)."""

    def __init__(self, data: InstructData, encoder: Encoder):
        self.data, self.encoder = data, encoder

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        row = self.data.rows.row(int(i))
        try:
            return self.encoder(row, self.data.resolve_image)
        except Skip as e:
            return Skipped(str(row.get("id")), e.reason)
        except (ValueError, OSError) as e:
            return Skipped(str(row.get("id")), f"{type(e).__name__}: {e}"[:120])


class OrderSampler(torch.utils.data.Sampler):
    """Indices of a precomputed order from ``start`` on (this rank's share), for exact resume."""

    def __init__(self, order: np.ndarray, start: int = 0):
        self.order, self.start = order, start

    def __len__(self) -> int:
        return max(0, len(self.order) - self.start)

    def __iter__(self):
        return iter(self.order[self.start :].tolist())


def collate(items: list, fam: Family, pad_id: int) -> dict:
    ok = [x for x in items if isinstance(x, Example)]
    skipped = Counter(x.reason for x in items if isinstance(x, Skipped))
    batch: dict = {"skipped": skipped, "n": len(ok)}
    if not ok:
        return batch
    L = max(len(x.input_ids) for x in ok)
    ids = torch.full((len(ok), L), pad_id, dtype=torch.long)
    labels = torch.full((len(ok), L), -100, dtype=torch.long)
    att = torch.zeros((len(ok), L), dtype=torch.long)
    for b, x in enumerate(ok):
        n = len(x.input_ids)
        ids[b, :n] = torch.tensor(x.input_ids)
        labels[b, :n] = torch.tensor(x.labels)
        att[b, :n] = 1
    ms = ok[0].masks.shape[-1] if ok[0].masks.ndim == 3 else 0
    masks = [x.masks for x in ok if len(x.masks)]
    regions = [x.region for x in ok if x.region is not None]
    batch.update(
        input_ids=ids,
        labels=labels,
        attention_mask=att,
        prompt_end=torch.tensor([x.prompt_end for x in ok]),
        images=torch.from_numpy(np.stack([x.image for x in ok])),
        mask_targets=torch.from_numpy(np.concatenate(masks)) if masks else torch.zeros((0, ms, ms)),
        region_weights=torch.from_numpy(np.stack([r[0] for r in regions])) if regions else None,
        region_boxes=torch.from_numpy(np.stack([r[1] for r in regions])) if regions else None,
        det=torch.tensor([x.det for x in ok]),
        cls=torch.tensor([x.cls for x in ok]),
        query=torch.tensor([x.query for x in ok]),
        marks=torch.from_numpy(np.stack([x.marks for x in ok])),
        seg_regions=torch.from_numpy(np.concatenate([x.seg_regions for x in ok])),
        **_parse_batch(ok),
        tasks=[x.task for x in ok],
        ids=[x.id for x in ok],
        **fam.batch_pixels([x.pixels for x in ok]),
    )
    return batch


def _parse_batch(ok: list[Example]) -> dict:
    """The face-parsing targets of a batch: region ids, their rows and masks (absent when no row has any)."""
    has = [b for b, x in enumerate(ok) if len(x.region_ids)]
    if not has:
        return {}
    return dict(
        parse_ids=torch.from_numpy(np.concatenate([ok[b].region_ids for b in has])),
        parse_rows=torch.tensor([b for b in has for _ in ok[b].region_ids]),
        parse_targets=torch.from_numpy(np.concatenate([ok[b].region_maps for b in has])),
    )


class Collator:
    def __init__(self, fam: Family, pad_id: int):
        self.fam, self.pad_id = fam, pad_id

    def __call__(self, items):
        return collate(items, self.fam, self.pad_id)
