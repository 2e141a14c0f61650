"""The exporters, by format name: one registry (LLaMA-Factory's ``data/`` converters are the model).

A format module registers its writer with :func:`exporter`; ``fifa-data export`` and :data:`FORMATS` read
the registry, so a new format is one module with one decorated ``write(build, out, store, summary)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

Writer = Callable[[Path, Path, Any, Any], None]  # (build folder, export folder, ImageStore, ExportSummary)

#: format name -> writer, in registration order (the order ``fifa-data export --help`` lists them in)
EXPORTERS: dict[str, Writer] = {}


def exporter(name: str) -> Callable[[Writer], Writer]:
    """Register the decorated writer as format ``name`` (a name registered twice is a programming error)."""

    def register(write: Writer) -> Writer:
        if name in EXPORTERS:
            raise ValueError(f"export format {name!r} registered twice")
        EXPORTERS[name] = write
        return write

    return register
