"""Explainer backed by any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LM Studio).

* The request carries the fake (and its source: DFA-Instruct's comparison mode; a single
  image otherwise) as compact JPEG data URLs, the tree context of the chosen regions and
  the measured statistics, and asks for structured JSON (``response_format=json_schema``).
* The answer is validated: JSON, schema, ``finish_reason``, the hallucination guard
  (every region id must be one of the chosen ones) and the visible description (``visible_summary``
  and each region's ``visible``: what the fake alone shows, which must not mention the source or a
  figure measured against it, :mod:`.visible`). A rejected answer is retried once with
  the problem stated; a second rejection fails the row with the reason.
* Transport errors are retried with tenacity: exponential backoff with jitter, honouring
  ``Retry-After``, on 429, 5xx, timeouts and connection errors; never on other 4xx.
* Validated answers go to a content-addressed cache (:mod:`.cache`): reruns make no call.
* The API key is held by the client only: it is not part of the cache key, the config dump,
  the logs or any output.
"""

from __future__ import annotations

import base64
import functools
import email.utils
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from fifa.core.errors import FifaError
from fifa.core import marks
from .cache import ResponseCache, request_key
from .explain import CATEGORY_WORDS, ExplainContext, ExplainResult, real_text
from .visible import source_mention

log = logging.getLogger(__name__)

PROMPT_VERSION = "age-v2"


@dataclass
class OpenAIConfig:
    model: str = "gpt-4o"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never serialised
    timeout: float = 60.0
    max_retries: int = 5
    retry_initial_wait: float = 0.5
    retry_max_wait: float = 60.0
    temperature: float = 0.2
    max_tokens: int = 900
    image_detail: str = "low"  # low | high | auto
    price_in_per_mtok: float = 2.50  # USD per 1M prompt tokens (gpt-4o list price)
    price_out_per_mtok: float = 10.00  # USD per 1M completion tokens
    cache_dir: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("api_key", None)
        return d


class LLMFailure(FifaError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@functools.lru_cache(maxsize=8)
def _prompt(name: str) -> str:
    return resources.files("fifa.annotator").joinpath("prompts", name).read_text("utf-8")


def response_schema(allowed: list[str]) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "visible_summary", "regions"],
        "properties": {
            "summary": {"type": "string"},
            "visible_summary": {"type": "string"},
            "regions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["id", "phrase", "explanation", "visible"],
                    "properties": {
                        "id": {"type": "string", "enum": list(allowed)} if allowed else {"type": "string"},
                        "phrase": {"type": "string"},
                        "explanation": {"type": "string"},
                        "visible": {"type": "string"},
                    },
                },
            },
        },
    }


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def build_request(ctx: ExplainContext, cfg: OpenAIConfig) -> dict:
    """The chat-completions request body for one row (deterministic: it is the cache key)."""
    allowed = ctx.allowed_ids
    lines = []
    for r in ctx.regions:
        p = r.profile or {}
        meas = ""
        if ctx.grounded and p:
            meas = (
                f" — coverage {r.coverage:.0%}, share {r.share:.0%}, change: {p.get('kind', '?')}"
                f" (ΔE {p.get('delta_e', 0):.1f}, ΔL {p.get('dL', 0):+.1f}, Δa {p.get('da', 0):+.1f},"
                f" Δb {p.get('db', 0):+.1f}, detail {p.get('detail', 0):+.1f})"
            )
        cues = "; ".join(r.artifacts[:4])
        lines.append(f"- {r.id}: {r.name}{meas}. {r.description} Typical cues: {cues}")
    st = ctx.stats or {}
    stats_line = (
        f"artifact mask covers {st.get('mask_fraction', 0):.1%} of the image in {st.get('components', 0)} component(s); "
        f"mean colour difference inside it ΔE {st.get('diff_mean_in_mask', 0):.1f}"
        if ctx.grounded
        else "none (no source image to compare with)"
    )
    comparison = ctx.source_jpeg is not None
    user_text = _prompt("user.txt").format(
        mode_line=(
            "two images: first the manipulated image, second its pristine source (comparison mode)"
            if comparison
            else "one image: the manipulated image (no source available)"
        ),
        category_words=CATEGORY_WORDS.get(ctx.category or "", "manipulated"),
        method_part=f", method {ctx.method}" if ctx.method else "",
        grounding_line=(
            "The regions below were selected from a measured artifact mask."
            if ctx.grounded
            else "There is no measured artifact mask: the regions below are candidates; explain only those where you see artifacts."
        ),
        region_lines="\n".join(lines) if lines else "(none)",
        stats_line=stats_line,
        allowed=", ".join(allowed) if allowed else "(none)",
    )
    content: list[dict] = [{"type": "text", "text": user_text}]
    for jpeg in (ctx.image_jpeg, ctx.source_jpeg):
        if jpeg is not None:
            content.append({"type": "image_url", "image_url": {"url": _data_url(jpeg), "detail": cfg.image_detail}})
    return {
        "model": cfg.model,
        "messages": [
            {"role": "system", "content": _prompt("system.txt")},
            {"role": "user", "content": content},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "age_explanation", "strict": True, "schema": response_schema(allowed)},
        },
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
    }


