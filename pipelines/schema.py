"""The split names of a build (DESIGN.md "Files and columns").

The Arrow schemas of the files `fifa-data` writes live in :mod:`fifa.core.schemas` (one definition each,
shared by the annotator, the builder, the exporters, the release writer, the viewer, the scorer and the
trainer).
"""

from __future__ import annotations

SPLITS = ("train", "validation", "test")
