"""``fifa-data export --build BUILD --format F --out DIR``: the instruction data in other projects' formats.

Every format reads ``BUILD/instruct/{train,validation}.parquet`` and writes ``DIR/<format>/``;
images are written once, content-addressed, under ``DIR/images/`` (hard links when the file
system allows, copies otherwise) and shared by every export into the same ``DIR``; each format's
files point at them with paths relative to ``DIR``. What a format cannot carry is left out and
counted (see docs/export.md).
"""

from __future__ import annotations

from . import formats  # noqa: F401 - registers every format
from .common import ExportError, ExportSummary, export  # noqa: F401
from .registry import EXPORTERS

FORMATS = tuple(EXPORTERS)
