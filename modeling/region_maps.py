"""Where each region of the mark vocabulary lies in each training image: the auxiliary face-parsing task of
the mask head's region queries (``heads.region_gate`` + ``heads.region_seg_weight``).

A mark's mask is the AND of its [SEG] query's mask (the traces) and its region's own query mask
(:class:`fifa.modeling.heads.MaskHead`). The answers' masks alone teach the region queries little: a small
region (an eyeball, the lashes) covers a few dozen pixels of a few marks. The FICT segmentation of every
training image (the annotator's segmenter) is dense supervision for every region in every image, real ones
included, so the region queries learn to parse the face as the tree does.

Shapes: ``RegionMaps`` is ``{image key: {node id: COCO RLE (counts as str)}}``, the vocabulary's regions
found in the image; an image the segmenter finds no face in maps to ``{}`` (every region absent), an
image it cannot read is left out (no targets). Made once per distinct image, before training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from fifa.core.rle import RLE, decode

from .imaging import Letterbox

log = logging.getLogger(__name__)

RegionMaps = dict[str, dict[str, RLE]]
Image = Mapping[str, Any]  # a row's image: {"path": ..., "bytes": ...}


class FaceSegmenter(Protocol):
    """What is used of :class:`fifa.concept_tree.segmentation.segment.Segmenter`."""

    def segment(self, image: NDArray[np.uint8]) -> Any: ...

    def close(self) -> None: ...


def image_key(image: Image | None) -> str | None:
    """A training row's image, as one key per distinct image (its path, else a digest of its bytes)."""
    if not image:
        return None
    if image.get("path"):
        return str(image["path"])
    if image.get("bytes"):
        import hashlib

        return "sha1:" + hashlib.sha1(image["bytes"]).hexdigest()
    return None


def segment_images(
    images: Sequence[Image | None],
    regions: Sequence[str],
    load: Callable[[Image], NDArray[np.uint8]],
    segmenter: FaceSegmenter | None = None,
    progress: bool = False,
) -> RegionMaps:
    """The vocabulary's regions in each distinct image of ``images`` (``load`` reads one to RGB)."""
    from fifa.concept_tree.segmentation.segment import Segmenter

    todo: dict[str, Image] = {}
    for img in images:
        key = image_key(img)
        if img is not None and key is not None and key not in todo:
            todo[key] = img
    wanted, counts = set(regions), {"no_face": 0, "unreadable": 0}
    out: RegionMaps = {}
    seg: FaceSegmenter = segmenter if segmenter is not None else Segmenter()
    try:
        for key, img in _progress(todo.items(), len(todo), progress):
            try:
                found = seg.segment(load(img))
            except Exception as e:  # noqa: BLE001 - one bad image must not stop training: it gets no targets
                log.warning("region maps: cannot segment %s: %s", key, e)
                counts["unreadable"] += 1
                continue
            rles = found.rles(include_parents=True) if found.ok else {}
            counts["no_face"] += not found.ok
            out[key] = {n: r for n, r in rles.items() if n in wanted}
    finally:
        if segmenter is None:
            seg.close()
    log.info(
        "region maps: %d image(s) segmented, %d without a face, %d unreadable",
        len(out),
        counts["no_face"],
        counts["unreadable"],
    )
    return out


def _progress(items: Iterable[Any], total: int, on: bool) -> Iterator[Any]:
    if not on:
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description="segmenting training images")


def pick_regions(found: Mapping[str, RLE], regions: Sequence[str], k: int, rng: np.random.Generator) -> list[int]:
    """``k`` vocabulary indices for one example, at random: regions found in the image, and a quarter absent
    ones (their target is empty: "not in this image"), fewer of either kind where the other runs short."""
    present = [i for i, r in enumerate(regions) if r in found]
    absent = [i for i, r in enumerate(regions) if r not in found]
    n_present = min(len(present), k - min(len(absent), k // 4))
    n_absent = min(len(absent), k - n_present)
    chosen = list(rng.choice(present, n_present, replace=False)) if n_present else []
    chosen += list(rng.choice(absent, n_absent, replace=False)) if n_absent else []
    return [int(i) for i in chosen]


def region_targets(
    found: Mapping[str, RLE], regions: Sequence[str], chosen: Sequence[int], lb: Letterbox, size: int
) -> NDArray[np.float32]:
    """(len(chosen), size, size) float targets of the chosen regions, letterboxed as the image is."""
    out = np.zeros((len(chosen), size, size), np.float32)
    for j, i in enumerate(chosen):
        rle = found.get(regions[i])
        if rle is not None:
            out[j] = lb.mask(decode(rle), size) >= 0.5
    return out


class AnchorMasks:
    """The FICT segmentation of prediction images, once per image: where a named region lies
    (``predict.region_masks: segmenter``). A mark's mask is kept inside the anchor of the region it names, the
    level at which the tree grounds marks (an eyeball's traces inside the eye; the grounding metrics match a
    mark to a reference pair by anchor), or inside the region itself (``level="node"``: marks named from the
    artifact mask, ``predict.mark_source: mask``)."""

    def __init__(self, segmenter: FaceSegmenter | None = None):
        from fifa.concept_tree.tree import load_tree

        self.tree, self._segmenter = load_tree(), segmenter
        self._cache: dict[str, Any] = {}

    def __call__(self, key: str, rgb: NDArray[np.uint8], node: str, level: str = "anchor") -> NDArray[np.bool_] | None:
        """(h, w) bool mask of ``node``'s anchor in ``rgb`` (the node itself above the anchors; ``level="node"``:
        the node itself); None when the segmenter finds no face or not that region."""
        found = self.regions(key, rgb)
        if found is None or node not in self.tree:
            return None
        names = [self.tree.roll_up(node, "anchor"), node] if level == "anchor" else [node]
        for name in names:
            m = found.mask(name)
            if m.any():
                return cast("NDArray[np.bool_]", m)
        return None

    def regions(self, key: str, rgb: NDArray[np.uint8]) -> Any:
        """The image's ``FaceRegions`` (cached per key), None when the segmenter finds no face."""
        if key not in self._cache:
            if len(self._cache) >= 512:  # bench rows come grouped by task: the age questions' images recur
                self._cache.pop(next(iter(self._cache)))
            if self._segmenter is None:
                from fifa.concept_tree.segmentation.segment import Segmenter

                self._segmenter = Segmenter()
            found = self._segmenter.segment(rgb)
            self._cache[key] = found if found.ok else None
        return self._cache[key]

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None


__all__ = ["AnchorMasks", "RegionMaps", "image_key", "pick_regions", "region_targets", "segment_images"]
