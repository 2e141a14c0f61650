"""``fc`` conversations from an OpenAI-compatible model, the annotator's way.

The transport, retry policy (tenacity, ``Retry-After``), cache (content-addressed by the request
body, never the key), cost accounting and cost budget are the shared client's
(:class:`fifa.core.llm.OpenAIClient`, :class:`fifa.core.budget.CostBudget`). The
request carries the annotation's facts as text (label, method, the explanation without marks,
the regions with their extent) and asks for ``{"turns": [{"user", "assistant"}]}`` (2 to 4
turns) as structured JSON; the answer is validated (JSON, schema, no grounding marks, no
``finish_reason=length``) and retried once with the problem stated. ``max_cost`` stops
dispatching once spent + in-flight estimate would pass it: those rows are left out and
counted (``fc_budget``); a rerun with a larger budget reuses every cached answer.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import threading
from dataclasses import dataclass, field

from fifa.core.budget import CostBudget
from fifa.core.llm import InvalidAnswer, OpenAIClient, OpenAIConfig
from fifa.core.marks import has_markup

log = logging.getLogger(__name__)

PROMPT_VERSION = "fc-v1"
MIN_TURNS, MAX_TURNS = 2, 4

SYSTEM = (
    "You write short, factual conversations between a user and a forensic assistant about one face image. "
    "You are given what an annotator measured on the image. The assistant only states what the facts support; "
    "it never invents regions, methods or numbers. Plain text only: no Markdown links, brackets or mask tokens."
)


#: the model of the fc conversations (text from facts: a small model does; the annotator's default sees images)
FC_MODEL = "gpt-4o-mini"


@dataclass
class ConversationConfig:
    llm: str = "offline"  # offline | openai
    openai: OpenAIConfig = field(default_factory=lambda: OpenAIConfig(model=FC_MODEL))
    concurrency: int = 8
    max_cost: float | None = None  # USD for the whole build
    max_tokens: int = 600

    def to_dict(self) -> dict:
        return {
            "llm": self.llm,
            "openai": self.openai.to_dict() if self.llm == "openai" else None,
            "concurrency": self.concurrency,
            "max_cost": self.max_cost,
            "prompt_version": PROMPT_VERSION,
        }


@dataclass
class ConversationResult:
    turns: list[dict] | None = None  # [{"role", "content"}, ...] user first, alternating
    error_code: str | None = None
    error: str | None = None
    cost: float = 0.0
    cached: bool = False
    calls: int = 0


def response_schema() -> dict:
    turn = {
        "type": "object",
        "additionalProperties": False,
        "required": ["user", "assistant"],
        "properties": {"user": {"type": "string"}, "assistant": {"type": "string"}},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["turns"],
        "properties": {"turns": {"type": "array", "items": turn}},
    }


def build_request(facts: dict, cfg: ConversationConfig) -> dict:
    verdict = "manipulated" if facts.get("label") == "fake" else "authentic"
    # the image id makes each image's request (and cache entry) its own: images with the same facts
    # (every real image) still get their own conversation instead of one cached for all
    lines = [f"Image id: {facts.get('sample_id')}.", f"Verdict: {verdict}."]
    if facts.get("method"):
        lines.append(f"Forgery method: {facts['method']} (category {facts.get('category')}).")
    if facts.get("regions_text"):
        lines.append(f"Affected regions (extent): {facts['regions_text']}.")
    lines.append(f"Annotator's explanation: {facts.get('plain') or ''}")
    user = (
        "Facts about the image:\n"
        + "\n".join(lines)
        + f"\n\nWrite a conversation of {MIN_TURNS} to {MAX_TURNS} turns: the user asks about the image "
        "(authenticity, where, how, what to look for), the assistant answers from the facts."
    )
    return {
        "model": cfg.openai.model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "fc_conversation", "strict": True, "schema": response_schema()},
        },
        "temperature": cfg.openai.temperature,
        "max_tokens": cfg.max_tokens,
    }


def validate(content: str | None, finish_reason: str | None) -> list[dict]:
    """Turns from a model answer; raises :class:`InvalidAnswer` with the problem."""
    if finish_reason == "length":
        raise InvalidAnswer("llm_truncated", "the answer was cut off (finish_reason=length)")
    try:
        data = json.loads(content or "")
    except ValueError as e:
        raise InvalidAnswer("llm_invalid", f"the answer is not valid JSON ({e})") from None
    turns = data.get("turns") if isinstance(data, dict) else None
    if not isinstance(turns, list) or not (MIN_TURNS <= len(turns) <= MAX_TURNS):
        raise InvalidAnswer("llm_invalid", f"'turns' must be an array of {MIN_TURNS} to {MAX_TURNS} objects")
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise InvalidAnswer("llm_invalid", f"turns[{i}] must be an object")
        for k in ("user", "assistant"):
            v = t.get(k)
            if not isinstance(v, str) or not v.strip():
                raise InvalidAnswer("llm_invalid", f"turns[{i}].{k} must be a non-empty string")
            if has_markup(v) or "<image>" in v:
                raise InvalidAnswer("llm_invalid", f"turns[{i}].{k} contains markup")
        out += [
            {"role": "user", "content": t["user"].strip()},
            {"role": "assistant", "content": t["assistant"].strip()},
        ]
    return out


def _correction(e: InvalidAnswer) -> str:
    return f"Your answer was rejected: {e}. Answer again with one JSON object following the schema, plain text only."


class OpenAIConversations:
    """Conversation generator over the shared client (see the module docstring)."""

    remote = True

    def __init__(self, cfg: ConversationConfig):
        self.cfg = cfg
        self.name = f"openai/{cfg.openai.model}/{PROMPT_VERSION}"
        self.client = OpenAIClient(cfg.openai)  # transport, retries, cache, prices
        self._lock = threading.Lock()
        self.budget = CostBudget(cfg.max_cost)
        self.calls = 0
        self.cache_hits = 0

    def close(self) -> None:
        self.client.close()

    def converse(self, facts: dict) -> ConversationResult:
        ans = self.client.ask(
            build_request(facts, self.cfg),
            validate,
            _correction,
            budget=self.budget,
            estimate=self.client.cost_of(600, self.cfg.max_tokens),
        )
        with self._lock:
            self.calls += ans.calls
            self.cache_hits += ans.cached
        error = "--fc-max-cost reached" if ans.error_code == "budget" else ans.error
        return ConversationResult(
            turns=ans.value if ans.ok else None,
            error_code=ans.error_code,
            error=error,
            cost=ans.cost,
            cached=ans.cached,
            calls=ans.calls,
        )

    def converse_many(self, facts: list[dict]) -> list[ConversationResult]:
        """Results in the order of ``facts`` (requests run concurrently)."""
        with cf.ThreadPoolExecutor(max_workers=max(1, self.cfg.concurrency)) as pool:
            return list(pool.map(self.converse, facts))

    def summary(self) -> dict:
        return {
            "backend": self.name,
            "cost_usd": round(self.budget.spent, 6),
            "llm_calls": self.calls,
            "cache_hits": self.cache_hits,
            "budget_stops": self.budget.stops,
        }


def make_conversations(cfg: ConversationConfig):
    """None for the offline (columnar) generator, else the remote one."""
    if cfg.llm == "offline":
        return None
    if cfg.llm == "openai":
        return OpenAIConversations(cfg)
    raise ValueError(f"unknown conversation backend {cfg.llm!r} (offline|openai)")
