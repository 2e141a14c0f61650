"""Every export format, imported once so that each registers itself (registry.py)."""

from __future__ import annotations

from . import glamm, llamafactory, llava, swift  # noqa: F401 - the order formats are listed in
