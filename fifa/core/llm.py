"""One OpenAI-compatible chat-completions client (OpenAI, vLLM, Ollama, LM Studio) for every paid call.

Data shapes:

* a *request* is a chat-completions body (``dict``: model, messages, response_format, sampling); it is sent
  as is and, with the endpoint, it is the cache key (:func:`~fifa.core.llm_cache.request_key`);
* a *check* is ``check(content, finish_reason) -> value`` that raises :class:`InvalidAnswer` (``code``,
  ``message``) when the model's answer is not usable;
* an :class:`Answer` is what :meth:`OpenAIClient.ask` returns: the checked value, or an error code
  (``llm_http_error``, ``llm_timeout``, ``llm_invalid``, ``llm_truncated``, ... or ``budget``), with the HTTP
  calls, tokens and USD it cost and whether the cache answered.

What the client does for every caller (the annotator's explainer, the conversation builder, the judge):

* transport through the real ``openai`` package (its own retries off), with the retry policy of
  :mod:`.llm_retry` (tenacity: 429 / 5xx / timeouts / connection errors, backoff with jitter, ``Retry-After``);
* :meth:`OpenAIClient.ask`: a cached, checked answer is returned without a call (paid work is never paid
  twice); otherwise the request is sent, checked, and an answer the check rejects is asked again once with
  the problem stated; only checked answers are cached; an optional :class:`~fifa.core.budget.CostBudget` is reserved
  before the call and settled after it;
* cost: tokens of the response's ``usage`` times the configured prices (USD per million tokens).

The API key comes from the caller's config (:func:`read_api_key`: a file, else the environment) and is held
by the ``openai`` client only: it is not in the cache key, :meth:`OpenAIConfig.to_dict`, ``repr``, the logs
or any file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .budget import CostBudget
from .errors import FifaError
from .llm_cache import ResponseCache, request_key
from .llm_retry import retrying

log = logging.getLogger(__name__)

Request = dict[str, Any]  # a chat-completions body

__all__ = ["Answer", "InvalidAnswer", "OpenAIClient", "OpenAIConfig", "TransportError", "read_api_key"]

#: Placeholder sent when no key is configured (local servers need none; ``openai`` insists on one).
NO_KEY = "sk-no-key"


@dataclass(frozen=True)
class OpenAIConfig:
    """Endpoint, model, transport and prices of an OpenAI-compatible client."""

    model: str = "gpt-4o"
    base_url: str | None = None  # None: OpenAI's endpoint
    api_key: str | None = field(default=None, repr=False)  # never serialised
    timeout: float = 60.0  # seconds per HTTP request
    max_retries: int = 5  # transport retries per request
    retry_initial_wait: float = 0.5
    retry_max_wait: float = 60.0  # longest wait between retries, Retry-After included
    temperature: float = 0.2
    max_tokens: int = 900
    image_detail: str = "low"  # low | high | auto: the detail a request builder asks for its images
    price_in_per_mtok: float = 2.50  # USD per 1M prompt tokens (gpt-4o list price)
    price_out_per_mtok: float = 10.00  # USD per 1M completion tokens
    cache_dir: str | None = None  # None: no response cache

    def to_dict(self) -> dict[str, Any]:
        """Every field but the API key (for run records)."""
        d = asdict(self)
        d.pop("api_key", None)
        return d

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD of a number of prompt and completion tokens at this config's prices."""
        return (prompt_tokens * self.price_in_per_mtok + completion_tokens * self.price_out_per_mtok) / 1e6


def read_api_key(
    api_key_file: str | os.PathLike[str] | None = None, env: Iterable[str] = ("OPENAI_API_KEY",)
) -> str | None:
    """The key in ``api_key_file`` (stripped) if given, else the first set variable of ``env``; None if none.
    An unreadable file raises ``OSError`` (the CLIs turn it into a user error)."""
    if api_key_file:
        return Path(api_key_file).read_text("utf-8").strip() or None
    return next((os.environ[v] for v in env if os.environ.get(v)), None)


