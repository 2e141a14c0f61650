"""Row generators of the nine tasks (DESIGN.md "Tasks"), columnar over a chunk of annotations.

Each generator takes the chunk frame (one row per kept annotation, see :mod:`.common`) and a
:class:`~.common.TaskContext`, and returns rows in the intermediate layout of
:data:`.common.ROW_COLUMNS` (conversation turns, masks, query, bench class). ``build`` turns
them into instruction rows (train/validation) or bench questions (test).
"""

from __future__ import annotations

from fifa.core.tasks import REGION_QUERY_TASKS

from .basic import cls_rows, det_rows, toe_rows  # noqa: F401
from .common import ROW_COLUMNS, TaskContext, prepare_chunk  # noqa: F401
from .conversation import fc_rows  # noqa: F401
from .grounded import age_rows, loc_rows  # noqa: F401
from .region import region_rows  # noqa: F401


def generate(chunk, ctx: TaskContext):
    """All rows of the requested tasks for one chunk (a polars DataFrame in ROW_COLUMNS)."""
    import polars as pl

    parts = []
    if "det" in ctx.tasks:
        parts.append(det_rows(chunk, ctx))
    if "cls" in ctx.tasks:
        parts.append(cls_rows(chunk, ctx))
    if "toe" in ctx.tasks:
        parts.append(toe_rows(chunk, ctx))
    if "age" in ctx.tasks:
        parts.append(age_rows(chunk, ctx))
    if "loc" in ctx.tasks:
        parts.append(loc_rows(chunk, ctx))
    if any(t in ctx.tasks for t in REGION_QUERY_TASKS):
        parts.extend(region_rows(chunk, ctx))
    if "fc" in ctx.tasks:
        parts.append(fc_rows(chunk, ctx))
    parts = [p.select(ROW_COLUMNS) for p in parts if p is not None and p.height]
    if not parts:
        return None
    return pl.concat(parts, how="vertical")
