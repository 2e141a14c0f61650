"""The LLM judge of ``fifa-bench score`` (DESIGN.md "Metric definitions", judge).

An OpenAI-compatible model scores each text answer 1-5 against the bench's reference answer and the
image, with the versioned rubric of ``prompts/judge-v1.txt``, answering ``{"score", "reason"}`` as
structured JSON (``response_format=json_schema``). The transport, the retry policy (tenacity,
``Retry-After``, backoff on 429 / 5xx / timeouts), the content-addressed response cache (keyed by
endpoint and request body, never the API key), the token prices and the cost budget are the shared
client's (:class:`fifa.core.llm.OpenAIClient`, :class:`fifa.core.budget.CostBudget`).

* An answer that is not a valid judgement (not JSON, a score outside 1-5, ``finish_reason=length``)
  is asked again once with the problem stated; a second failure leaves the question unscored.
* ``max_cost`` (USD) stops dispatching once spent + in-flight estimates would pass it: the rest stay
  unscored and counted (``budget``); a rerun with a larger budget reuses every cached judgement.
* A missing answer scores 1 without a call (it answers nothing), like a wrong one elsewhere.
* The API key comes from an environment variable (:data:`KEY_ENV`, else ``OPENAI_API_KEY``) and is held
  by the client only: never in the cache key, the report, the logs or any file.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import functools
import io
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from importlib import resources

from fifa.core.budget import CostBudget
from fifa.core.llm import InvalidAnswer, OpenAIClient, OpenAIConfig, read_api_key
from fifa.core.llm_cache import default_cache_dir, normalize_endpoint

log = logging.getLogger(__name__)

RUBRIC_FILE = "judge-v1.txt"
KEY_ENV = "FIFA_JUDGE_API_KEY"
SCHEMA_NAME = "judge_score"


@functools.lru_cache(maxsize=4)
def rubric(name: str = RUBRIC_FILE) -> dict:
    """{"version", "system", "user"} of a rubric file in ``fifa/benchmarks/prompts``."""
    text = resources.files("fifa.benchmarks").joinpath("prompts", name).read_text("utf-8")
    head, rest = text.split("=== system ===", 1)
    system, user = rest.split("=== user ===", 1)
    version = next(ln.split(":", 1)[1].strip() for ln in head.splitlines() if ln.startswith("version:"))
    return {"version": version, "system": system.strip(), "user": user.strip()}


def api_key_from_env() -> str | None:
    """:data:`KEY_ENV`, else ``OPENAI_API_KEY``."""
    return read_api_key(None, (KEY_ENV, "OPENAI_API_KEY"))


@dataclass(frozen=True)
class JudgeConfig:
    """Options of the judge: the home of their defaults (``fifa-bench score --judge-*`` are generated from it;
    the transport's come from :class:`~fifa.core.llm.OpenAIConfig`)."""

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never serialised; default: the environment
    max_cost: float | None = None  # USD for the whole scoring run
    concurrency: int = 8
    cache_dir: str | None = None  # default: the annotator's cache folder; "" disables the cache
    images: bool = True  # send the image (low detail JPEG) with each question
    timeout: float = OpenAIConfig.timeout
    max_retries: int = OpenAIConfig.max_retries
    retry_initial_wait: float = OpenAIConfig.retry_initial_wait
    price_in_per_mtok: float = OpenAIConfig.price_in_per_mtok
    price_out_per_mtok: float = OpenAIConfig.price_out_per_mtok
    max_tokens: int = 200

    def openai(self) -> OpenAIConfig:
        cache = str(default_cache_dir()) if self.cache_dir is None else (self.cache_dir or None)
        return OpenAIConfig(
            model=self.model,
            base_url=self.base_url,
            api_key=self.api_key or api_key_from_env(),
            timeout=self.timeout,
            max_retries=self.max_retries,
            retry_initial_wait=self.retry_initial_wait,
            temperature=0.0,
            max_tokens=self.max_tokens,
            price_in_per_mtok=self.price_in_per_mtok,
            price_out_per_mtok=self.price_out_per_mtok,
            cache_dir=cache,
        )


@dataclass
class JudgeItem:
    question_id: str
    task: str
    question: str
    reference: str
    answer: str | None  # None: no answer in the submission
    image_jpeg: bytes | None = None


@dataclass
class Judgement:
    score: int | None = None
    reason: str | None = None
    error_code: str | None = None  # llm_invalid | llm_truncated | llm_http_error | llm_timeout | budget
    error: str | None = None
    cost: float = 0.0
    calls: int = 0
    cached: bool = False


def response_schema() -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["score", "reason"],
        "properties": {"score": {"type": "integer", "enum": [1, 2, 3, 4, 5]}, "reason": {"type": "string"}},
    }


