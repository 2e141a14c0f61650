"""fifa.concept_tree.segmentation: face images -> masks of the concept tree's regions.

The landmark backends and their one registry (:mod:`.backends`), the landmark -> label-map geometry
(:mod:`.labelmap`, :mod:`.atlas`, :mod:`.mesh_regions`, :mod:`.mesh_topology`), the off-face evidence
(:mod:`.offface`, :mod:`.colour`, :mod:`.gridmasks`), the 68-point path (:mod:`.ibug68`), the
:class:`~.segment.Segmenter`, and the batch output (RLE masks in Parquet, :mod:`.batch`) behind
``fifa-tree segment``. The tree itself (data + API) is :mod:`fifa.concept_tree.tree`.
"""