def estimate_tokens(n_images: int, n_regions: int, cfg: OpenAIConfig) -> tuple[int, int]:
    """(prompt, completion) token estimate of one request, for ``--dry-run`` and budgeting."""
    per_image = 85 if cfg.image_detail == "low" else 765
    text = (len(_prompt("system.txt")) + len(_prompt("user.txt")) + 420 * n_regions) // 4
    return text + per_image * n_images, min(cfg.max_tokens, 120 + 110 * n_regions)  # explanation + visible description


def validate_answer(content: str | None, finish_reason: str | None, allowed: list[str]) -> dict:
    """Parse and check one answer; raises :class:`LLMFailure` with the problem."""
    if finish_reason == "length":
        raise LLMFailure("llm_truncated", "the answer was cut off (finish_reason=length)")
    if not content:
        raise LLMFailure("llm_invalid", "the answer is empty")
    try:
        data = json.loads(content)
    except ValueError as e:
        raise LLMFailure("llm_invalid", f"the answer is not valid JSON ({e.msg} at position {e.pos})") from None
    if not isinstance(data, dict):
        raise LLMFailure("llm_invalid", "the answer must be a JSON object")
    for k in ("summary", "visible_summary"):
        if not isinstance(data.get(k), str):
            raise LLMFailure("llm_invalid", f"'{k}' must be a string")
    regs = data.get("regions")
    if not isinstance(regs, list):
        raise LLMFailure("llm_invalid", "'regions' must be an array")
    for i, r in enumerate(regs):
        if not isinstance(r, dict):
            raise LLMFailure("llm_invalid", f"regions[{i}] must be an object")
        for k in ("id", "phrase", "explanation", "visible"):
            if not isinstance(r.get(k), str) or not r.get(k).strip():
                raise LLMFailure("llm_invalid", f"regions[{i}].{k} must be a non-empty string")
    bad = [r["id"] for r in regs if r["id"] not in allowed]
    if bad:
        raise LLMFailure(
            "llm_hallucinated_region",
            f"region id(s) {', '.join(sorted(set(bad)))} not among the chosen regions ({', '.join(allowed) or 'none'})",
        )
    if allowed and not regs:
        raise LLMFailure("llm_invalid", "no region explained although regions were chosen")
    for where, text in [("visible_summary", data["visible_summary"])] + [
            (f"regions[{i}].visible", r["visible"]) for i, r in enumerate(regs)]:
        said = source_mention(text)
        if said:
            raise LLMFailure("llm_invalid", f"{where} must describe only what the manipulated image shows, without "
                                            f"the source or figures measured against it (it says {said!r})")
    return data


