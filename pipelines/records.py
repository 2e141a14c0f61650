"""The ``annotations`` config of a build and a release: the AGE records, split like the rest.

One row per kept annotation: the annotator's columns without machine paths, timings or costs
(``image_path`` becomes the ``image`` struct with a path relative to the image root), plus
``identities``, ``split`` and the provenance columns (``schema.PROVENANCE_FIELDS``).
"""

from __future__ import annotations

import pyarrow as pa

from fifa.annotator.store import ANNOTATION_SCHEMA

from .schema import IMAGE_TYPE, PROVENANCE_FIELDS

_KEEP = ("artifact_mask", "artifact_regions", "regions", "explanation", "segments", "explainer", "tree_version",
         "grounded", "image_height", "image_width", "mask_area", "mask_fraction")
_PROVENANCE = [(n, t) for n, t in PROVENANCE_FIELDS if n not in _KEEP]

AGE_RECORD_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("image", IMAGE_TYPE),
        ("label", pa.string()),
        ("method", pa.string()),
        ("category", pa.string()),
        ("group", pa.string()),
        ("identities", pa.string()),
        ("split", pa.string()),
        *[ANNOTATION_SCHEMA.field(c) for c in _KEEP],
        *_PROVENANCE,
    ]
)
