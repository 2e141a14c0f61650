"""Content-addressed response cache on disk: sha256(request) -> response JSON.

The key is computed from the normalised endpoint URL and the request body (model, messages
including the image bytes, response format, sampling parameters): two servers serving a model
under the same name never share answers. Never from the API key, nor from credentials written
into the URL. Entries are written atomically (temp file + rename), so a killed process
leaves either a whole entry or none. Only validated responses are stored, so a rerun, or
a second run over the same data, makes no new calls for rows that succeeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from fifa.core.atomic import write_json_atomic

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    env = os.environ.get("FIFA_CACHE_DIR")
    if env:
        return Path(env) / "llm"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fifa-toolkit" / "llm"


DEFAULT_ENDPOINT = "https://api.openai.com/v1"


def normalize_endpoint(base_url: str | None) -> str:
    """The endpoint as a cache-key part: scheme and host lower-cased, default port, credentials
    and trailing slashes dropped (``None`` is OpenAI's own endpoint)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit((base_url or DEFAULT_ENDPOINT).strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))


def request_key(request: dict[str, Any], endpoint: str | None = None) -> str:
    """Stable hash of an endpoint (see :func:`normalize_endpoint`) and a request body (canonical JSON)."""
    blob = json.dumps(
        {"endpoint": normalize_endpoint(endpoint), "request": request},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class ResponseCache:
    def __init__(self, root: str | os.PathLike[str] | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0
        self.write_errors = 0

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        p = self._path(key)
        try:
            data: dict[str, Any] = json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, value: dict[str, Any]) -> bool:
        """Store an answer; a failed write (full disk, read-only folder) is logged, never raised: the
        answer is already paid and its row must still be written. Returns whether it was stored."""
        if self.root is None:
            return False
        try:
            self._write(self._path(key), value)
            return True
        except OSError as e:
            self.write_errors += 1
            if self.write_errors == 1:
                log.warning(
                    "cannot write the LLM response cache in %s (%s): answers are kept in the rows, "
                    "but a rerun would ask again",
                    self.root,
                    e.strerror or e,
                )
            return False

    @staticmethod
    def _write(p: Path, value: dict[str, Any]) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        # a cache: no fsync (a lost entry costs one question asked again)
        write_json_atomic(value, p, durable=False, indent=None, default=None, ensure_ascii=False)
