"""From a row (instruction or bench) to model inputs: prompts, answer-only labels, masks, region queries.

Grounded marks ``[phrase](node_id)`` of assistant turns are rendered ``<p>phrase</p> [SEG]`` (the
k-th ``[SEG]`` predicts ``masks[k]``); a row with more masks than marks (``loc``) gets the missing
``[SEG]`` appended to its first answer. Region-query rows get a ``<region>`` token after the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from fifa.concept_tree.imageio import ImageError, load_rgb
from fifa.core import rle as rle_utils
from fifa.core.errors import FifaError
from fifa.core.marks import render_glamm as to_glamm
from fifa.core.tasks import REGION_QUERY_TASKS, TASKS

from .family import Family
from .imaging import Letterbox, box_mask, grid_mask, normalise
from .tokenizer import IMAGE, REGION, SEG

#: region questions whose query is an area (a ``<region>`` token follows the image): mask and box queries
REGION_TASKS = tuple(t for t in REGION_QUERY_TASKS if TASKS[t].region_query in ("mask", "box"))
_VERDICT_RE = re.compile(r"\s*(yes|no)\b", re.IGNORECASE)
#: LLaVA-1.5's system prompt (Vicuna v1), which LLaVA-1.5 was trained with.
VICUNA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
#: LLaVA-1.5's conversation format, for tokenizers that ship no chat template (typed or string content).
FALLBACK_TEMPLATE = (
    "{% macro text(c) %}{% if c is string %}{{ c }}{% else %}{% for p in c %}{% if p['type'] == 'image' %}"
    "<image>\n{% elif p['type'] == 'text' %}{{ p['text'] }}{% endif %}{% endfor %}{% endif %}{% endmacro %}"
    "{% if messages[0]['role'] != 'system' %}" + VICUNA_SYSTEM + " {% endif %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{{ text(m['content']) }} "
    "{% elif m['role'] == 'user' %}USER: {{ text(m['content']) }} "
    "{% else %}ASSISTANT: {{ text(m['content']) }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
#: How Qwen's templates render a typed image part.
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"
#: Tokens that end an answer turn in the supported templates (besides the tokenizer's eos).
TURN_ENDS = ("<|im_end|>", "<|end|>")


class Skip(FifaError):
    """A row that cannot be used; ``reason`` is counted in the training log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    prompt_end: int  # position whose hidden state predicts the first answer token
    n_seg: int


@dataclass
class Example:
    id: str
    task: str
    input_ids: list[int]
    labels: list[int]
    prompt_end: int
    image: np.ndarray  # 3xSxS normalised
    pixels: np.ndarray  # the family's pixel_values for this image
    masks: np.ndarray  # (n_seg, m, m) float targets
    region: tuple[np.ndarray, np.ndarray] | None  # (grid weights, normalised box)
    det: int  # 1 fake, 0 real, -1 unknown
    cls: int  # class index or -1
    query: int = -1  # region-query verdict: 1 yes (manipulated), 0 no, -1 not a region query
    marks: np.ndarray = field(default_factory=lambda: np.full(1, -1.0, np.float32))  # mark head targets (-1: unknown)
    seg_regions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per [SEG]: region index or -1
    region_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # vocabulary regions to parse
    region_maps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))  # their masks
    extra: dict = field(default_factory=dict)


def typed_content(content: str) -> list[dict]:
    """A message's text as typed parts (``{"type": "image"}``, ``{"type": "text", ...}``): the form every
    template renders (llava-hf's renders *only* typed parts: string content comes out empty)."""
    if IMAGE not in content:
        return [{"type": "text", "text": content}]
    before, after = content.split(IMAGE, 1)
    parts = [{"type": "text", "text": before}] if before.strip() else []
    parts.append({"type": "image"})
    after = after[1:] if after.startswith("\n") else after  # templates put their own break after the image
    return parts + ([{"type": "text", "text": after}] if after else [])


def expand_image(text: str, fam: Family, tokenizer) -> str:
    """The template's one image placeholder replaced by the family's image tokens (one per feature)."""
    if fam.kind == "qwen2_vl" and QWEN_IMAGE in text:
        return text.replace(QWEN_IMAGE, fam.image_text(tokenizer), 1)
    if IMAGE in text:
        return text.replace(IMAGE, fam.image_text(tokenizer), 1)
    raise Skip("the chat template dropped the image")