def build_request(item: JudgeItem, cfg: JudgeConfig) -> dict:
    """The chat-completions body for one question (deterministic: it is the cache key)."""
    r = rubric()
    text = r["user"]
    for k, v in (
        ("{task}", item.task),
        ("{question}", item.question),
        ("{reference}", item.reference),
        ("{answer}", item.answer or ""),
    ):
        text = text.replace(k, " ".join(v.split()))
    content: list[dict] = [{"type": "text", "text": text}]
    if cfg.images and item.image_jpeg:
        url = "data:image/jpeg;base64," + base64.b64encode(item.image_jpeg).decode("ascii")
        content.append({"type": "image_url", "image_url": {"url": url, "detail": "low"}})
    return {
        "model": cfg.model,
        "messages": [{"role": "system", "content": r["system"]}, {"role": "user", "content": content}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": response_schema()},
        },
        "temperature": 0.0,
        "max_tokens": cfg.max_tokens,
    }


def validate(content: str | None, finish_reason: str | None) -> tuple[int, str]:
    """(score, reason) from a model answer; raises :class:`InvalidAnswer` with the problem."""
    if finish_reason == "length":
        raise InvalidAnswer("llm_truncated", "the answer was cut off (finish_reason=length)")
    try:
        data = json.loads(content or "")
    except ValueError as e:
        raise InvalidAnswer("llm_invalid", f"the answer is not valid JSON ({e})") from None
    s = data.get("score") if isinstance(data, dict) else None
    if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 5:
        raise InvalidAnswer("llm_invalid", f"'score' must be an integer from 1 to 5, got {s!r}")
    reason = data.get("reason")
    return s, reason if isinstance(reason, str) else ""


def jpeg_of(image: dict | None, root=None, side: int = 512) -> bytes | None:
    """A low-detail JPEG of a bench ``image`` struct (bytes, or a path relative to ``root``); None if unreadable."""
    from PIL import Image

    if not image:
        return None
    try:
        if image.get("bytes"):
            im = Image.open(io.BytesIO(image["bytes"]))
        elif image.get("path") and root is not None:
            im = Image.open(os.path.join(root, image["path"]))
        else:
            return None
        im = im.convert("RGB")
        im.thumbnail((side, side))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
        return buf.getvalue()
    except Exception:  # noqa: BLE001 - the judge then sees the text only
        return None


def _correction(e: InvalidAnswer) -> str:
    return (
        f"Your answer was rejected: {e}. Answer again with one JSON object "
        '{"score": <integer 1-5>, "reason": "<one sentence>"}.'
    )


class Judge:
    """Scores answers with an OpenAI-compatible model over the shared client (see the module docstring)."""

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        self.version = rubric()["version"]
        self.client = OpenAIClient(cfg.openai())  # transport, retries, cache, prices
        self._lock = threading.Lock()
        self.budget = CostBudget(cfg.max_cost)
        self.calls = self.cache_hits = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def judge(self, item: JudgeItem) -> Judgement:
        if item.answer is None or not item.answer.strip():
            return Judgement(score=1, reason="no answer")
        ans = self.client.ask(
            build_request(item, self.cfg),
            validate,
            _correction,
            budget=self.budget,
            estimate=self.client.cost_of(900 if self.cfg.images else 800, self.cfg.max_tokens),
        )
        with self._lock:
            self.calls += ans.calls
            self.cache_hits += ans.cached
        score, reason = ans.value if ans.ok else (None, None)
        error = "--judge-max-cost reached" if ans.error_code == "budget" else ans.error
        return Judgement(
            score=score,
            reason=reason,
            error_code=ans.error_code,
            error=error,
            cost=ans.cost,
            calls=ans.calls,
            cached=ans.cached,
        )

    def judge_many(self, items: list[JudgeItem]) -> list[Judgement]:
        """Judgements in the order of ``items`` (requests run concurrently)."""
        with cf.ThreadPoolExecutor(max_workers=max(1, self.cfg.concurrency)) as pool:
            return list(pool.map(self.judge, items))

    def identity(self) -> dict:
        """Who judged: the model, the endpoint (without credentials) and the rubric version."""
        return {
            "model": self.cfg.model,
            "endpoint": normalize_endpoint(self.cfg.base_url),
            "rubric_version": self.version,
            "images": self.cfg.images,
        }

    def summary(self) -> dict:
        return {
            **self.identity(),
            "cost_usd": round(self.budget.spent, 6),
            "llm_calls": self.calls,
            "cache_hits": self.cache_hits,
            "budget_stops": self.budget.stops,
            "max_cost": self.cfg.max_cost,
        }


__all__ = ["Judge", "JudgeConfig", "JudgeItem", "Judgement", "KEY_ENV", "build_request", "rubric", "validate"]
