"""The web app of ``fifa-bench serve`` (Starlette, served by uvicorn).

Routes (DESIGN.md "Evaluation server")::

    POST /api/submissions        Bearer token, multipart field ``file`` -> 202 {"id", "status": "queued", "sha256"}
                                 401 bad/missing token, 413 too large, 429 over the team's daily limit
    GET  /api/submissions/{id}   its team only (404 for anyone else) -> {"id", "status", "metrics", "error", ...}
    GET  /api/leaderboard        each team's best done submission per headline metric (public)
    GET  /                       the same as an HTML page, sortable by links (no JavaScript)
    GET  /healthz                {"status": "ok", "queue": {status: count}}

The web process never holds a reference answer: it loads the bench only to check it, stores uploads,
and reads results the workers wrote (metrics and validator messages).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import PurePath

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fifa.core.errors import FifaError

from .config import ServeConfig
from .db import make_engine, team_for_token
from .logs import log_event
from .page import render_page
from .queue import (
    get_submission,
    give_back_quota,
    leaderboard_rows,
    queue_counts,
    sort_rows,
    store_submission,
    take_quota,
)

log = logging.getLogger("fifa.serve.http")
MULTIPART_SLACK = 64 << 10  # multipart framing around the file, allowed on top of the file limit
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'"


class BodyTooLarge(FifaError):
    """The request body passed the upload limit while it was read."""


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={**SECURITY_HEADERS, **headers})


class UploadGuard:
    """ASGI middleware around the app: 413 for an upload whose body is larger than allowed, decided from
    Content-Length before anything is read, else while the body streams in; every request is logged."""

    def __init__(self, app, max_body: int, drain_cap: int = 256 << 20):
        self.app, self.max_body, self.drain_cap = app, max_body, drain_cap

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 0}

        async def send_logged(msg):
            if msg["type"] == "http.response.start":
                status["code"] = msg["status"]
            await send(msg)

        is_upload = scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/api/submissions")
        try:
            if is_upload:
                await self._upload(scope, receive, send_logged)
            else:
                await self.app(scope, receive, send_logged)
        finally:
            log_event(
                log,
                "http.request",
                method=scope["method"],
                path=scope["path"],
                status=status["code"],
                ms=round(1000 * (time.perf_counter() - t0), 2),
                client=(scope.get("client") or ("?",))[0],
            )

    async def _upload(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        if declared > self.max_body:
            await self._drain(receive, declared)
            return await _error(413, self._too_large())(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge()
            return msg

        started = False

        async def send_started(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, send_started)
        except BodyTooLarge:
            if started:
                raise
            await self._drain(receive, self.drain_cap)
            await _error(413, self._too_large())(scope, receive, send)

    def _too_large(self) -> str:
        return f"upload too large: the file limit is {self.max_body - MULTIPART_SLACK} bytes"

    async def _drain(self, receive, expected: int) -> None:
        """Read (and drop) the rest of the body, up to a cap, so the client sees the answer, not a reset."""
        got = 0
        while got <= min(expected, self.drain_cap):
            msg = await receive()
            if msg["type"] != "http.request":
                return
            got += len(msg.get("body", b""))
            if not msg.get("more_body"):
                return


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _seconds_to_utc_midnight() -> int:
    return int(86400 - time.time() % 86400) + 1


def _clean_filename(name: str | None) -> str:
    base = PurePath((name or "").replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]", "_", base)[:120].strip()
    return base or "submission"


def _fmt(filename: str, data: bytes) -> str:
    return "parquet" if data[:4] == b"PAR1" or filename.lower().endswith((".parquet", ".pq")) else "jsonl"


UNAUTHORIZED = {"www-authenticate": 'Bearer realm="fifa-bench"'}
NO_TOKEN = "missing or invalid API token (header 'Authorization: Bearer TOKEN')"


class _Handlers:
    """The route handlers of one app: its config and its database engine."""

    def __init__(self, cfg: ServeConfig, engine) -> None:
        self.cfg = cfg
        self.engine = engine

    async def post_submission(self, request: Request) -> Response:
        engine, cfg = self.engine, self.cfg
        team = await run_in_threadpool(team_for_token, engine, _bearer(request))
        if team is None:
            log_event(log, "auth.refused", path=request.url.path)
            return _error(401, NO_TOKEN, **UNAUTHORIZED)
        limit = team.daily_limit if team.daily_limit is not None else cfg.daily_limit
        if not await run_in_threadpool(take_quota, engine, team.id, limit):
            log_event(log, "submission.over_limit", team=team.name, limit=limit)
            return _error(
                429,
                f"daily limit reached: {limit} submission(s) per UTC day for this team",
                **{"retry-after": str(_seconds_to_utc_midnight())},
            )
        try:
            data, filename = await _read_upload(request, cfg.max_upload_bytes)
        except BodyTooLarge:
            await run_in_threadpool(give_back_quota, engine, team.id)
            raise
        except ValueError as e:
            await run_in_threadpool(give_back_quota, engine, team.id)
            return _error(400 if "too large" not in str(e) else 413, str(e))
        sha = hashlib.sha256(data).hexdigest()
        sid = await run_in_threadpool(store_submission, engine, team.id, data, filename, _fmt(filename, data), sha)
        log_event(log, "submission.queued", id=sid, team=team.name, bytes=len(data), sha256=sha)
        return JSONResponse({"id": sid, "status": "queued", "sha256": sha}, status_code=202, headers=SECURITY_HEADERS)

    async def get_one(self, request: Request) -> Response:
        team = await run_in_threadpool(team_for_token, self.engine, _bearer(request))
        if team is None:
            return _error(401, NO_TOKEN, **UNAUTHORIZED)
        sub = await run_in_threadpool(get_submission, self.engine, request.path_params["sid"], team.id)
        if sub is None:  # another team's submission is as unknown as a made-up id
            return _error(404, "no such submission for this team")
        return JSONResponse(sub, headers=SECURITY_HEADERS)

    def _board(self, request: Request) -> dict:
        cols, rows = leaderboard_rows(self.engine)
        sort = request.query_params.get("sort") or (cols[0] if cols else None)
        if sort not in cols and sort not in ("team", "submissions"):
            sort = cols[0] if cols else None
        desc = request.query_params.get("order", "desc") != "asc"
        return {
            "bench": self.cfg.display_name,
            "columns": cols,
            "sort": sort,
            "order": "desc" if desc else "asc",
            "rows": sort_rows(rows, sort, desc),
        }

    async def leaderboard(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self._board, request), headers=SECURITY_HEADERS)

    async def page(self, request: Request) -> Response:
        board = await run_in_threadpool(self._board, request)
        return HTMLResponse(render_page(board), headers={**SECURITY_HEADERS, "content-security-policy": PAGE_CSP})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "queue": await run_in_threadpool(queue_counts, self.engine)})


def create_app(cfg: ServeConfig) -> Starlette:
    """The Starlette app for ``cfg`` (opens the database, creating its tables; checks the bench loads)."""
    from ..bench import load_bench

    load_bench(cfg.bench)  # a broken bench is refused at start, not job after job
    engine = make_engine(cfg.db)
    h = _Handlers(cfg, engine)
    routes = [
        Route("/api/submissions", h.post_submission, methods=["POST"]),
        Route("/api/submissions/{sid}", h.get_one, methods=["GET"]),
        Route("/api/leaderboard", h.leaderboard, methods=["GET"]),
        Route("/healthz", h.health, methods=["GET"]),
        Route("/", h.page, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(UploadGuard, max_body=cfg.max_upload_bytes + MULTIPART_SLACK)]
    )
    app.state.engine = engine
    return app


async def _read_upload(request: Request, max_file: int) -> tuple[bytes, str]:
    """The multipart field ``file``: (bytes, cleaned file name); ValueError for a malformed upload."""
    try:
        form = await request.form(max_files=1, max_fields=8)
    except MultiPartException as e:
        raise ValueError(f"malformed upload: {e.message}") from None
    try:
        f = form.get("file")
        if not isinstance(f, UploadFile):
            raise ValueError("the upload needs a multipart file field named 'file' (.parquet or .jsonl)")
        data = await f.read()
        if len(data) > max_file:
            raise ValueError(f"upload too large: the file limit is {max_file} bytes")
        return data, _clean_filename(f.filename)
    finally:
        await form.close()