def chat_text(tokenizer, fam: Family, messages: list[dict], add_generation_prompt: bool) -> str:
    """The rendered conversation (typed content for every family), image placeholder expanded."""
    template = getattr(tokenizer, "chat_template", None) or FALLBACK_TEMPLATE
    typed = [{"role": m["role"], "content": typed_content(m["content"] or "")} for m in messages]
    text = tokenizer.apply_chat_template(
        typed, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=template
    )
    has_image = any(IMAGE in (m["content"] or "") for m in messages)
    return expand_image(text, fam, tokenizer) if has_image else text


def render_messages(messages: list[dict], region: bool, n_masks: int) -> list[dict]:
    """Roles normalised, marks rendered ``<p>phrase</p> [SEG]``, ``<image>`` (and ``<region>`` after it) in the
    first user turn; a row with more masks than marks gets the missing ``[SEG]`` after its first answer."""
    out, seg_total, first_answer = [], 0, None
    for m in messages:
        role = "user" if m["role"] == "user" else "assistant"
        content = m["content"] or ""
        if role == "user" and not any(x["role"] == "user" for x in out):
            content = user_content(content, region)
        elif role == "assistant":
            content = to_glamm(content)
            seg_total += content.count(SEG)
            if first_answer is None:
                first_answer = len(out)
        out.append({"role": role, "content": content})
    if seg_total > n_masks:
        raise Skip("more [SEG] marks than masks")
    if seg_total < n_masks and first_answer is not None:
        out[first_answer]["content"] += (" " + SEG) * (n_masks - seg_total)
    return out


def user_content(text: str, region: bool) -> str:
    """First user turn: ``<image>`` (added in front when missing), ``<region>`` after it when needed."""
    text = text or ""
    if IMAGE not in text:
        text = IMAGE + "\n" + text
    if region and REGION not in text:
        text = text.replace(IMAGE, IMAGE + "\n" + REGION, 1)
    return text


def _answer_span(answer: str, content: str, ends: tuple[str, ...]) -> tuple[int, str]:
    """(characters of the answer turn that are labelled, end marker to add when the template has none)."""
    at = answer.find(content)
    if at < 0:
        raise Skip("chat template changes the answer text")
    body = at + len(content)
    tail = answer[body:]
    for marker in ends:
        k = tail.find(marker)
        if k >= 0 and not tail[:k].strip():
            return body + k + len(marker), ""
    return body, None  # the template ends no turn (llava-hf): the eos is added


