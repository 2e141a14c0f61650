"""fifa.core.llm: the shared OpenAI-compatible client against a real HTTP server on 127.0.0.1.

The server (tests/testkit/fake_llm_server.py) plays a script per prompt: one step per request about that
prompt (``429`` with Retry-After, ``500``, ``400``, ``stall``, ``bad`` = an answer the check rejects, ``ok``).
The real ``openai`` client underneath.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from fifa.core.budget import CostBudget
from fifa.core.llm import Answer, InvalidAnswer, OpenAIClient, OpenAIConfig, read_api_key
from fifa.core.llm_cache import request_key
from fifa.core.llm_retry import retry_after_seconds
from testkit.fake_llm_server import FakeLLMServer

SECRET = "sk-core-llm-DO-NOT-LEAK-5d1e"
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}


class ScriptServer(FakeLLMServer):
    def __init__(self, script: dict[str, list[str]] | None = None, retry_after: str = "0.01", **kw):
        super().__init__(stall_seconds=kw.pop("stall_seconds", 2.0), **kw)
        self.script, self.ra = script or {}, retry_after
        self.steps: dict[str, int] = {}
        self.bodies: list[dict] = []

    def _handle(self, h, req):
        prompt = req["messages"][1]["content"]
        with self.lock:
            self.requests += 1
            self.auth_headers.add(h.headers.get("Authorization", ""))
            self.bodies.append(req)
            step = self.steps.get(prompt, 0)
            self.steps[prompt] = step + 1
        acts = self.script.get(prompt, [])
        action = acts[step] if step < len(acts) else "ok"
        if action in ("429", "500", "400"):
            return h._send(int(action), {"error": {"message": action}}, headers={"Retry-After": self.ra})
        if action == "stall":
            time.sleep(self.stall_seconds)
            return h._send(504, {"error": {"message": "stalled"}})
        content = json.dumps({"echo": prompt} if action == "ok" else {"nope": 1})
        h._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": req["model"],
                "usage": USAGE,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
            },
        )


def _request(prompt: str) -> dict:
    return {
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": prompt}],
        "temperature": 0.0,
        "max_tokens": 50,
    }


def check(content, finish_reason) -> str:
    data = json.loads(content or "null")
    if not isinstance(data, dict) or "echo" not in data:
        raise InvalidAnswer("llm_invalid", "'echo' is missing")
    return data["echo"]


def fix(e: InvalidAnswer) -> str:
    return f"Your answer was rejected: {e.message}."


def _client(srv, tmp_path=None, **kw) -> OpenAIClient:
    kw.setdefault("cache_dir", str(tmp_path / "cache") if tmp_path else None)
    cfg = OpenAIConfig(
        model="m",
        base_url=srv.url,
        api_key=SECRET,
        timeout=kw.pop("timeout", 2.0),
        max_retries=kw.pop("max_retries", 3),
        retry_initial_wait=0.001,
        retry_max_wait=2.0,
        **kw,
    )
    return OpenAIClient(cfg)


COST = (1000 * 2.5 + 100 * 10.0) / 1e6  # one answered request at the default prices


def test_429_and_500_are_retried_honouring_retry_after():
    with ScriptServer({"a": ["429", "500", "ok"]}, retry_after="1") as srv, _client(srv) as c:
        t0 = time.perf_counter()
        ans = c.ask(_request("a"), check, fix)
        took = time.perf_counter() - t0
    assert ans.ok and ans.value == "a" and ans.calls == 3 == srv.requests == c.calls
    assert took >= 2.0  # two waits of Retry-After: 1 s (the backoff alone: milliseconds plus a jitter below 1 s)
    assert ans.cost == pytest.approx(COST)  # only the answered request has usage


def test_400_is_not_retried_and_retries_end():
    with ScriptServer({"a": ["400"], "b": ["500"] * 9}) as srv, _client(srv, max_retries=2) as c:
        a, b = c.ask(_request("a"), check, fix), c.ask(_request("b"), check, fix)
    assert (a.error_code, a.calls, a.error) == ("llm_http_error", 1, "HTTP 400 after 1 attempt(s)")
    assert (b.error_code, b.calls) == ("llm_http_error", 3) and srv.requests == 4
    assert a.cost == b.cost == 0.0 and not a.rejected


def test_a_stalled_server_times_out():
    with ScriptServer({"a": ["stall"] * 3}, stall_seconds=1.5) as srv, _client(srv, timeout=0.3, max_retries=1) as c:
        ans = c.ask(_request("a"), check, fix)
    assert (ans.error_code, ans.calls) == ("llm_timeout", 2)


def test_cache_answers_without_a_request_and_only_checked_answers_are_kept(tmp_path):
    with ScriptServer({"bad": ["bad", "bad", "bad", "bad"]}) as srv:
        with _client(srv, tmp_path) as c:
            first = c.ask(_request("a"), check, fix)
            assert first.ok and not first.cached and srv.requests == 1
            rejected = c.ask(_request("bad"), check, fix)
        with _client(srv, tmp_path) as c2:  # a new client (a rerun) over the same cache folder
            again = c2.ask(_request("a"), check, fix)
            assert c2.cached(_request("a"), check).value == "a"
            assert srv.requests == 3  # "a" once, "bad" twice: the cache answered the rerun
            c2.ask(_request("bad"), check, fix)  # a rejected answer was not cached: asked again
            assert srv.requests == 5
    assert again == Answer(value="a", cached=True) and again.calls == 0 and again.cost == 0.0
    assert rejected.rejected and rejected.error_code == "llm_invalid" and rejected.calls == 2
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert [p.stem for p in entries] == [request_key(_request("a"), srv.url)]
    assert json.loads(entries[0].read_text())["attempt"] == 1


def test_a_stale_or_damaged_cache_entry_is_asked_again_and_replaced(tmp_path):
    with ScriptServer() as srv, _client(srv, tmp_path) as c:
        for prompt, entry in (("a", {"content": json.dumps({"nope": 1}), "finish_reason": "stop"}), ("b", {"x": 1})):
            c.cache.put(c.key(_request(prompt)), entry)
            assert c.cached(_request(prompt), check) is None
            ans = c.ask(_request(prompt), check, fix)
            assert ans.ok and not ans.cached and ans.value == prompt
            assert c.cached(_request(prompt), check).value == prompt
    assert srv.requests == 2


def test_cache_off_asks_every_time():
    with ScriptServer() as srv, _client(srv, cache_dir=None) as c:
        c.ask(_request("a"), check, fix)
        c.ask(_request("a"), check, fix)
    assert srv.requests == 2


def test_a_rejected_answer_is_asked_again_once_with_the_problem(tmp_path):
    with ScriptServer({"a": ["bad", "ok"]}) as srv, _client(srv, tmp_path) as c:
        ans = c.ask(_request("a"), check, fix)
    assert ans.ok and ans.value == "a" and ans.calls == 2 and not ans.rejected
    second = srv.bodies[1]["messages"]
    assert second[2] == {"role": "assistant", "content": json.dumps({"nope": 1})}
    assert second[3] == {"role": "user", "content": "Your answer was rejected: 'echo' is missing."}
    # both answers are paid: tokens add up, cost at the configured prices
    assert (ans.prompt_tokens, ans.completion_tokens) == (2000, 200) and ans.cost == pytest.approx(2 * COST)


def test_cost_at_configured_prices_and_the_budget_stops_before_paying():
    budget = CostBudget(max_cost=2.5 * 0.0011)  # room for two estimates of one request
    with ScriptServer() as srv, _client(srv, price_in_per_mtok=1.0, price_out_per_mtok=1.0) as c:
        got = [c.ask(_request(p), check, fix, budget=budget, estimate=0.0011) for p in ("a", "b", "c")]
    assert [a.error_code for a in got] == [None, None, "budget"] and srv.requests == 2
    assert got[0].cost == pytest.approx(1100 / 1e6) and budget.spent == pytest.approx(2 * 1100 / 1e6)
    assert budget.stops == 1 and budget.in_flight == pytest.approx(0.0)


def test_api_key_is_sent_but_never_logged_written_or_shown(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with ScriptServer({"a": ["429", "ok"], "b": ["400"]}) as srv:
        cfg = OpenAIConfig(
            model="m",
            base_url=srv.url,
            api_key=read_api_key(),
            cache_dir=str(tmp_path / "cache"),
            retry_initial_wait=0.001,
        )
        with OpenAIClient(cfg) as c:
            answers = [c.ask(_request(p), check, fix) for p in ("a", "b")]
    assert srv.auth_headers == {f"Bearer {SECRET}"}  # the key did reach the server
    assert "retrying after RateLimitError" in caplog.text  # the DEBUG log ran
    shown = [caplog.text, repr(cfg), str(cfg.to_dict()), *(repr(a) for a in answers)]
    shown += [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    assert all(SECRET not in s for s in shown)
    assert "api_key" not in cfg.to_dict()


def test_read_api_key_file_then_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OTHER_KEY", raising=False)
    assert read_api_key() is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    (tmp_path / "k").write_text("  sk-file\n")
    assert read_api_key(tmp_path / "k") == "sk-file" and read_api_key() == "sk-env"
    monkeypatch.setenv("OTHER_KEY", "sk-other")
    assert read_api_key(None, env=("OTHER_KEY", "OPENAI_API_KEY")) == "sk-other"
    (tmp_path / "empty").write_text("\n")
    assert read_api_key(tmp_path / "empty") is None
    with pytest.raises(OSError):
        read_api_key(tmp_path / "missing")


class _Resp:
    def __init__(self, headers):
        self.headers = headers


class _Exc(Exception):
    def __init__(self, headers):
        self.response = _Resp(headers)


def test_retry_after_header_forms():
    assert retry_after_seconds(_Exc({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds(_Exc({"retry-after": "3"})) == 3.0
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after_seconds(_Exc({"retry-after": later})) <= 30
    assert retry_after_seconds(_Exc({"retry-after": "soon"})) is None
    assert retry_after_seconds(_Exc({})) is None and retry_after_seconds(ValueError()) is None
