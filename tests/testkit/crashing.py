"""A local executor whose worker process dies (``os._exit``) on rows whose sample_id ends with ``__crash``:
a real process crash, to test that the run replaces the worker and fails that row alone."""

from __future__ import annotations

import os

from fifa.annotator.executors import LocalExecutor
from fifa.annotator.worker import process_rows


def process_or_crash(rows: list[dict]):
    if any(r["sample_id"].endswith("__crash") for r in rows):
        os._exit(3)
    return process_rows(rows)


class CrashingExecutor(LocalExecutor):
    def submit(self, rows: list[dict]):
        return self._pool.submit(process_or_crash, rows)
