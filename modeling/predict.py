"""Prediction: bench rows -> submission rows (DESIGN columns), batched, resumable.

Per batch: greedy generation (left-padded prompts), then one teacher-forced forward over prompt +
answer for the heads: every generated ``[SEG]`` gives a mask (logits upsampled to the image,
threshold 0, COCO RLE), the detection head (or the yes/no token probabilities) gives ``score``.
Answers are returned as plain text (``<p>``, ``</p>`` and ``[SEG]`` removed).

With ``predict.verdicts: head`` (the default when the model has a detection head) the answer and the
score cannot disagree: a forward over the prompts gives the head's fake probability first; a ``det``
answer then starts with the verdict it implies ("Yes" / "No", the first answer token of the training
answers) and the model writes the rest; ``loc`` / ``age`` masks of an image the head calls real are
empty, and a ``loc`` answer on an image it calls fake gets its ``[SEG]`` when the text has none.
A det answer whose words still read as the other verdict is cut to the bare "Yes." / "No."
(:func:`consistent_verdict`). ``text`` leaves everything to the generated text.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import torch

from fifa.benchmarks.parsing import FAKE, REAL, parse_det
from fifa.concept_tree import rle as rle_utils
from fifa.pipelines.buildinfo import build_image_root

from .examples import (REGION_TASKS, Skip, chat_text, encode_prompt, image_inputs, load_image, region_query,
                       user_content)
from .family import Family
from .tokenizer import IMAGE, REGION, SEG

log = logging.getLogger(__name__)
MASK_TASKS = ("loc", "age")
_MARKUP = re.compile(r"\s*\[SEG\]|</?p>")


def plain_answer(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", _MARKUP.sub("", text))).strip()


def prompt_messages(row: dict, fam: Family, tok) -> list[dict]:
    history = [dict(role=m["role"], content=m["content"]) for m in (row.get("history") or [])]
    msgs = history + [{"role": "user", "content": row.get("question") or ""}]
    first = next(i for i, m in enumerate(msgs) if m["role"] == "user")
    msgs[first]["content"] = user_content(msgs[first]["content"], fam, tok, row.get("task") in REGION_TASKS)
    return msgs


def _yes_no_ids(tok) -> tuple[list[int], list[int]]:
    def firsts(words):
        out = set()
        for w in words:
            ids = tok(w, add_special_tokens=False)["input_ids"]
            if ids:
                out.add(ids[0])
        return sorted(out)
    return firsts(["yes", "Yes", " yes", " Yes"]), firsts(["no", "No", " no", " No"])


def consistent_verdict(answer: str, fake: bool) -> str:
    """``answer`` when it reads as the head's verdict (the scorer's own parser decides), else the bare verdict:
    a small model can follow a forced "Yes." with "the face is authentic", and an answer that contradicts its
    own score helps nobody."""
    return answer if parse_det(answer) == (FAKE if fake else REAL) else ("Yes." if fake else "No.")


def _verdict_tokens(tok) -> dict[bool, int]:
    """The first answer token of a "Yes." (fake) and a "No." (real) answer, as the chat template renders an
    answer after the generation prompt (a leading space, or none)."""
    user = [{"role": "user", "content": "Is this face forged?"}]
    prefix = chat_text(tok, user, add_generation_prompt=True)
    out = {}
    for fake, word in ((True, "Yes."), (False, "No.")):
        full = chat_text(tok, user + [{"role": "assistant", "content": word}], add_generation_prompt=False)
        if not full.startswith(prefix):
            raise ValueError("chat template is not prefix-consistent")
        out[fake] = tok(full[len(prefix):], add_special_tokens=False)["input_ids"][0]
    return out


class Predictor:
    def __init__(self, model, tok, fam: Family, device, max_new_tokens: int = 64, det_score: str = "head",
                 verdicts: str = "head"):
        self.model, self.tok, self.fam, self.device = model, tok, fam, device
        self.max_new_tokens, self.det_score = max_new_tokens, det_score
        self.eos = [tok.eos_token_id] + [tok.convert_tokens_to_ids(t) for t in ("<|end|>", "<|im_end|>")
                                         if t in tok.get_vocab()]
        banned = [IMAGE, REGION, "<|image_pad|>", "<|vision_start|>", "<|vision_end|>"]
        self.bad = [[tok.convert_tokens_to_ids(t)] for t in banned if t in tok.get_vocab()]
        self.yes, self.no = _yes_no_ids(tok)
        self.guided = verdicts == "head" and model.heads.verdict.det is not None
        self.verdict_token = _verdict_tokens(tok) if self.guided else {}
        self.seg_id = tok.convert_tokens_to_ids(SEG)

    def _inputs(self, rows: list[dict], resolve):
        prompts, chws, pix, regions, lbs, ok, errors = [], [], [], [], [], [], {}
        for r in rows:
            try:
                rgb = load_image(resolve(r.get("image")))
                lb, chw, px = image_inputs(rgb, self.fam)
                rq = region_query(r, lb, self.fam.grid) if r.get("task") in REGION_TASKS else None
                prompts.append(encode_prompt(self.tok, prompt_messages(r, self.fam, self.tok)))
            except Skip as e:
                errors[r["question_id"]] = e.reason
                continue
            chws.append(chw), pix.append(px), lbs.append(lb), ok.append(r)
            if rq is not None:
                regions.append(rq)
        return prompts, chws, pix, regions, lbs, ok, errors

    def _batch(self, seqs: list[list[int]], chws, pix, regions, left: bool) -> dict:
        L = max(len(s) for s in seqs)
        pad = self.tok.pad_token_id
        ids = torch.full((len(seqs), L), pad, dtype=torch.long)
        att = torch.zeros((len(seqs), L), dtype=torch.long)
        for b, s in enumerate(seqs):
            sl = slice(L - len(s), L) if left else slice(0, len(s))
            ids[b, sl] = torch.tensor(s)
            att[b, sl] = 1
        batch = {"input_ids": ids, "attention_mask": att, "images": torch.from_numpy(np.stack(chws)),
                 **self.fam.batch_pixels(pix)}
        if regions:
            batch["region_weights"] = torch.from_numpy(np.stack([r[0] for r in regions]))
            batch["region_boxes"] = torch.from_numpy(np.stack([r[1] for r in regions]))
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    @torch.no_grad()
    def generate(self, batch: dict) -> list[list[int]]:
        m = self.model
        img_out, feats, _ = m.image_features(batch)
        m._pending_regions = m.region_embeddings(batch, feats)
        try:
            kw = {"image_grid_thw": batch["image_grid_thw"]} if "image_grid_thw" in batch else {}
            out = m.lm.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kw,
                                mm_encoder_outputs={"image": img_out},
                                **m.fam.text_kwargs(batch["input_ids"]), max_new_tokens=self.max_new_tokens,
                                do_sample=False, eos_token_id=self.eos, pad_token_id=self.tok.pad_token_id,
                                bad_words_ids=self.bad or None)
        finally:
            m._pending_regions = None
        gen = out[:, batch["input_ids"].shape[1]:].tolist()
        res = []
        for g in gen:
            cut = next((i for i, t in enumerate(g) if t in self.eos), len(g))
            res.append([t for t in g[:cut] if t != self.tok.pad_token_id])
        return res

    @torch.no_grad()
    def __call__(self, rows: list[dict], resolve) -> list[dict]:
        prompts, chws, pix, regions, lbs, ok, errors = self._inputs(rows, resolve)
        out = [{"question_id": q, "answer": None, "score": None, "masks": None, "error": e} for q, e in errors.items()]
        if not ok:
            return out
        fake_p = self._head_fake_prob(prompts, chws, pix, regions) if self.guided else None
        gen = self._answers(prompts, chws, pix, regions, ok, fake_p)
        full = [p + g for p, g in zip(prompts, gen)]
        batch = self._batch(full, chws, pix, regions, left=False)
        h, feats, pix_feats = self.model.hidden(batch)
        masks = self._masks(batch, h, feats, pix_feats, prompts, full, lbs, fake_p)
        ends = torch.tensor([len(p) - 1 for p in prompts], device=h.device)
        # the head's score at the prompt's end is the one the guided answers followed: use it, not a second read
        scores = fake_p if fake_p is not None and self.det_score == "head" else self._scores(h, ends, feats, pix_feats)
        for b, r in enumerate(ok):
            task = r.get("task")
            answer = self._text(gen[b])
            if fake_p is not None and task == "det":
                answer = consistent_verdict(answer, fake_p[b] >= 0.5)
            out.append({"question_id": r["question_id"], "answer": answer,
                        "score": scores[b] if task == "det" and scores is not None else None,
                        "masks": masks[b] if task in MASK_TASKS else None, "error": None})
        return out

    def _answers(self, prompts, chws, pix, regions, rows, fake_p) -> list[list[int]]:
        """Generated answer ids; with the head's probabilities, det answers start with its verdict and a loc
        answer on an image it calls fake ends with a [SEG] when the model wrote none."""
        forced = [[self.verdict_token[fake_p[b] >= 0.5]] if fake_p is not None and r.get("task") == "det" else []
                  for b, r in enumerate(rows)]
        gen = self.generate(self._batch([p + f for p, f in zip(prompts, forced)], chws, pix, regions, left=True))
        gen = [f + g for f, g in zip(forced, gen)]
        if fake_p is None:
            return gen
        return [g + [self.seg_id] if r.get("task") == "loc" and fake_p[b] >= 0.5 and self.seg_id not in g else g
                for b, (g, r) in enumerate(zip(gen, rows))]

    def _masks(self, batch, h, feats, pix_feats, prompts, full, lbs, fake_p) -> list[list]:
        """One RLE per [SEG] of each answer (empty on an image the head calls real)."""
        answer = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
        for b, p in enumerate(prompts):
            answer[b, len(p):len(full[b])] = True
        seg_h, seg_rows = self.model.seg_queries(batch["input_ids"], h, answer)
        logits = (self.model.masks(seg_h, seg_rows, feats, pix_feats, self.fam.image_size).float().cpu().numpy()
                  if len(seg_h) else np.zeros((0, 1, 1), np.float32))
        per_row: list[list] = [[] for _ in prompts]
        for k, b in enumerate(seg_rows.tolist()):
            m = lbs[b].unbox_logits(logits[k]) > 0
            if fake_p is not None and fake_p[b] < 0.5:
                m = np.zeros_like(m)
            per_row[b].append(rle_utils.encode(m))
        return per_row

    def _text(self, ids: list[int]) -> str:
        text = self.tok.decode(ids, skip_special_tokens=False)
        for t in (self.tok.pad_token, self.tok.eos_token):
            if t:
                text = text.replace(t, "")
        return plain_answer(text)

    def _head_fake_prob(self, prompts, chws, pix, regions) -> list[float]:
        """The detection head's fake probability at the end of each prompt (before any answer token)."""
        h, feats, px = self.model.hidden(self._batch(prompts, chws, pix, regions, left=False))
        ends = torch.tensor([len(p) - 1 for p in prompts], device=h.device)
        return self._head_probs(h, ends, feats, px)

    def _head_probs(self, h, ends, feats, pix) -> list[float]:
        det, _ = self.model.verdicts(h, ends, feats, pix)
        return det.float().sigmoid().cpu().tolist()

    def _scores(self, h, ends, feats, pix) -> list[float] | None:
        if self.det_score == "tokens" or self.model.heads.verdict.det is None:
            at = h[torch.arange(h.shape[0], device=h.device), ends]
            p = self.model.inner.lm_head(at).float().softmax(-1)
            y, n = p[:, self.yes].sum(-1), p[:, self.no].sum(-1)
            return (y / (y + n).clamp_min(1e-12)).cpu().tolist()
        return self._head_probs(h, ends, feats, pix)


def predict_rows(predictor: Predictor, rows: list[dict], resolve, batch_size: int) -> list[dict]:
    out = []
    for i in range(0, len(rows), batch_size):
        out.extend(predictor(rows[i:i + batch_size], resolve))
    return out


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
