"""A worker process's state: its segmenter and the LRU caches of segmentations and aligned sources.

:data:`STATE` holds what :func:`fifa.annotator.worker.init_worker` set up (``config``) and what the
worker made since (``segmenter``, ``seg_cache``, ``src_cache``, ``offline``). Fakes made from one source
share its aligned image, its regions and its prepared difference inputs (:func:`source_cached`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fifa.concept_tree.imageio import ImageError, load_rgb

from .diffmask import align_pair, prepare_source

if TYPE_CHECKING:
    from .worker import WorkerConfig

STATE: dict = {}


def _default_config() -> WorkerConfig:
    from .worker import WorkerConfig

    return WorkerConfig()


def segmenter():
    seg = STATE.get("segmenter")
    if seg is None:
        from fifa.concept_tree.segmentation.segment import SegmentConfig, Segmenter

        cfg: WorkerConfig = STATE.get("config") or _default_config()
        seg = Segmenter(SegmentConfig(backend=cfg.segmenter))
        STATE["segmenter"] = seg
    return seg


def segment_cached(path: str, image: np.ndarray, key_extra: tuple = ()):
    cfg: WorkerConfig = STATE["config"]
    cache: OrderedDict = STATE.setdefault("seg_cache", OrderedDict())
    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size, image.shape) + key_extra
    except OSError:
        key = None
    if key is not None and key in cache:
        cache.move_to_end(key)
        return cache[key]
    res = segmenter().segment(image)
    if key is not None and cfg.segment_cache > 0:
        cache[key] = res
        while len(cache) > cfg.segment_cache:
            cache.popitem(last=False)
    return res


@dataclass
class Source:
    """A source image aligned to its fakes, its face regions and its prepared difference inputs.

    With ``lazy`` the source is segmented without the off-face concepts (no person model); they
    are added the first time a fake's mask leaves the face (and kept for the source's next fakes)."""

    image: np.ndarray
    regions: object  # FaceRegions
    prepared: dict | None

    def regions_for(self, mask: np.ndarray):
        r = self.regions
        if r.meta.get("outside_face") is not None:
            return r
        if (mask & (r.label_map < 0)).any():
            self.regions = segmenter().add_outside_face(self.image, r)
            return self.regions
        return inside_face_view(r)


def inside_face_view(regions):
    """Face-only regions, completed for the statistics of a mask inside the face: every other pixel
    gets one background label, so (as in a full segmentation) every pixel is labelled and the
    root's area is the image's. The face nodes' areas and hits, hence the row, are unchanged."""
    from dataclasses import replace

    fill = regions.leaf_ids.index("background_above_head")
    return replace(regions, label_map=np.where(regions.label_map < 0, fill, regions.label_map).astype(np.int16))


def source_cached(path: str, fake: np.ndarray, cfg: WorkerConfig) -> Source:
    """The aligned source and its regions: fakes made from one source share both (LRU per worker)."""
    cache: OrderedDict = STATE.setdefault("src_cache", OrderedDict())
    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size, fake.shape[:2])
    except OSError:
        key = None
    if key is not None and key in cache:
        cache.move_to_end(key)
        return cache[key]
    source = align_pair(fake, load_image(path, "source"), cfg.diff)
    regions = segmenter().segment(source, outside_face=not cfg.lazy_outside_face)
    entry = Source(source, regions, prepare_source(source, cfg.diff, regions) if regions.ok else None)
    if key is not None and cfg.segment_cache > 0:
        cache[key] = entry
        while len(cache) > cfg.segment_cache:
            cache.popitem(last=False)
    return entry


def load_image(path: str | None, what: str) -> np.ndarray:
    try:
        return load_rgb(path)
    except ImageError as e:
        if what == "source":
            raise ImageError(e.code, f"source image: {e.message}") from None
        raise