def compose_text(data: dict, summary: str = "summary", field: str = "explanation") -> tuple[str, list[str]]:
    """Marked explanation from a validated answer: summary, then one marked sentence group per region.
    ``summary="visible_summary", field="visible"`` gives the visible description (the same marks, in order)."""
    parts = [marks.clean_model_text(data[summary]).strip()]  # never trust marks coming from the model
    ids = []
    for r in data["regions"]:
        phrase, expl, nid = marks.clean_model_text(r["phrase"]).strip(), marks.clean_model_text(r[field]).strip(), r["id"]
        idx = expl.lower().find(phrase.lower())
        if idx >= 0:
            expl = expl[:idx] + marks.mark(expl[idx: idx + len(phrase)], nid) + expl[idx + len(phrase):]
        else:
            expl = f"{marks.mark(phrase[0].upper() + phrase[1:], nid)}: {expl}"
        parts.append(expl)
        ids.append(nid)
    return " ".join(p for p in parts if p), ids


def _backoff(first: float, longest: float):
    """Exponential backoff with jitter starting at ``first`` seconds (tenacity renamed ``initial``)."""
    import inspect

    from tenacity import wait_exponential_jitter

    key = "multiplier" if "multiplier" in inspect.signature(wait_exponential_jitter).parameters else "initial"
    return wait_exponential_jitter(max=longest, **{key: first})


