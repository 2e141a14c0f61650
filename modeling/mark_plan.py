"""Marks named from the artifact mask (``predict.mark_source: mask``).

The annotator grounds a reference explanation by mapping the artifact mask onto the FICT segmentation
(:func:`fifa.annotator.regions.select_regions`: covered leaves, rolled up to their parents, strongest share
first) and marking the first five regions. The baseline does the same with its own artifact mask: the union of
the masks of a first answer's ``[SEG]`` queries (every mark learns the whole artifact, ``heads.mark_masks:
artifact``) mapped onto the segmentation of the image, so the regions an answer marks, and how many, follow
where the model finds the traces rather than a region head's guess. The answer is then generated again with
those marks (:class:`fifa.modeling.guide.HeadGuide`'s plans); each mark's mask is its ``[SEG]`` mask inside the
region it names.

Shapes: ``artifact`` is an (h, w) bool mask of the image; ``found`` the image's ``FaceRegions`` at that size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from fifa.annotator.explain import RegionInfo
from fifa.annotator.regions import select_regions

from .guide import PlannedMark

if TYPE_CHECKING:
    from fifa.concept_tree.segmentation.regions import FaceRegions

#: the annotator's explanations mark at most this many regions (its ``OfflineExplainer(max_regions=5)``)
MAX_MARKS = 5


def region_phrase(node: str, name: str) -> str:
    """The words a mark names a tree node by, as the annotator writes them ("the left eyebrow")."""
    return RegionInfo(id=node, name=name).phrase()


def artifact_of(masks: Sequence[NDArray[np.bool_]]) -> NDArray[np.bool_] | None:
    """The union of an answer's ``[SEG]`` masks; None when it has none or they are all empty."""
    if not masks:
        return None
    union = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
    return union if union.any() else None


def plan_from_mask(
    found: FaceRegions,
    artifact: NDArray[np.bool_],
    phrase_ids: Callable[[str], tuple[int, ...]],
    vocabulary: Mapping[str, int],
    max_marks: int = MAX_MARKS,
) -> list[PlannedMark]:
    """The marks of an answer whose artifact mask is ``artifact``: the regions the annotator would choose on
    ``found`` (strongest share first, at most ``max_marks``), each with its phrase tokens and its index in the
    mark head's vocabulary (-1 outside it)."""
    if artifact.shape != tuple(found.image_size):
        return []
    chosen = select_regions(found, artifact).chosen[:max_marks]
    return [PlannedMark(node, phrase_ids(node), vocabulary.get(node, -1)) for node in chosen]


__all__ = ["MAX_MARKS", "artifact_of", "plan_from_mask", "region_phrase"]
