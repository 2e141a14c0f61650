"""Head guidance of generation: the heads read the prompt's last state at the first decoding step and set how an
answer opens (``det`` / ``rq_*`` verdicts, the ``cls`` class) and which region each ``age`` mark names.

See :class:`HeadGuide`; ``modeling/predict.py`` runs it inside ``generate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import LogitsProcessor

from .examples import QUERY_TASKS, TURN_ENDS, encode_chat
from .family import Family
from .tokenizer import PHRASE_CLOSE, PHRASE_OPEN

if TYPE_CHECKING:
    from .predict import Predictor, StepStates


def yes_no_ids(tok) -> tuple[list[int], list[int]]:
    def firsts(words):
        out = set()
        for w in words:
            ids = tok(w, add_special_tokens=False)["input_ids"]
            if ids:
                out.add(ids[0])
        return sorted(out)
    return firsts(["yes", "Yes", " yes", " Yes"]), firsts(["no", "No", " no", " No"])


def answer_opening_ids(tok, fam: Family, text: str) -> list[int]:
    """The tokens an answer that opens with ``text`` starts with, as training tokenises answers (the end and
    turn-end tokens the template adds after a bare ``text`` left out)."""
    msgs = [{"role": "user", "content": "Which method produced this face?"}, {"role": "assistant", "content": text}]
    enc = encode_chat(tok, fam, msgs, 1 << 20, -1)
    ids = enc.input_ids[enc.prompt_end + 1:]
    ends = set(tok.all_special_ids) | {tok.convert_tokens_to_ids(t) for t in TURN_ENDS if t in tok.get_vocab()}
    while ids and (ids[-1] in ends or not tok.decode(ids[-1:]).strip()):
        ids = ids[:-1]
    return ids


def phrase_ids(tok, phrase: str) -> list[int]:
    """The tokens of ``phrase`` inside a mark, as ``<p>phrase</p>`` is tokenised in a training answer."""
    ids = tok(f"{PHRASE_OPEN}{phrase}{PHRASE_CLOSE}", add_special_tokens=False)["input_ids"]
    start, end = tok.convert_tokens_to_ids(PHRASE_OPEN), tok.convert_tokens_to_ids(PHRASE_CLOSE)
    return ids[ids.index(start) + 1: ids.index(end)]


def verdict_tokens(tok, fam: Family) -> dict[bool, int]:
    """The first answer token of a "Yes." (fake) and a "No." (real) answer, as training tokenises answers."""
    out = {}
    for fake, word in ((True, "Yes."), (False, "No.")):
        msgs = [{"role": "user", "content": "Is this face forged?"}, {"role": "assistant", "content": word}]
        enc = encode_chat(tok, fam, msgs, 1 << 20, -1)
        out[fake] = enc.input_ids[enc.prompt_end + 1]
    return out


class HeadGuide(LogitsProcessor):
    """Head guidance. At the first decoding step (the prompt's last state is known) the heads read that state:
    detection, classification, region-query verdicts (and the yes/no tokens' probabilities). When guided, each
    row gets an opening: a ``det`` answer starts with the token of the detection head's verdict, an ``rq_*``
    answer with a yes / no token of the query head's verdict, a ``cls`` answer with the opening words of the
    classification head's class; the model writes the rest (it picks among the allowed tokens of each step).
    In an ``age`` answer, each mark the model opens (``<p>``) names the region the mark head ranks highest among
    those not named yet, closed with ``</p> [SEG]``; no further mark opens once no region is left that the head
    finds likely (p >= 0.5), nor any on an image the detection head calls real."""

    def __init__(self, predictor: "Predictor", states: StepStates, feats, pix, areas, tasks: list[str]):
        self.p, self.states, self.feats, self.pix, self.areas, self.tasks = predictor, states, feats, pix, areas, tasks
        self.head_p: list[float] | None = None
        self.token_p: list[float] | None = None
        self.query_p: list[float | None] = [None] * len(tasks)
        self.classes: list[str | None] = [None] * len(tasks)
        self.openings: list[list[list[int]]] = [[] for _ in tasks]  # per row, the allowed tokens of each step
        self.mark_p: list[list[float] | None] = [None] * len(tasks)  # age rows: the mark head's probabilities
        self.pending: list[list[int]] = [[] for _ in tasks]  # tokens still to write of an opened mark
        self.named: list[set[int]] = [set() for _ in tasks]
        self.step = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step == 0:
            self._read(scores)
        k, self.step = self.step, self.step + 1
        for b, opening in enumerate(self.openings):
            if k < len(opening):
                self._allow(scores, b, opening[k])
            elif self.mark_p[b] is not None:
                self._mark(scores, b, int(input_ids[b, -1]))
        return scores

    @staticmethod
    def _allow(scores: torch.FloatTensor, b: int, tokens: list[int]) -> None:
        allowed = torch.tensor(tokens, device=scores.device)
        forced = torch.full_like(scores[b], float("-inf"))
        forced[allowed] = scores[b, allowed]
        scores[b] = forced

    def _mark(self, scores: torch.FloatTensor, b: int, last: int) -> None:
        p, probs = self.p, self.mark_p[b]
        left = [k for k in np.argsort(probs)[::-1].tolist() if k not in self.named[b]]
        if last == p.phrase_open and not self.pending[b] and left:
            self.named[b].add(left[0])
            self.pending[b] = [*p.region_phrase_ids[left[0]], p.phrase_close, p.seg_id]
            left = left[1:]
        if self.pending[b]:
            self._allow(scores, b, [self.pending[b].pop(0)])
        elif not left or probs[left[0]] < 0.5 and self.named[b]:
            scores[b, p.phrase_open] = float("-inf")

    def _read(self, scores: torch.FloatTensor) -> None:
        p, h0 = self.p, self.states.states[0]
        probs = scores.float().softmax(-1)
        y, n = probs[:, p.yes].sum(-1), probs[:, p.no].sum(-1)
        self.token_p = (y / (y + n).clamp_min(1e-12)).cpu().tolist()
        det, cls = p.model.heads.verdict(h0, self.feats, self.pix)
        if det is not None:
            self.head_p = det.float().sigmoid().cpu().tolist()
        rq = [b for b, t in enumerate(self.tasks) if t in QUERY_TASKS]
        if rq and p.model.heads.query is not None:
            logit = p.model.query_verdicts(h0[rq], self.feats[rq], None if self.pix is None else self.pix[rq],
                                           self.areas[rq])
            for b, q in zip(rq, logit.float().sigmoid().cpu().tolist()):
                self.query_p[b] = q
        marks = [b for b, t in enumerate(self.tasks) if t == "age"]
        if marks and p.guided and p.model.heads.marks is not None:
            mp = p.model.heads.marks(self.feats[marks], None if self.pix is None else self.pix[marks]).float().sigmoid()
            for b, row in zip(marks, mp.cpu().tolist()):
                fake = self.head_p is None or self.head_p[b] >= 0.5
                self.mark_p[b] = row if fake else [0.0] * len(row)  # no region of a real face is marked
        if cls is not None:
            self.classes = [p.pick_class(c, None if self.head_p is None else self.head_p[b])
                            for b, c in enumerate(cls.float().softmax(-1).cpu().tolist())]
        if p.guided:
            self.openings = [self._opening(b, t) for b, t in enumerate(self.tasks)]

    def _opening(self, b: int, task: str) -> list[list[int]]:
        p = self.p
        fake = self.head_p is not None and self.head_p[b] >= 0.5
        if task == "det" and self.head_p is not None:
            return [[p.verdict_token[fake]]]
        if task in QUERY_TASKS and self.query_p[b] is not None:
            yes = self.query_p[b] >= 0.5 and (self.head_p is None or fake)  # no manipulated region on a real face
            return [p.yes_openings if yes else p.no_openings]
        if task == "cls" and self.classes[b] is not None:
            return [[t] for t in p.class_opening_ids.get(self.classes[b], [])]
        return []
