"""Prediction: bench rows -> submission rows (DESIGN columns), batched, resumable, in one pass.

Per batch the vision encoder runs once and greedy generation runs once (left-padded prompts): the
last-layer state of every decoding step is read as it is computed (a hook on the language model's
final norm), so the ``[SEG]`` queries (the state that predicted each generated ``[SEG]``, as LISA)
and the verdict heads (the state at the end of the prompt) need no second forward. Every generated
``[SEG]`` gives a mask (logits upsampled to the image, threshold 0, COCO RLE); the detection head (or
the yes/no token probabilities) gives ``score``. Answers are plain text (``<p>``, ``</p>``, ``[SEG]``
removed), except ``loc`` / ``age`` answers, which keep their marks ``<p>phrase</p> [SEG]`` (the grounding
metrics pair the k-th mark with the k-th mask).

With ``predict.verdicts: head`` (the default when the model has a detection head) the answer and the
score cannot disagree: at the first decoding step the heads read the prompt's last state, a ``det``
answer starts with the verdict it implies ("Yes" / "No", the first answer token of the training
answers), an ``rq_*`` answer with the query head's yes / no, a ``cls`` answer with the opening words of
the classification head's class, and the model writes the rest; ``loc`` / ``age`` masks of an image the
head calls real are empty, and a ``loc`` / ``age`` answer on an image it calls fake gets a ``[SEG]`` when
the text has none. A det answer whose words still read as the other verdict is cut to the bare "Yes." / "No."
(:func:`consistent_verdict`). ``text`` leaves everything to the generated text.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessorList

from fifa.benchmarks.metrics_verdict import verdict_of
from fifa.benchmarks.parsing import FAKE, REAL, parse_cls, parse_det
from fifa.core import rle as rle_utils
from fifa.core.marks import plain_generated, tidy_generated
from fifa.core.records import BenchQuestion
from fifa.core.tasks import MASK_TASKS, REGION_QUERY_TASKS
from fifa.pipelines.buildinfo import build_image_root

from .examples import REGION_TASKS, Skip, encode_prompt, image_inputs, load_image, query_region, user_content
from .family import Family
from .guide import (
    HeadGuide,
    PlannedMark,
    answer_opening_ids,
    count_tokens,
    named_region,
    phrase_ids,
    verdict_tokens,
    yes_no_ids,
)
from .mark_plan import artifact_of, plan_from_mask, region_phrase
from .precision import Precision
from .region_maps import AnchorMasks, image_key
from .tokenizer import IMAGE, PHRASE_CLOSE, PHRASE_OPEN, REGION, SEG

log = logging.getLogger(__name__)


def prompt_messages(q: BenchQuestion) -> list[dict]:
    """The chat of a question: its earlier turns (an ``fc`` conversation), then the question itself."""
    history = [dict(role=m["role"], content=m["content"]) for m in q.history]
    msgs = history + [{"role": "user", "content": q.question}]
    first = next(i for i, m in enumerate(msgs) if m["role"] == "user")
    msgs[first]["content"] = user_content(msgs[first]["content"], q.task in REGION_TASKS)
    return msgs


def consistent_verdict(answer: str, fake: bool) -> str:
    """``answer`` when it reads as the head's verdict (the scorer's own parser decides), else the bare verdict:
    a small model can follow a forced "Yes." with "the face is authentic", and an answer that contradicts its
    own score helps nobody."""
    return answer if parse_det(answer) == (FAKE if fake else REAL) else ("Yes." if fake else "No.")


class StepStates:
    """The last-layer state of the newest position at every forward of the language model (a forward hook
    on its final norm): during ``generate``, entry ``j`` is the state that predicted generated token ``j``."""

    def __init__(self, norm: torch.nn.Module):
        self.states: list[torch.Tensor] = []
        self._handle = norm.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.states.append(output[:, -1].detach())

    def close(self) -> None:
        self._handle.remove()


class Predictor:
    def __init__(
        self,
        model,
        tok,
        fam: Family,
        device,
        max_new_tokens: int = 64,
        det_score: str = "head",
        verdicts: str = "head",
        precision: Precision | None = None,
        region_masks: str = "model",
        mark_source: str = "head",
    ):
        self.model, self.tok, self.fam, self.device = model, tok, fam, device
        #: ``segmenter``: each mark that names a region keeps its mask inside that region's anchor (region_maps.py)
        #: ``mark_source: mask``: an age answer marks the regions its artifact mask covers (mark_plan.py), each
        #: mark's mask kept inside its own region
        self.mark_source = mark_source
        segmenter = region_masks == "segmenter" or mark_source == "mask"
        self.anchor_masks = AnchorMasks() if segmenter else None
        self.cut_level = "node" if mark_source == "mask" else "anchor"
        self.max_new_tokens, self.det_score = max_new_tokens, det_score
        self.precision = precision or Precision(torch.device(device).type, None)
        self.eos = [tok.eos_token_id] + [
            tok.convert_tokens_to_ids(t) for t in ("<|end|>", "<|im_end|>") if t in tok.get_vocab()
        ]
        banned = [IMAGE, REGION, "<|image_pad|>", "<|vision_start|>", "<|vision_end|>"]
        self.bad = [[tok.convert_tokens_to_ids(t)] for t in banned if t in tok.get_vocab()]
        self.yes, self.no = yes_no_ids(tok)
        self.guided = verdicts == "head" and model.heads.verdict.det is not None
        self.verdict_token = verdict_tokens(tok, fam) if self.guided else {}
        self.yes_opening = answer_opening_ids(tok, fam, "Yes") if self.guided else []  # the whole word: a small
        self.no_opening = answer_opening_ids(tok, fam, "No") if self.guided else []  # vocabulary splits it
        classes = model.heads.classes
        openings = getattr(model.heads, "class_openings", {}) or {}
        self.class_opening_ids = (
            {c: answer_opening_ids(tok, fam, openings.get(c, c)) for c in classes} if self.guided else {}
        )
        self.seg_id = tok.convert_tokens_to_ids(SEG)
        self.phrase_open, self.phrase_close = (
            tok.convert_tokens_to_ids(PHRASE_OPEN),
            tok.convert_tokens_to_ids(PHRASE_CLOSE),
        )
        self.region_phrase_ids = [phrase_ids(tok, r["phrase"]) for r in model.heads.regions]
        self.vocabulary = {r["id"]: k for k, r in enumerate(model.heads.regions)}
        self.count_of = count_tokens(tok)

    def pick_class(self, probs: list[float], fake_p: float | None) -> str:
        """The classification head's class, consistent with the detection head: ``real`` when the detection head
        calls the image real, else the most probable class other than ``real``."""
        classes = self.model.heads.classes
        if fake_p is not None and "real" in classes:
            if fake_p < 0.5:
                return "real"
            probs = [q if c != "real" else -1.0 for c, q in zip(classes, probs)]
        return classes[int(np.argmax(probs))]

    def max_opening(self, tasks: list[str]) -> int:
        n = [1] if any(t == "det" or t in REGION_QUERY_TASKS for t in tasks) else [0]
        if "cls" in tasks:
            n += [len(v) for v in self.class_opening_ids.values()]
        return max(n) if self.guided else 0

    def _inputs(self, rows: list[BenchQuestion], resolve):
        prompts, chws, pix, regions, lbs, ok, errors = [], [], [], [], [], [], {}
        self._rgbs: list[tuple[str, np.ndarray] | None] = []
        for r in rows:
            try:
                rgb = load_image(resolve(r.image))
                lb, chw, px = image_inputs(rgb, self.fam)
                rq = query_region(r.query_mask, r.query_box, lb, self.fam.grid) if r.task in REGION_TASKS else None
                prompts.append(encode_prompt(self.tok, self.fam, prompt_messages(r)))
            except Skip as e:
                errors[r.question_id] = e.reason
                continue
            chws.append(chw), pix.append(px), lbs.append(lb), ok.append(r)
            key = image_key(r.image) or r.question_id
            self._rgbs.append((key, rgb) if self.anchor_masks is not None else None)
            if rq is not None:
                regions.append(rq)
        return prompts, chws, pix, regions, lbs, ok, errors

    def _batch(self, seqs: list[list[int]], chws, pix, regions) -> dict:
        """Left-padded prompts and their images (the last position of every row is its prompt's end)."""
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), self.tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(seqs), L), dtype=torch.long)
        for b, s in enumerate(seqs):
            ids[b, L - len(s) :] = torch.tensor(s)
            att[b, L - len(s) :] = 1
        batch = {
            "input_ids": ids,
            "attention_mask": att,
            "images": torch.from_numpy(np.stack(chws)),
            **self.fam.batch_pixels(pix),
        }
        if regions:
            batch["region_weights"] = torch.from_numpy(np.stack([r[0] for r in regions]))
            batch["region_boxes"] = torch.from_numpy(np.stack([r[1] for r in regions]))
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _generate(
        self,
        batch: dict,
        img_out,
        feats,
        pix,
        tasks: list[str],
        named: list[int | None] | None = None,
        plans: list[list[PlannedMark] | None] | None = None,
    ):
        """Generated ids per row (up to the first end token), the per-step states, the first step's reads.
        Steps beyond ``max_new_tokens`` are decoded (and dropped, except as many as forced opening tokens) so
        that an answer cut at the limit still has the state that follows its last token (the query of a
        ``[SEG]`` appended to it)."""
        m = self.model
        m._pending_regions = m.region_embeddings(batch, feats)
        states = StepStates(m.inner.model.language_model.norm)
        first = HeadGuide(self, states, feats, pix, m.query_areas(batch, feats), tasks, named, plans)
        try:
            kw = {"image_grid_thw": batch["image_grid_thw"]} if "image_grid_thw" in batch else {}
            out = m.lm.generate(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                **kw,
                mm_encoder_outputs={"image": img_out},
                **m.fam.text_kwargs(batch["input_ids"]),
                max_new_tokens=self.max_new_tokens + 1 + self.max_opening(tasks),
                do_sample=False,
                eos_token_id=self.eos,
                pad_token_id=self.tok.pad_token_id,
                bad_words_ids=self.bad or None,
                logits_processor=LogitsProcessorList([first]),
            )
        finally:
            m._pending_regions = None
            states.close()
        gen = []
        for g, opening in zip(out[:, batch["input_ids"].shape[1] :].tolist(), first.openings):
            # forced opening tokens come on top of the answer's own max_new_tokens (they were the prompt's)
            g = g[: self.max_new_tokens + len(opening)]
            cut = next((i for i, t in enumerate(g) if t in self.eos), len(g))
            gen.append([t for t in g[:cut] if t != self.tok.pad_token_id])
        return gen, states.states, first

    @torch.no_grad()
    def __call__(self, rows: list[BenchQuestion], resolve) -> list[dict]:
        prompts, chws, pix, regions, lbs, ok, errors = self._inputs(rows, resolve)
        out = [{"question_id": q, "answer": None, "score": None, "masks": None, "error": e} for q, e in errors.items()]
        if not ok:
            return out
        with self.precision.autocast():
            return out + self._predict(self._batch(prompts, chws, pix, regions), lbs, ok)

    def _predict(self, batch: dict, lbs, rows: list[BenchQuestion]) -> list[dict]:
        tasks = [r.task for r in rows]
        img_out, feats, pix = self.model.image_features(batch)  # the vision encoder, once per image
        named = [
            named_region(r.question, self.model.heads.regions) if t == "rq_name" else None for r, t in zip(rows, tasks)
        ]
        gen, states, first = self._generate(batch, img_out, feats, pix, tasks, named)
        fake_p = first.head_p if self.guided else None
        gen = self._with_seg(gen, tasks, fake_p)
        if self.mark_source == "mask" and fake_p is not None and "age" in tasks:
            # the first answers' [SEG] masks are the artifact; the answers are written again marking its regions
            raw = self._raw_masks(gen, states, feats, pix, batch["images"], lbs, first.seg_regions)
            plans = [
                self._mask_plan(b, raw[b]) if t == "age" and fake_p[b] >= 0.5 else None for b, t in enumerate(tasks)
            ]
            if any(plans):
                gen, states, first = self._generate(batch, img_out, feats, pix, tasks, named, plans)
                gen = self._with_seg(gen, tasks, fake_p)
        masks = self._masks(gen, states, feats, pix, batch["images"], lbs, fake_p, first.seg_regions)
        use_head = self.det_score == "head" and first.head_p is not None
        scores = first.head_p if use_head else first.token_p
        res = []
        for b, r in enumerate(rows):
            answer = self._text(gen[b], marks=tasks[b] in MASK_TASKS)
            answer = self._consistent(answer, b, tasks[b], first)
            res.append(
                {
                    "question_id": r.question_id,
                    "answer": answer,
                    "score": scores[b] if tasks[b] == "det" else None,
                    "masks": masks[b] if tasks[b] in MASK_TASKS else None,
                    "error": None,
                }
            )
        return res

    def _consistent(self, answer: str, b: int, task: str, first: HeadGuide) -> str:
        """A guided answer whose words read otherwise than the opening the heads gave it (a small model can write
        "Yes. ... the face is authentic", or glue letters onto a forced class name) is cut to that opening."""
        if not self.guided:
            return answer
        if task == "det" and first.head_p is not None:
            return consistent_verdict(answer, first.head_p[b] >= 0.5)
        if first.verdicts[b] is not None:
            want = "yes" if first.verdicts[b] else "no"
            return answer if verdict_of(answer) == want else want.capitalize() + "."
        cls = first.classes[b] if task == "cls" else None
        if cls is not None and parse_cls(answer, self.model.heads.classes) != cls:
            return self.model.heads.class_openings.get(cls, cls) + "."
        return answer

    def _with_seg(self, gen: list[list[int]], tasks: list[str], fake_p: list[float] | None) -> list[list[int]]:
        """A mask task's answer on an image the head calls fake ends with a [SEG] when it wrote none."""
        if fake_p is None:
            return gen
        return [
            g + [self.seg_id] if t in MASK_TASKS and fake_p[b] >= 0.5 and self.seg_id not in g else g
            for b, (g, t) in enumerate(zip(gen, tasks))
        ]

    def _raw_masks(self, gen, states, feats, pix, images, lbs, seg_regions) -> list[list]:
        """Per row, (mask, its mark or None) of each [SEG] in order, uncut; a [SEG]'s query is the state that
        predicted it (with the embedding of the region its mark names, when the guide named one)."""
        where = [(b, j) for b, g in enumerate(gen) for j, t in enumerate(g) if t == self.seg_id]
        per_row: list[list] = [[] for _ in gen]
        if not where:
            return per_row
        seg_h = torch.stack([states[j][b] for b, j in where])
        rows = torch.tensor([b for b, _ in where], device=seg_h.device)
        marks = [seg_regions[b].get(j) for b, j in where]
        regions = torch.tensor([-1 if k is None else k.region for k in marks], device=seg_h.device)
        logits = self.model.masks(seg_h, rows, feats, pix, self.fam.image_size, images, regions).float().cpu().numpy()
        for k, (b, _) in enumerate(where):
            per_row[b].append((lbs[b].unbox_logits(logits[k]) > 0, marks[k]))
        return per_row

    def _masks(self, gen, states, feats, pix, images, lbs, fake_p, seg_regions) -> list[list]:
        """One RLE per [SEG] of each answer (empty on an image the head calls real); a mark's mask is kept
        inside the region it names (``region_masks: segmenter`` / ``mark_source: mask``)."""
        raw = self._raw_masks(gen, states, feats, pix, images, lbs, seg_regions)
        per_row: list[list] = [[] for _ in gen]
        for b, row in enumerate(raw):
            for m, mark in row:
                if fake_p is not None and fake_p[b] < 0.5:
                    m = np.zeros_like(m)
                elif (
                    mark is not None
                    and self.anchor_masks is not None
                    and (mark.region >= 0 or self.cut_level == "node")
                ):
                    m = self._in_region(m, b, mark.node)
                per_row[b].append(rle_utils.encode(m))
        return per_row

    def _mask_plan(self, b: int, raw: list) -> list[PlannedMark] | None:
        """Row ``b``'s marks from its first answer's artifact mask (mark_plan.py); None: the head's plan."""
        artifact = artifact_of([m for m, _ in raw])
        found = self.anchor_masks.regions(*self._rgbs[b]) if self._rgbs[b] is not None else None
        if artifact is None or found is None:
            return None
        return plan_from_mask(found, artifact, self._phrase_ids, self.vocabulary) or None

    def _phrase_ids(self, node: str) -> tuple[int, ...]:
        k = self.vocabulary.get(node)
        if k is not None:
            return tuple(self.region_phrase_ids[k])
        tree = self.anchor_masks.tree
        return tuple(phrase_ids(self.tok, region_phrase(node, tree[node].name)))

    def _in_region(self, m: np.ndarray, b: int, node: str) -> np.ndarray:
        key, rgb = self._rgbs[b]
        region = self.anchor_masks(key, rgb, node, self.cut_level)
        return m if region is None or region.shape != m.shape else m & region

    def _text(self, ids: list[int], marks: bool = False) -> str:
        """The answer as text; with ``marks`` (mask tasks) its grounded phrases stay ``<p>phrase</p> [SEG]``, the
        k-th ``[SEG]`` being the k-th mask (DESIGN.md, grounding)."""
        text = self.tok.decode(ids, skip_special_tokens=False)
        for t in (self.tok.pad_token, self.tok.eos_token):
            if t:
                text = text.replace(t, "")
        return tidy_generated(text) if marks else plain_generated(text)


def predict_rows(predictor: Predictor, rows: list[BenchQuestion], resolve, batch_size: int) -> list[dict]:
    """Predictions (submission rows with an ``error`` column) of the questions ``rows``, in their order. Rows
    are batched by task (then question length): a batch decodes until its longest answer ends, so yes/no
    questions batched with explanations would wait for them."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i].task, len(rows[i].question)))
    done: dict[str, dict] = {}
    for k in range(0, len(order), batch_size):
        for r in predictor([rows[i] for i in order[k : k + batch_size]], resolve):
            done[r["question_id"]] = r
    return [done[r.question_id] for r in rows]


def bench_resolver(bench_path: Path, image_root: Path | None = None):
    """Image of a bench row: its bytes, an absolute path, or a path relative to ``image_root`` (default: the
    image root of the build the bench belongs to, see :func:`fifa.pipelines.buildinfo.build_image_root`)."""
    root = Path(image_root) if image_root is not None else build_image_root(bench_path.parent)

    def resolve(image):
        if image is None:
            raise Skip("row has no image")
        if image.get("bytes"):
            return image["bytes"]
        if not image.get("path"):
            raise Skip("image has neither bytes nor path")
        p = Path(image["path"])
        return p if p.is_absolute() else root / p

    return resolve