def _retry_after_seconds(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(ra)
            return max(0.0, dt.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class OpenAIExplainer:
    needs_images = True

    def __init__(self, cfg: OpenAIConfig):
        import httpx
        import openai

        self.cfg = cfg
        self.name = f"openai/{cfg.model}/{PROMPT_VERSION}"
        self._openai = openai
        self.client = openai.OpenAI(
            api_key=cfg.api_key or "sk-no-key",
            base_url=cfg.base_url,
            timeout=cfg.timeout,
            max_retries=0,  # tenacity retries (below) honour Retry-After and our codes
            http_client=httpx.Client(
                timeout=cfg.timeout, limits=httpx.Limits(max_connections=256, max_keepalive_connections=128)
            ),
        )
        from openai.types.chat import ChatCompletion

        self._completion_type = ChatCompletion
        self.cache = ResponseCache(cfg.cache_dir)
        self._lock = threading.Lock()
        self.calls = 0

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # pragma: no cover
            pass

    def complete(self, request: dict) -> tuple[dict, int]:
        """Send any chat-completions body with this client's retry policy (other generators reuse it):
        ({content, finish_reason, prompt_tokens, completion_tokens}, HTTP calls); raises TransportError."""
        return self._send(request)

    # ------------------------------------------------------------------ transport
    def _is_retryable(self, exc: BaseException) -> bool:
        o = self._openai
        if isinstance(exc, (o.APITimeoutError, o.APIConnectionError, o.RateLimitError, o.InternalServerError)):
            return True
        if isinstance(exc, o.APIStatusError):
            return exc.status_code == 429 or exc.status_code >= 500
        return False

    def _send(self, request: dict):
        import tenacity
        backoff = _backoff(self.cfg.retry_initial_wait, self.cfg.retry_max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            ra = _retry_after_seconds(exc) if exc is not None else None
            if ra is not None:
                return min(ra, self.cfg.retry_max_wait)
            return backoff(state)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception()
            log.debug("retrying after %s (attempt %d)", type(exc).__name__, state.attempt_number)

        retryer = tenacity.Retrying(
            retry=tenacity.retry_if_exception(self._is_retryable),
            wait=wait,
            stop=tenacity.stop_after_attempt(self.cfg.max_retries + 1),
            before_sleep=before_sleep,
            reraise=True,
        )
        calls = 0

        def attempt():
            nonlocal calls
            calls += 1
            # The client's generic `post` (documented for undocumented endpoints) sends the body as
            # is: `chat.completions.create` would first walk the whole request (schema, messages,
            # image data) through its type transforms, ~10 ms of CPU per request.
            return self.client.post("/chat/completions", body=request, cast_to=self._completion_type)

        try:
            resp = retryer(attempt)
        except self._openai.APITimeoutError as e:
            raise _Transport("llm_timeout", f"request timed out after {calls} attempt(s)", calls) from e
        except self._openai.APIConnectionError as e:
            raise _Transport("llm_http_error", f"connection error after {calls} attempt(s): {type(e).__name__}", calls) from e
        except self._openai.APIStatusError as e:
            raise _Transport("llm_http_error", f"HTTP {e.status_code} after {calls} attempt(s)", calls) from e
        except ValueError as e:  # unparsable body from a broken server
            raise _Transport("llm_invalid", f"unreadable response: {e}", calls) from e
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

    # ------------------------------------------------------------------ explain
    def cost_of(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.cfg.price_in_per_mtok + completion_tokens * self.cfg.price_out_per_mtok) / 1e6

    def explain(self, ctx: ExplainContext) -> ExplainResult:
        if ctx.label == "real":
            return ExplainResult(text=real_text(ctx), visible=real_text(ctx))
        t0 = time.perf_counter()
        res = ExplainResult()
        allowed = ctx.allowed_ids
        request = build_request(ctx, self.cfg)
        key = request_key(request, self.cfg.base_url) if self.cache.enabled else ""
        hit = self.cache.get(key) if key else None
        if hit is not None:
            try:
                data = validate_answer(hit["content"], hit.get("finish_reason"), allowed)
                res.text, res.region_ids = compose_text(data)
                res.visible = compose_text(data, "visible_summary", "visible")[0]
                res.cached = True
                res.latency_s = time.perf_counter() - t0
                return res
            except (LLMFailure, KeyError, TypeError):
                pass  # a stale or damaged entry: ask again
        messages = list(request["messages"])
        problem: LLMFailure | None = None
        for attempt in range(2):
            req = dict(request, messages=messages)
            try:
                out, calls = self._send(req)
            except _Transport as e:
                res.calls += e.calls
                return self._fail(res, e.code, e.message, t0)
            res.calls += calls
            res.prompt_tokens += out["prompt_tokens"]
            res.completion_tokens += out["completion_tokens"]
            res.cost = self.cost_of(res.prompt_tokens, res.completion_tokens)
            try:
                data = validate_answer(out["content"], out["finish_reason"], allowed)
            except LLMFailure as e:
                problem = e
                messages = messages + [
                    {"role": "assistant", "content": out["content"] or ""},
                    {
                        "role": "user",
                        "content": (
                            f"Your answer was rejected: {e.message}. Answer again with one JSON object following "
                            f"the schema; use only these region ids: {', '.join(allowed) or '(none)'}; be concise."
                        ),
                    },
                ]
                continue
            res.text, res.region_ids = compose_text(data)
            res.visible = compose_text(data, "visible_summary", "visible")[0]
            if key:
                self.cache.put(key, {"content": out["content"], "finish_reason": out["finish_reason"], "attempt": attempt + 1})
            res.latency_s = time.perf_counter() - t0
            return res
        assert problem is not None
        return self._fail(res, problem.code, problem.message + " (after one corrective retry)", t0)

    @staticmethod
    def _fail(res: ExplainResult, code: str, message: str, t0: float) -> ExplainResult:
        res.ok = False
        res.error_code = code
        res.error = message
        res.latency_s = time.perf_counter() - t0
        return res


class _Transport(FifaError):
    def __init__(self, code: str, message: str, calls: int):
        super().__init__(message)
        self.code = code
        self.message = message
        self.calls = calls


def read_api_key(api_key_file: str | Path | None) -> str | None:
    import os

    if api_key_file:
        return Path(api_key_file).read_text("utf-8").strip() or None
    return os.environ.get("OPENAI_API_KEY") or None


#: Public name of the transport failure raised by :meth:`OpenAIExplainer.complete`.
TransportError = _Transport
