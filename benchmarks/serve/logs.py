"""Structured logs of the evaluation server: one JSON object per line on stderr.

``log_event(logger, "submission.queued", id=..., team=...)`` writes
``{"ts": ..., "level": "info", "logger": ..., "event": "submission.queued", "pid": ..., "id": ..., "team": ...}``.
Tokens, uploaded files, reference answers and masks are never logged: events carry ids, team names,
sizes, durations and statuses only.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for this process (the server's own loggers and uvicorn's)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the app logs each request itself (http.request)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, exc_info=None, **fields) -> None:
    logger.log(level, event, extra={"fields": fields}, exc_info=exc_info)
