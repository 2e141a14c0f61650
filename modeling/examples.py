"""From a row (instruction or bench) to model inputs: prompts, answer-only labels, masks, region queries.

Grounded marks ``[phrase](node_id)`` of assistant turns are rendered ``<p>phrase</p> [SEG]`` (the
k-th ``[SEG]`` predicts ``masks[k]``); a row with more masks than marks (``loc``) gets the missing
``[SEG]`` appended to its first answer. Region-query rows get a ``<region>`` token after the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fifa.annotator.age import to_glamm
from fifa.concept_tree import rle as rle_utils
from fifa.concept_tree.imageio import ImageError, load_rgb

from .family import Family
from .imaging import Letterbox, box_mask, grid_mask, normalise
from .tokenizer import IMAGE, REGION, SEG

REGION_TASKS = ("rq_mask", "rq_box")
#: LLaVA-1.5's conversation format, for tokenizers that ship no chat template.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: {{ m['content'] }} "
    "{% else %}ASSISTANT: {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


class Skip(Exception):
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
    extra: dict = field(default_factory=dict)


def chat_text(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    template = getattr(tokenizer, "chat_template", None) or FALLBACK_TEMPLATE
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                         chat_template=template)


def user_content(text: str, fam: Family, tokenizer, region: bool) -> str:
    """First user turn: ``<image>`` expanded to the family's image tokens, ``<region>`` after it when needed."""
    text = text or ""
    if IMAGE not in text:
        text = IMAGE + "\n" + text
    if region and REGION not in text:
        text = text.replace(IMAGE, IMAGE + "\n" + REGION, 1)
    return text.replace(IMAGE, fam.image_text(tokenizer), 1)


def render_messages(messages: list[dict], fam: Family, tokenizer, region: bool, n_masks: int) -> list[dict]:
    out, seg_total, first_answer = [], 0, None
    for i, m in enumerate(messages):
        role = "user" if m["role"] == "user" else "assistant"
        content = m["content"] or ""
        if role == "user" and not any(x["role"] == "user" for x in out):
            content = user_content(content, fam, tokenizer, region)
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


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_chat(tokenizer, messages: list[dict], max_length: int, seg_id: int) -> Encoded:
    """Token ids and labels (-100 outside assistant answers); later turns are dropped, then the first answer
    cut, to fit ``max_length``; prompts are never cut (their image tokens must all stay)."""
    ids: list[int] = []
    labels: list[int] = []
    prompt_end = -1
    prev = ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = chat_text(tokenizer, messages[:k], add_generation_prompt=True)
        full = chat_text(tokenizer, messages[: k + 1], add_generation_prompt=False)
        if not prefix.startswith(prev) or not full.startswith(prefix):
            raise Skip("chat template is not prefix-consistent")
        p_ids = (tokenizer(prefix[len(prev):])["input_ids"] if not prev else _ids(tokenizer, prefix[len(prev):]))
        a_ids = _ids(tokenizer, full[len(prefix):])
        if len(ids) + len(p_ids) + 1 > max_length:
            if prompt_end < 0:
                raise Skip(f"prompt longer than data.max_length={max_length}")
            break
        ids += p_ids
        labels += [-100] * len(p_ids)
        if prompt_end < 0:
            prompt_end = len(ids) - 1
        a_ids = a_ids[: max_length - len(ids)]
        ids += a_ids
        labels += a_ids
        prev = full
    if prompt_end < 0:
        raise Skip("no assistant turn")
    n_seg = sum(1 for t in labels if t == seg_id)
    return Encoded(ids, labels, prompt_end, n_seg)


def encode_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Prompt ids for generation (history + question, generation prompt added)."""
    prefix = chat_text(tokenizer, messages, add_generation_prompt=True)
    return tokenizer(prefix)["input_ids"]


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
    """(grid weights, box normalised to [0, 1]) of a row's query mask or box."""
    qm, qb = row.get("query_mask"), row.get("query_box")
    if qm is not None:
        try:
            m = rle_utils.decode(rle_utils.check_rle(qm, (lb.h, lb.w)))
        except ValueError:
            raise Skip("query_mask does not decode or does not fit the image") from None
        sq = lb.mask(m)
        ys, xs = np.nonzero(sq > 0.5)
        box = (np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64) if len(xs)
               else np.array([0, 0, lb.size, lb.size], np.float64))
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
