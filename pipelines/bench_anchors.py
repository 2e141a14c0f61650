"""``anchor_masks`` of the bench's ``age`` questions: the 19 FICT anchors found in each image.

DESIGN.md ("Bench"): ``age`` rows carry ``anchor_masks`` (``list<struct<node_id, mask>>``), the masks
of the anchors found in the image, for the scorer's ``consistency`` metric (does a model's mask lie
where its own text says?). They are made here, once per distinct image, by the FICT segmentation
(:class:`fifa.concept_tree.segmentation.segment.Segmenter`, the annotator's default backend) of the bench image
itself: what a model sees. An image without a detected face gets the anchors the segmentation still
finds (none, for the MediaPipe backend), and an unreadable image none; both are counted.
Other tasks get an empty list. Where the segmenter cannot start at all, ``age`` rows get null (the
scorer then reports ``consistency`` as not computed instead of 0 for every answer).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fifa.core.records import AnchorMask, BenchQuestion, replace

log = logging.getLogger(__name__)


def image_anchor_masks(rgb, segmenter) -> list[AnchorMask]:
    """[{node_id, mask}] of the anchors found in ``rgb`` (anchor order of the tree), RLE strings."""
    from fifa.concept_tree.tree import ANCHORS

    regions = segmenter.segment(rgb)
    if not regions.ok:
        return []
    rles = regions.rles(include_parents=True)
    return [{"node_id": a, "mask": rles[a]} for a in ANCHORS if a in rles]


def _load(image, root: Path):
    from fifa.concept_tree.imageio import load_rgb

    if not image:
        raise ValueError("no image")
    if image.get("bytes"):
        return load_rgb(image["bytes"])
    if image.get("path"):
        return load_rgb(root / image["path"])
    raise ValueError("image has neither bytes nor path")


def with_anchor_masks(
    questions: list[BenchQuestion], image_root: str | Path, segmenter=None
) -> tuple[list[BenchQuestion], dict]:
    """``questions`` with the ``anchor_masks`` of their ``age`` rows filled (other rows keep their empty list),
    and counts for build.json."""
    root = Path(image_root)
    todo = [i for i, q in enumerate(questions) if q.task == "age"]
    counts: dict = {"age_images": 0, "no_face": 0, "unreadable": 0}
    cache: dict[tuple, list[AnchorMask]] = {}
    out = list(questions)
    seg = segmenter
    if todo and segmenter is None:
        from fifa.concept_tree.segmentation.segment import Segmenter

        try:
            seg = Segmenter()
        except Exception as e:  # noqa: BLE001 - no segmentation here: age rows get null, the scorer says so
            log.warning(
                "anchor masks of the age bench not made: the segmenter cannot start (%s); "
                "fifa-bench score will not compute consistency",
                e,
            )
            counts["error"] = str(e)
            ages = set(todo)
            return [replace(q, anchor_masks=None) if i in ages else q for i, q in enumerate(out)], counts
    try:
        for i in todo:
            img = out[i].image
            key = (img.get("path"), hash(img.get("bytes")) if img.get("bytes") else None)
            if key not in cache:
                counts["age_images"] += 1
                try:
                    cache[key] = image_anchor_masks(_load(img, root), seg)
                    counts["no_face"] += not cache[key]
                except Exception as e:  # noqa: BLE001 - one bad image must not stop a build
                    log.warning("anchor masks: cannot read %s: %s", img.get("path"), e)
                    counts["unreadable"] += 1
                    cache[key] = []
            out[i] = replace(out[i], anchor_masks=cache[key])
    finally:
        if segmenter is None and seg is not None:
            seg.close()
    _warn_missing(counts)
    return out, counts


def _warn_missing(counts: dict) -> None:
    if counts["no_face"] or counts["unreadable"]:
        log.warning(
            "anchor masks of the age bench: %d of %d image(s) without a face found, %d unreadable "
            "(their answers score consistency 0)",
            counts["no_face"],
            counts["age_images"],
            counts["unreadable"],
        )


__all__ = ["image_anchor_masks", "with_anchor_masks"]
