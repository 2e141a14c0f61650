"""Head guidance of generation: the heads read the prompt's last state at the first decoding step and set how an
answer opens (``det`` / ``rq_*`` verdicts, the ``cls`` class) and which region each ``age`` mark names.

See :class:`HeadGuide`; ``modeling/predict.py`` runs it inside ``generate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from transformers import LogitsProcessor

from fifa.core.tasks import REGION_QUERY_TASKS

from .examples import TURN_ENDS, encode_chat
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
    ids = enc.input_ids[enc.prompt_end + 1 :]
    ends = set(tok.all_special_ids) | {tok.convert_tokens_to_ids(t) for t in TURN_ENDS if t in tok.get_vocab()}
    while ids and (ids[-1] in ends or not tok.decode(ids[-1:]).strip()):
        ids = ids[:-1]
    return ids


def phrase_ids(tok, phrase: str) -> list[int]:
    """The tokens of ``phrase`` inside a mark, as ``<p>phrase</p>`` is tokenised in a training answer."""
    ids = tok(f"{PHRASE_OPEN}{phrase}{PHRASE_CLOSE}", add_special_tokens=False)["input_ids"]
    start, end = tok.convert_tokens_to_ids(PHRASE_OPEN), tok.convert_tokens_to_ids(PHRASE_CLOSE)
    return ids[ids.index(start) + 1 : ids.index(end)]


@dataclass(frozen=True)
class PlannedMark:
    """A mark an ``age`` answer may open: its tree node, the phrase tokens that name it, and its index in the
    mark head's vocabulary (-1: not in it; its [SEG] query then gets no region embedding)."""

    node: str
    phrase: tuple[int, ...]
    region: int = -1


def named_region(question: str | None, regions: list[dict]) -> int | None:
    """The index of the vocabulary region a region question names ("Is the right temple manipulated?"), by its
    phrase or its id in words, the longest match winning; None when it names none of them."""
    text = f" {re.sub(r'[^a-z0-9]+', ' ', (question or '').lower())} "
    best, size = None, 0
    for k, r in enumerate(regions):
        for name in (r["phrase"], r["id"].replace("_", " ")):
            words = re.sub(r"^(the|a|an) ", "", re.sub(r"[^a-z0-9]+", " ", name.lower()).strip())
            if words and f" {words} " in text and len(words) > size:
                best, size = k, len(words)
    return best


