"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted faults (tests and benchmarks).

It implements ``POST /v1/chat/completions`` well enough for the official ``openai`` client:
a valid structured answer naming the regions allowed by the request's JSON schema, after an
optional latency. Faults are scripted per image: the server decodes the first image of the
request and reads the colour of its top-left corner (a marker patch the test paints on the
fake), looks the colour up in ``markers`` and plays the fault script of that marker, one step
per request about the same image (the corrective retry included):

``ok``, ``429`` (with ``Retry-After``), ``500``, ``400``, ``stall`` (sleep past the client's
timeout), ``malformed`` (not JSON), ``schema`` (JSON that breaks the schema), ``length``
(``finish_reason=length``), ``hallucinate`` (a region id that was not chosen), ``inject_marks``
(valid ids, but the summary and an explanation smuggle ``[phrase](id)`` marks of other regions),
``source_in_visible`` (the visible description compares with the source image).

``answered`` lists the image keys of every request answered with 200, in order (what was paid).

Run standalone: ``python tests/testkit/fake_llm_server.py --latency 0.2`` prints its URL.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Marker colours (RGB) a test paints in the fake's top-left corner.
MARKER_COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "magenta": (255, 0, 255),
    "cyan": (0, 255, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "orange": (255, 128, 0),
    "purple": (128, 0, 255),
}