def conversation_text(tokenizer, fam: Family, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The text to train on and the character spans of its answers (each with the token that ends it)."""
    ends = tuple(t for t in (tokenizer.eos_token, *TURN_ENDS) if t)
    text, spans, prev = "", [], ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = chat_text(tokenizer, fam, messages[:k], add_generation_prompt=True)
        full = chat_text(tokenizer, fam, messages[: k + 1], add_generation_prompt=False)
        if not prefix.startswith(prev) or not full.startswith(prefix):
            raise Skip("chat template is not prefix-consistent")
        text += prefix[len(prev) :]
        answer = full[len(prefix) :]
        n, missing = _answer_span(answer, m["content"] or "", ends)
        start = len(text)
        if missing is None:  # no turn end in the template: the answer ends with the eos token
            text += answer[:n] + (tokenizer.eos_token or "")
        else:
            text += answer[:n]
        spans.append((start, len(text)))
        if missing is not None:
            text += answer[n:]
        prev = full
    if not spans:
        raise Skip("no assistant turn")
    return text, spans


def encode_chat(tokenizer, fam: Family, messages: list[dict], max_length: int, seg_id: int) -> Encoded:
    """Token ids of the whole conversation, tokenised at once (the answer's first token is the one generation
    produces after the prompt), and labels: exactly the answers' tokens and the token that ends each answer,
    -100 elsewhere. Cut at ``max_length`` (later turns first); prompts are never cut (their image tokens must
    all stay)."""
    text, spans = conversation_text(tokenizer, fam, messages)
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    labels = [-100] * len(ids)
    k = 0
    for i, (a, b) in enumerate(offsets):
        while k < len(spans) and a >= spans[k][1]:
            k += 1
        if k < len(spans) and b > a and b > spans[k][0]:
            labels[i] = ids[i]
    first = next((i for i, t in enumerate(labels) if t != -100), None)
    if first is None:
        raise Skip("no answer token")
    if first >= max_length:
        raise Skip(f"prompt longer than data.max_length={max_length}")
    ids, labels = ids[:max_length], labels[:max_length]
    n_seg = sum(1 for t in labels if t == seg_id)
    return Encoded(ids, labels, first - 1, n_seg)


def encode_prompt(tokenizer, fam: Family, messages: list[dict]) -> list[int]:
    """Prompt ids for generation (history + question, generation prompt added)."""
    return tokenizer(chat_text(tokenizer, fam, messages, add_generation_prompt=True))["input_ids"]


def load_image(source) -> np.ndarray:
    try:
        return load_rgb(source)
    except ImageError as e:
        raise Skip(f"image: {e.code}") from None


def image_inputs(rgb: np.ndarray, fam: Family) -> tuple[Letterbox, np.ndarray, np.ndarray]:
    lb = Letterbox(rgb.shape[0], rgb.shape[1], fam.image_size)
    fill = tuple(int(round(255 * m)) for m in fam.mean)
    chw = normalise(lb.image(rgb, fill), fam.mean, fam.std)
    return lb, chw, fam.pixel_values(chw)


def mask_targets(rles: list, lb: Letterbox, size: int) -> np.ndarray:
    out = np.zeros((len(rles), size, size), np.float32)
    for k, r in enumerate(rles):
        try:
            m = rle_utils.decode(rle_utils.check_rle(r, (lb.h, lb.w)))
        except ValueError:
            raise Skip("mask does not decode or does not fit the image") from None
        out[k] = lb.mask(m, size) >= 0.5
    return out


def region_query(row: dict, lb: Letterbox, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """(grid weights, box normalised to [0, 1]) of a row's query mask or box (a dict row: training's)."""
    return query_region(row.get("query_mask"), row.get("query_box"), lb, grid)


def query_region(qm: dict | None, qb: list[float] | None, lb: Letterbox, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """(grid weights, box normalised to [0, 1]) of a query mask ``qm`` (RLE) or, without one, a query box ``qb``
    ``[x0, y0, x1, y1]`` in pixels; what :func:`region_query` reads from a dict row and the predictor from a
    :class:`~fifa.core.records.BenchQuestion`."""
    if qm is not None:
        try:
            m = rle_utils.decode(rle_utils.check_rle(qm, (lb.h, lb.w)))
        except ValueError:
            raise Skip("query_mask does not decode or does not fit the image") from None
        sq = lb.mask(m)
        ys, xs = np.nonzero(sq > 0.5)
        box = (
            np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
            if len(xs)
            else np.array([0, 0, lb.size, lb.size], np.float64)
        )
    elif qb is not None and len(qb) == 4:
        box = lb.box(qb)
        sq = box_mask(box, lb.size)
    else:
        raise Skip("region query without query_mask or query_box")
    w = grid_mask(sq, grid)
    if w.sum() <= 0:
        w = grid_mask(box_mask(box, lb.size), grid)
    return w.astype(np.float32), np.clip(box / lb.size, 0, 1).astype(np.float32)


def det_label(label) -> int:
    return {"fake": 1, "real": 0}.get(str(label).lower() if label is not None else "", -1)


def query_label(task: str, messages: list[dict]) -> int:
    """1 / 0 when a region-query row's first answer opens with yes / no (how the build words them), else -1."""
    if task not in REGION_QUERY_TASKS:
        return -1
    answer = next((m.get("content") or "" for m in messages if m.get("role") == "assistant"), "")
    m = _VERDICT_RE.match(answer)
    return -1 if m is None else int(m.group(1).lower() == "yes")


def class_value(row: dict, field: str) -> str | None:
    """The classification target of a row: its ``field`` (``category``, ``method``, ...); a real image with no
    value there (real rows carry no method) is the class ``real``."""
    v = row.get(field)
    if v is None and det_label(row.get("label")) == 0:
        return "real"
    return None if v is None else str(v)