def count_tokens(tok) -> dict[int, tuple[int, dict[int, int]]]:
    """token -> (n, n -> token of the same form) for the digits 1-9 that are one token, alone and after a space
    ("in 3 regions": byte-level BPE makes " 3" a token of its own)."""
    out: dict[int, tuple[int, dict[int, int]]] = {}
    for form in ("{}", " {}"):
        ids = {n: tok(form.format(n), add_special_tokens=False)["input_ids"] for n in range(1, 10)}
        same = {n: v[-1] for n, v in ids.items() if len(v) == 1 or (len(v) == 2 and not tok.decode(v[:1]).strip())}
        for n, t in same.items():
            out.setdefault(t, (n, same))
    return out


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
    answer with a yes / no token of the query head's verdict (averaged with the mark head's probability of the
    region when the question names one of its vocabulary), a ``cls`` answer with the opening words of the
    classification head's class; the model writes the rest (it picks among the allowed tokens of each step).
    In an ``age`` answer, the first number the model writes before any mark (the answer's "in N regions") is the
    count of its plan: the mark head's regions ranked by probability, of which the likely ones (p >= 0.5, at
    least one) are counted, or ``plans[b]`` when given (the regions the artifact mask covers,
    ``predict.mark_source: mask``), all counted. Each mark the model opens (``<p>``) names the plan's next
    region, closed with ``</p> [SEG]``; no further mark opens once the count is reached, nor any on an image the
    detection head calls real (its plan counts one region of probability 0, as a mark the model opens anyway)."""

    def __init__(
        self,
        predictor: Predictor,
        states: StepStates,
        feats,
        pix,
        areas,
        tasks: list[str],
        named: list[int | None] | None = None,
        plans: list[list[PlannedMark] | None] | None = None,
    ):
        self.p, self.states, self.feats, self.pix, self.areas, self.tasks = predictor, states, feats, pix, areas, tasks
        #: per row, the mark-head region an ``rq_name`` question names (its verdict is the mark head's)
        self.named_region = named or [None] * len(tasks)
        self.head_p: list[float] | None = None
        self.token_p: list[float] | None = None
        self.query_p: list[float | None] = [None] * len(tasks)
        self.classes: list[str | None] = [None] * len(tasks)
        self.openings: list[list[list[int]]] = [[] for _ in tasks]  # per row, the allowed tokens of each step
        self.mark_p: list[list[float] | None] = [None] * len(tasks)  # age rows: the mark head's probabilities
        self.given = plans or [None] * len(tasks)
        self.plans: list[list[PlannedMark]] = [[] for _ in tasks]  # age rows: the marks they may open, in order
        self.counts = [0] * len(tasks)  # how many of its plan's marks an age answer announces and opens
        self.pending: list[list[int]] = [[] for _ in tasks]  # tokens still to write of an opened mark
        self.n_named = [0] * len(tasks)
        self.announced = [False] * len(tasks)  # the region count of an age answer was written
        self.verdicts: list[bool | None] = [None] * len(tasks)  # rq rows: the yes / no the answer opens with
        self.opened: list[PlannedMark | None] = [None] * len(tasks)  # the mark being written
        self.seg_regions: list[dict[int, PlannedMark]] = [{} for _ in tasks]  # step of a mark's [SEG] -> mark
        self.step = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.step == 0:
            self._read(scores)
        k, self.step = self.step, self.step + 1
        for b, opening in enumerate(self.openings):
            if k < len(opening):
                self._allow(scores, b, opening[k])
            elif self.mark_p[b] is not None:
                self._mark(scores, b, int(input_ids[b, -1]), k)
        return scores

    @staticmethod
    def _allow(scores: torch.FloatTensor, b: int, tokens: list[int]) -> None:
        allowed = torch.tensor(tokens, device=scores.device)
        forced = torch.full_like(scores[b], float("-inf"))
        forced[allowed] = scores[b, allowed]
        scores[b] = forced

    def _mark(self, scores: torch.FloatTensor, b: int, last: int, step: int) -> None:
        p, plan = self.p, self.plans[b]
        top = int(scores[b].argmax())
        if not self.announced[b] and not self.n_named[b] and top in p.count_of:
            # the answer announces how many regions it marks ("... in 3 regions."): its plan's count
            self.announced[b] = True
            same = p.count_of[top][1]
            self._allow(scores, b, [same.get(min(self.counts[b], max(same)), top)])
            return
        if last == p.phrase_open and not self.pending[b] and self.n_named[b] < len(plan):
            mark = self.opened[b] = plan[self.n_named[b]]
            self.n_named[b] += 1
            self.pending[b] = [*mark.phrase, p.phrase_close, p.seg_id]
        if self.pending[b]:
            token = self.pending[b].pop(0)
            if token == p.seg_id:  # this mark's [SEG], generated at this step, is the named region's query
                self.seg_regions[b][step] = cast("PlannedMark", self.opened[b])
            self._allow(scores, b, [token])
        elif self.n_named[b] >= min(self.counts[b], len(plan)):
            scores[b, p.phrase_open] = float("-inf")

    def set_marks(self, b: int, probs: list[float]) -> None:
        """Row ``b``'s mark head probabilities and its marks: those given, else the head's regions by
        probability (its likely ones counted)."""
        self.mark_p[b] = probs
        given = self.given[b]
        if given:
            self.plans[b], self.counts[b] = list(given), len(given)
            return
        p = self.p
        order = np.argsort(probs)[::-1].tolist()
        self.plans[b] = [PlannedMark(p.model.heads.regions[k]["id"], tuple(p.region_phrase_ids[k]), k) for k in order]
        self.counts[b] = max(1, sum(q >= 0.5 for q in probs))

    def _read(self, scores: torch.FloatTensor) -> None:
        p, h0 = self.p, self.states.states[0]
        probs = scores.float().softmax(-1)
        y, n = probs[:, p.yes].sum(-1), probs[:, p.no].sum(-1)
        self.token_p = (y / (y + n).clamp_min(1e-12)).cpu().tolist()
        det, cls = p.model.heads.verdict(h0, self.feats, self.pix)
        if det is not None:
            self.head_p = det.float().sigmoid().cpu().tolist()
        rq = [b for b, t in enumerate(self.tasks) if t in REGION_QUERY_TASKS]
        if rq and p.model.heads.query is not None:
            logit = p.model.query_verdicts(
                h0[rq], self.feats[rq], None if self.pix is None else self.pix[rq], self.areas[rq]
            )
            for b, q in zip(rq, logit.float().sigmoid().cpu().tolist()):
                self.query_p[b] = q
        marks = [b for b, t in enumerate(self.tasks) if t == "age" or self.named_region[b] is not None]
        if marks and p.guided and p.model.heads.marks is not None:
            mp = p.model.heads.marks(self.feats[marks], None if self.pix is None else self.pix[marks]).float().sigmoid()
            for b, row in zip(marks, mp.cpu().tolist()):
                fake = self.head_p is None or self.head_p[b] >= 0.5
                self.set_marks(b, row if fake else [0.0] * len(row))  # no region of a real face is marked
        if cls is not None:
            self.classes = [
                p.pick_class(c, None if self.head_p is None else self.head_p[b])
                for b, c in enumerate(cls.float().softmax(-1).cpu().tolist())
            ]
        if p.guided:
            self.openings = [self._opening(b, t) for b, t in enumerate(self.tasks)]

    def _opening(self, b: int, task: str) -> list[list[int]]:
        p = self.p
        fake = self.head_p is not None and self.head_p[b] >= 0.5
        if task == "det" and self.head_p is not None:
            return [[p.verdict_token[fake]]]
        k = self.named_region[b]
        reads = [
            x
            for x in (self.query_p[b], self.mark_p[b][k] if k is not None and self.mark_p[b] else None)
            if x is not None
        ]
        if task in REGION_QUERY_TASKS and reads:
            likely = sum(reads) / len(reads)  # the two heads' mean: better than either alone (docs/train.md)
            yes = likely >= 0.5 and (self.head_p is None or fake)  # no manipulated region on a real face
            self.verdicts[b] = yes
            return [[t] for t in (p.yes_opening if yes else p.no_opening)]
        if task == "cls" and self.classes[b] is not None:
            return [[t] for t in p.class_opening_ids.get(self.classes[b], [])]
        return []
