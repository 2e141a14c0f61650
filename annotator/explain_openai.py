"""Explainer backed by any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LM Studio).

* The request carries the fake (and its source: DFA-Instruct's comparison mode; a single
  image otherwise) as compact JPEG data URLs, the tree context of the chosen regions and
  the measured statistics, and asks for structured JSON (``response_format=json_schema``).
* The answer is validated: JSON, schema, ``finish_reason``, the hallucination guard
  (every region id must be one of the chosen ones) and the visible description (``visible_summary``
  and each region's ``visible``: what the fake alone shows, which must not mention the source or a
  figure measured against it, :mod:`.visible`). A rejected answer is retried once with
  the problem stated; a second rejection fails the row with the reason.
* Transport (retries with backoff and ``Retry-After`` on 429, 5xx, timeouts and connection errors),
  the content-addressed cache of validated answers (reruns make no call) and cost are the shared
  client's (:class:`fifa.core.llm.OpenAIClient`).
* The API key is held by the client only: it is not part of the cache key, the config dump,
  the logs or any output.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
from importlib import resources

from fifa.core import marks
from fifa.core.llm import InvalidAnswer, OpenAIClient, OpenAIConfig

from .explain import CATEGORY_WORDS, ExplainContext, ExplainResult, real_text
from .visible import source_mention

log = logging.getLogger(__name__)

PROMPT_VERSION = "age-v2"


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
        f"artifact mask covers {st.get('mask_fraction', 0):.1%} of the image in "
        f"{st.get('components', 0)} component(s); "
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
            else (
                "There is no measured artifact mask: the regions below are candidates; explain only those where "
                "you see artifacts."
            )
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
        "messages": [{"role": "system", "content": _prompt("system.txt")}, {"role": "user", "content": content}],
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
    """Parse and check one answer; raises :class:`InvalidAnswer` with the problem."""
    if finish_reason == "length":
        raise InvalidAnswer("llm_truncated", "the answer was cut off (finish_reason=length)")
    if not content:
        raise InvalidAnswer("llm_invalid", "the answer is empty")
    try:
        data = json.loads(content)
    except ValueError as e:
        raise InvalidAnswer("llm_invalid", f"the answer is not valid JSON ({e.msg} at position {e.pos})") from None
    if not isinstance(data, dict):
        raise InvalidAnswer("llm_invalid", "the answer must be a JSON object")
    for k in ("summary", "visible_summary"):
        if not isinstance(data.get(k), str):
            raise InvalidAnswer("llm_invalid", f"'{k}' must be a string")
    regs = data.get("regions")
    if not isinstance(regs, list):
        raise InvalidAnswer("llm_invalid", "'regions' must be an array")
    for i, r in enumerate(regs):
        if not isinstance(r, dict):
            raise InvalidAnswer("llm_invalid", f"regions[{i}] must be an object")
        for k in ("id", "phrase", "explanation", "visible"):
            if not isinstance(r.get(k), str) or not r.get(k).strip():
                raise InvalidAnswer("llm_invalid", f"regions[{i}].{k} must be a non-empty string")
    bad = [r["id"] for r in regs if r["id"] not in allowed]
    if bad:
        raise InvalidAnswer(
            "llm_hallucinated_region",
            f"region id(s) {', '.join(sorted(set(bad)))} not among the chosen regions ({', '.join(allowed) or 'none'})",
        )
    if allowed and not regs:
        raise InvalidAnswer("llm_invalid", "no region explained although regions were chosen")
    for where, text in [("visible_summary", data["visible_summary"])] + [
        (f"regions[{i}].visible", r["visible"]) for i, r in enumerate(regs)
    ]:
        said = source_mention(text)
        if said:
            raise InvalidAnswer(
                "llm_invalid",
                f"{where} must describe only what the manipulated image shows, without "
                f"the source or figures measured against it (it says {said!r})",
            )
    return data


def compose_text(data: dict, summary: str = "summary", field: str = "explanation") -> tuple[str, list[str]]:
    """Marked explanation from a validated answer: summary, then one marked sentence group per region.
    ``summary="visible_summary", field="visible"`` gives the visible description (the same marks, in order)."""
    parts = [marks.clean_model_text(data[summary]).strip()]  # never trust marks coming from the model
    ids = []
    for r in data["regions"]:
        phrase, expl, nid = (
            marks.clean_model_text(r["phrase"]).strip(),
            marks.clean_model_text(r[field]).strip(),
            r["id"],
        )
        idx = expl.lower().find(phrase.lower())
        if idx >= 0:
            expl = expl[:idx] + marks.mark(expl[idx : idx + len(phrase)], nid) + expl[idx + len(phrase) :]
        else:
            expl = f"{marks.mark(phrase[0].upper() + phrase[1:], nid)}: {expl}"
        parts.append(expl)
        ids.append(nid)
    return " ".join(p for p in parts if p), ids


def _correction(e: InvalidAnswer, allowed: list[str]) -> str:
    return (
        f"Your answer was rejected: {e.message}. Answer again with one JSON object following "
        f"the schema; use only these region ids: {', '.join(allowed) or '(none)'}; be concise."
    )


class OpenAIExplainer:
    """The explainer over the shared client: one checked, cached answer per row (see the module docstring)."""

    needs_images = True

    def __init__(self, cfg: OpenAIConfig):
        self.cfg = cfg
        self.name = f"openai/{cfg.model}/{PROMPT_VERSION}"
        self.client = OpenAIClient(cfg)

    def close(self) -> None:
        self.client.close()

    def explain(self, ctx: ExplainContext) -> ExplainResult:
        if ctx.label == "real":
            return ExplainResult(text=real_text(ctx), visible=real_text(ctx))
        t0 = time.perf_counter()
        allowed = ctx.allowed_ids
        ans = self.client.ask(
            build_request(ctx, self.cfg),
            functools.partial(validate_answer, allowed=allowed),
            functools.partial(_correction, allowed=allowed),
        )
        res = ExplainResult(
            prompt_tokens=ans.prompt_tokens,
            completion_tokens=ans.completion_tokens,
            cost=ans.cost,
            calls=ans.calls,
            cached=ans.cached,
        )
        if ans.ok:
            res.text, res.region_ids = compose_text(ans.value)
            res.visible = compose_text(ans.value, "visible_summary", "visible")[0]
        else:
            res.ok, res.error_code = False, ans.error_code
            res.error = (ans.error or "") + (" (after one corrective retry)" if ans.rejected else "")
        res.latency_s = time.perf_counter() - t0
        return res