class FakeLLMServer:
    def __init__(
        self,
        latency: float = 0.0,
        markers: dict[str, list[str]] | None = None,
        stall_seconds: float = 5.0,
        retry_after: float = 1.0,
        marker_patch: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.latency = latency
        self.markers = markers or {}
        self.stall_seconds = stall_seconds
        self.retry_after = retry_after
        self.marker_patch = marker_patch
        self.lock = threading.Lock()
        self.requests = 0
        self.by_image: Counter[str] = Counter()
        self.actions: list[tuple[str, str]] = []  # (marker, action)
        self.auth_headers: set[str] = set()
        self.times: list[float] = []
        self.per_marker: dict[str, list[str]] = defaultdict(list)
        self.events: list[tuple[str, str, float]] = []  # (marker, action, arrival time)
        self.answered: list[str] = []  # image keys of the requests answered with 200
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                try:
                    req = json.loads(body)
                except ValueError:
                    return self._send(400, {"error": {"message": "bad json"}})
                srv._handle(self, req)

            def _send(self, code: int, obj, headers: dict | None = None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(obj).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 256
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        h, p = self.httpd.server_address[:2]
        return f"http://{h}:{p}/v1"

    def start(self) -> FakeLLMServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ----------------------------------------------------------------------
    def _images(self, req: dict) -> list[str]:
        urls = []
        for m in req.get("messages", []):
            c = m.get("content")
            if isinstance(c, list):
                for part in c:
                    if part.get("type") == "image_url":
                        urls.append(part["image_url"]["url"])
        return urls

    def _marker(self, url: str) -> str | None:
        if not self.markers:
            return None
        from PIL import Image

        b64 = url.split(",", 1)[1]
        im = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
        k = max(1, min(self.marker_patch, im.width, im.height) // 2)
        px = [im.getpixel((x, y)) for x in range(1, k) for y in range(1, k)] or [im.getpixel((0, 0))]
        r = sum(p[0] for p in px) / len(px)
        g = sum(p[1] for p in px) / len(px)
        b = sum(p[2] for p in px) / len(px)
        best, dist = None, 1e9
        for name, (cr, cg, cb) in MARKER_COLOURS.items():
            d = (r - cr) ** 2 + (g - cg) ** 2 + (b - cb) ** 2
            if d < dist:
                best, dist = name, d
        return best if dist < 60**2 and best in self.markers else None

    def _handle(self, h, req: dict) -> None:
        t0 = time.time()
        with self.lock:
            self.requests += 1
            self.auth_headers.add(h.headers.get("Authorization", ""))
        imgs = self._images(req)
        key = hashlib.sha256(imgs[0].encode()).hexdigest() if imgs else "noimage"
        marker = self._marker(imgs[0]) if imgs else None
        with self.lock:
            step = self.by_image[key]
            self.by_image[key] += 1
        action = "ok"
        if marker is not None:
            script = self.markers[marker]
            action = script[min(step, len(script) - 1)] if script else "ok"
        with self.lock:
            self.actions.append((marker or "", action))
            self.events.append((marker or "", action, t0))
            self.per_marker[marker or ""].append(action)
        if self.latency:
            time.sleep(self.latency)
        allowed = _allowed_ids(req)
        usage = {"prompt_tokens": 400 + 85 * len(imgs), "completion_tokens": 120, "total_tokens": 520 + 85 * len(imgs)}
        if action == "429":
            return h._send(
                429,
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                headers={"Retry-After": f"{self.retry_after:g}"},
            )
        if action == "500":
            return h._send(500, {"error": {"message": "internal error"}})
        if action == "400":
            return h._send(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
        if action == "stall":
            time.sleep(self.stall_seconds)
            return h._send(504, {"error": {"message": "stalled"}})
        finish = "stop"
        if action == "malformed":
            content = '{"summary": "The left eye is wrong", "regions": [{"id": '
        elif action == "schema":
            content = json.dumps({"summary": 3, "regions": "left_eye"})
        elif action == "length":
            content = '{"summary": "The manipulation affects'
            finish = "length"
        elif action == "inject_marks":
            regs = [_region_answer(a) for a in allowed[:2]]
            if regs:  # a mark split across the summary and the first explanation, and a whole one
                regs[0]["explanation"] = "](nose) and [the forehead](forehead) " + regs[0]["explanation"]
            content = json.dumps(
                {
                    "summary": "See [the chin](chin) and [the left ear",
                    "visible_summary": "See [the nose](nose) too.",
                    "regions": regs,
                }
            )
        elif action == "hallucinate":
            content = json.dumps(
                {
                    "summary": "Several regions look edited.",
                    "visible_summary": "Several regions look edited.",
                    "regions": [
                        {
                            "id": "left_ear_lobe_xyz",
                            "phrase": "the left earlobe",
                            "explanation": "The left earlobe is smeared.",
                            "visible": "The left earlobe is smeared.",
                        }
                    ]
                    + [_region_answer(a) for a in allowed[:1]],
                }
            )
        elif action == "source_in_visible":  # the visible description compares with the source
            content = json.dumps(
                {
                    "summary": "The image shows localized manipulation traces.",
                    "visible_summary": "Compared with the source, the face was edited.",
                    "regions": [_region_answer(a) for a in allowed[:4]],
                }
            )
        else:
            content = json.dumps(
                {
                    "summary": "The image shows localized manipulation traces."
                    if allowed
                    else "No clear artifact is visible.",
                    "visible_summary": "The face shows localized editing traces."
                    if allowed
                    else "No artifact is visible.",
                    "regions": [_region_answer(a) for a in allowed[:4]],
                }
            )
        self.times.append(time.time() - t0)
        with self.lock:
            self.answered.append(key)
        h._send(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.get("model", "test-model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
                ],
                "usage": usage,
            },
        )


def _allowed_ids(req: dict) -> list[str]:
    try:
        schema = req["response_format"]["json_schema"]["schema"]
        return list(schema["properties"]["regions"]["items"]["properties"]["id"].get("enum", []))
    except (KeyError, TypeError):
        return []


def _region_answer(node_id: str) -> dict:
    words = node_id.replace("_", " ")
    return {
        "id": node_id,
        "phrase": f"the {words}",
        "explanation": f"The {words} shows a colour and texture change compared with the source.",
        "visible": f"The {words} looks smoothed, with an unnatural tint.",
    }


def main() -> None:  # pragma: no cover - used by the benchmark
    import argparse
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = FakeLLMServer(latency=a.latency, port=a.port)
    print(srv.url, flush=True)
    sys.stdout.flush()
    srv.httpd.serve_forever(poll_interval=0.05)


if __name__ == "__main__":  # pragma: no cover
    main()
