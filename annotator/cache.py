"""Content-addressed response cache on disk: sha256(request) -> response JSON.

The key is computed from the request body only (model, messages including the image
bytes, response format, sampling parameters): never from the API key or the endpoint's
credentials. Entries are written atomically (temp file + rename), so a killed process
leaves either a whole entry or none. Only validated responses are stored, so a rerun, or
a second run over the same data, makes no new calls for rows that succeeded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    env = os.environ.get("FIFA_CACHE_DIR")
    if env:
        return Path(env) / "llm"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fifa-toolkit" / "llm"


def request_key(request: dict[str, Any]) -> str:
    """Stable hash of a request body (canonical JSON)."""
    blob = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class ResponseCache:
    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if self.root is None:
            return None
        p = self._path(key)
        try:
            data = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, value: dict) -> None:
        if self.root is None:
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=p.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False)
            os.replace(tmp, p)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