class InvalidAnswer(FifaError, ValueError):
    """A model answer a check rejected (``code``: ``llm_invalid``, ``llm_truncated``, ...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class TransportError(FifaError):
    """No usable HTTP response after the retries (``code``: ``llm_http_error``, ``llm_timeout``,
    ``llm_invalid``); ``calls`` HTTP requests were made."""

    def __init__(self, code: str, message: str, calls: int):
        super().__init__(message)
        self.code = code
        self.message = message
        self.calls = calls


@dataclass
class Answer:
    """Outcome of :meth:`OpenAIClient.ask` (see the module docstring)."""

    value: Any = None  # what the check returned
    error_code: str | None = None
    error: str | None = None
    rejected: bool = False  # failed because the check rejected both answers
    calls: int = 0  # HTTP requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0  # USD
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error_code is None


Check = Callable[[str | None, str | None], Any]


class OpenAIClient:
    """The shared client (see the module docstring). Thread-safe: one instance serves a thread pool."""

    def __init__(self, cfg: OpenAIConfig):
        import httpx
        import openai
        from openai.types.chat import ChatCompletion

        self.cfg = cfg
        self._openai = openai
        self._completion_type = ChatCompletion
        self.client = openai.OpenAI(
            api_key=cfg.api_key or NO_KEY,
            base_url=cfg.base_url,
            timeout=cfg.timeout,
            max_retries=0,  # the retry policy of .llm_retry honours Retry-After and our codes
            http_client=httpx.Client(  # type: ignore[arg-type]  # openai's stubs name its own httpx fork
                timeout=cfg.timeout, limits=httpx.Limits(max_connections=256, max_keepalive_connections=128)
            ),
        )
        self.cache = ResponseCache(cfg.cache_dir)
        self._lock = threading.Lock()
        self.calls = 0  # HTTP requests sent by this client

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.cfg.cost_of(prompt_tokens, completion_tokens)

    def key(self, request: Request) -> str:
        """Cache key of a request at this endpoint ("" when the cache is off)."""
        return request_key(request, self.cfg.base_url) if self.cache.enabled else ""

    # ------------------------------------------------------------------ one request
    def complete(self, request: Request) -> tuple[dict[str, Any], int]:
        """Send a chat-completions body with the retry policy: ({content, finish_reason, prompt_tokens,
        completion_tokens}, HTTP calls); raises :class:`TransportError`. No cache, no check."""
        o, calls = self._openai, 0

        def attempt() -> Any:
            nonlocal calls
            calls += 1
            # The client's generic `post` (documented for undocumented endpoints) sends the body as is:
            # `chat.completions.create` would first walk the whole request (schema, messages, image
            # data) through its type transforms, ~10 ms of CPU per request.
            return self.client.post("/chat/completions", body=request, cast_to=self._completion_type)

        try:
            resp = retrying(self.cfg.max_retries, self.cfg.retry_initial_wait, self.cfg.retry_max_wait)(attempt)
        except o.APITimeoutError as e:
            raise TransportError("llm_timeout", f"request timed out after {calls} attempt(s)", calls) from e
        except o.APIConnectionError as e:
            raise TransportError(
                "llm_http_error", f"connection error after {calls} attempt(s): {type(e).__name__}", calls
            ) from e
        except o.APIStatusError as e:
            raise TransportError("llm_http_error", f"HTTP {e.status_code} after {calls} attempt(s)", calls) from e
        except ValueError as e:  # unparsable body from a broken server
            raise TransportError("llm_invalid", f"unreadable response: {e}", calls) from e
        finally:
            with self._lock:
                self.calls += calls
        choice = resp.choices[0] if resp.choices else None
        usage = resp.usage
        return {
            "content": choice.message.content if choice else None,
            "finish_reason": choice.finish_reason if choice else None,
            "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        }, calls

    # ------------------------------------------------------------------ a checked, cached answer
    def cached(self, request: Request, check: Check) -> Answer | None:
        """The cached answer to ``request`` if there is one and ``check`` accepts it (no call)."""
        return self._cached(self.key(request), check)

    def _cached(self, key: str, check: Check) -> Answer | None:
        hit = self.cache.get(key) if key else None
        if hit is None:
            return None
        try:
            return Answer(value=check(hit["content"], hit.get("finish_reason")), cached=True)
        except (InvalidAnswer, KeyError, TypeError):
            return None  # a stale or damaged entry: ask again

    def ask(
        self,
        request: Request,
        check: Check,
        correction: Callable[[InvalidAnswer], str],
        *,
        budget: CostBudget | None = None,
        estimate: float = 0.0,
    ) -> Answer:
        """A checked answer: from the cache, else from the model (see the module docstring). ``correction(e)``
        is the user message that asks again after the check rejected an answer; ``budget`` refused gives
        ``error_code="budget"`` without a call."""
        key = self.key(request)
        hit = self._cached(key, check)
        if hit is not None:
            return hit
        if budget is not None and not budget.reserve(estimate):
            return Answer(error_code="budget", error="cost budget reached")
        ans = Answer()
        try:
            self._ask(request, key, check, correction, ans)
        finally:
            if budget is not None:
                budget.settle(estimate, ans.cost)
        return ans

    def _ask(
        self, request: Request, key: str, check: Check, correction: Callable[[InvalidAnswer], str], ans: Answer
    ) -> None:
        messages = list(request["messages"])
        for attempt in range(2):
            try:
                out, calls = self.complete(dict(request, messages=messages))
            except TransportError as e:
                ans.calls += e.calls
                ans.error_code, ans.error, ans.rejected = e.code, e.message, False
                return
            ans.calls += calls
            ans.prompt_tokens += out["prompt_tokens"]
            ans.completion_tokens += out["completion_tokens"]
            ans.cost = self.cost_of(ans.prompt_tokens, ans.completion_tokens)
            try:
                ans.value = check(out["content"], out["finish_reason"])
            except InvalidAnswer as e:
                ans.error_code, ans.error, ans.rejected = e.code, e.message, True
                messages = messages + [
                    {"role": "assistant", "content": out["content"] or ""},
                    {"role": "user", "content": correction(e)},
                ]
                continue
            ans.error_code = ans.error = None
            ans.rejected = False
            if key:
                self.cache.put(
                    key, {"content": out["content"], "finish_reason": out["finish_reason"], "attempt": attempt + 1}
                )
            return
