"""Helpers of the build tests (importable thanks to tests/dataset_build/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
SEED = 3
RATIOS = (0.6, 0.2, 0.2)


def build_config(**kw):
    from fifa.pipelines.build import BuildConfig
    from fifa.pipelines.splits import SplitRatios

    kw.setdefault("seed", SEED)
    kw.setdefault("ratios", SplitRatios(*RATIOS))
    kw.setdefault("bench_per_class", None)
    return BuildConfig(**kw)


def run_data(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([str(BIN / "fifa-data"), *args], capture_output=True, text=True, env=env, timeout=timeout)


def fake_llm_server_class():
    """The project's scripted OpenAI-compatible server (tests/testkit on main, the annotator before)."""
    try:
        from testkit.fake_llm_server import FakeLLMServer  # type: ignore[import-not-found]
    except ImportError:
        from fifa.annotator.fake_llm_server import FakeLLMServer
    return FakeLLMServer


def conversation_server(script: list[str] | None = None, latency: float = 0.0):
    """The fake server, answering ``fc_conversation`` requests with a conversation built from the facts.

    ``script``: actions for the first requests, in arrival order (``500``, ``429``, ``malformed``,
    ``marks``, ``length``), then ``ok``.
    """
    import json
    import time

    base = fake_llm_server_class()

    class ConversationServer(base):
        def __init__(self):
            super().__init__(latency=latency, retry_after=0.01)
            self.script = list(script or [])
            self.fc_requests = 0

        def _handle(self, h, req):
            name = ((req.get("response_format") or {}).get("json_schema") or {}).get("name")
            if name != "fc_conversation":
                return super()._handle(h, req)
            with self.lock:
                self.fc_requests += 1
                action = self.script.pop(0) if self.script else "ok"
                self.actions.append(("fc", action))
            if self.latency:
                time.sleep(self.latency)
            if action == "500":
                return h._send(500, {"error": {"message": "internal error"}})
            if action == "429":
                return h._send(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0.01"})
            # the facts are the first user message: a corrective retry appends the bad answer and a correction after it
            facts = next(m["content"] for m in req["messages"] if m["role"] == "user")
            verdict = "manipulated" if "Verdict: manipulated" in facts else "authentic"
            turns = [
                {"user": "Is this face real?", "assistant": f"The face looks {verdict} to me."},
                {"user": "Why?", "assistant": "Because of what the measurements show."},
            ]
            content, finish = json.dumps({"turns": turns}), "stop"
            if action == "malformed":
                content = '{"turns": [{"user": '
            elif action == "marks":
                content = json.dumps({"turns": [{"user": "Where?", "assistant": "In [the eye](left_eye)."}] * 2})
            elif action == "length":
                finish = "length"
            h._send(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": req.get("model"),
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
                    ],
                    "usage": {"prompt_tokens": 300, "completion_tokens": 100, "total_tokens": 400},
                },
            )

    return ConversationServer()
