"""Text metrics equal to pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr.

How the numbers are made (one reference per question, the bench's ``answer``):

* Tokenization: pycocoevalcap's PTB tokenizer (Stanford CoreNLP 3.4.1 jar shipped
  with pycocoevalcap, ``-preserveLines -lowerCase``, then its punctuation list
  removed).  All texts of all tasks, references and predictions, go through ONE
  Java call (the JVM start is the expensive part); lines are independent, so this
  equals tokenizing each side separately as pycocoevalcap's own example does.
* BLEU is pycocoevalcap's ``Bleu(4)`` ("closest" reference length); ROUGE-L and
  CIDEr-D are :mod:`fifa.benchmarks.fastcoco`, the same arithmetic as
  pycocoevalcap's ``Rouge`` and ``Cider`` done faster (tested equal).  They are
  called per task, so CIDEr's document frequencies (IDF) come from that task's
  references only.
* METEOR: the ``meteor-1.5.jar`` of pycocoevalcap with the same command line and
  protocol as its ``Meteor`` class (``SCORE`` lines, then one ``EVAL`` line per
  task), written in bulk instead of one round trip per line, driven by a helper
  process (:mod:`fifa.benchmarks.meteor_worker`) started before the other
  metrics so the JVM start overlaps them.  One JVM serves every task.
* Without Java (``shutil.which("java")`` is None): a fallback tokenizer
  (lower-case, words and single punctuation characters split apart with
  ``\\w+|[^\\w\\s]``, tokens in pycocoevalcap's ``PUNCTUATIONS`` list and brackets / double quotes
  (which PTB turns into -LRB-, ``, ... and so removes) dropped) and
  no METEOR; a warning says so.  These numbers are then NOT comparable to
  pycocoevalcap's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field

import numpy as np
import pycocoevalcap.meteor.meteor as _meteor_mod
import pycocoevalcap.tokenizer.ptbtokenizer as _ptb_mod
from pycocoevalcap.bleu.bleu import Bleu

from fifa.core.tasks import TEXT_METRICS

from .fastcoco import cider_d, rouge_l

PUNCTUATIONS = set(_ptb_mod.PUNCTUATIONS)


def java_available() -> bool:
    return shutil.which("java") is not None


# ----------------------------------------------------------------- tokenizing
#: Every character Java's line reading (so the PTB tokenizer) or Python's splitlines treats as a line
#: break. One inside an answer would split it in two and shift every later answer onto the wrong
#: reference, so each is folded into a space first (DESIGN: "folds every line or paragraph separator").
LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def fold_lines(text: str) -> str:
    """``text`` on one line: every line or paragraph separator becomes a space."""
    return LINE_BREAKS.sub(" ", text)


def _ptb_java(sentences: list[str]) -> list[str]:
    """PTB tokens of each sentence, one output line per input, checked (never shifted)."""
    jar_dir = os.path.dirname(os.path.abspath(_ptb_mod.__file__))
    jar = os.path.join(jar_dir, _ptb_mod.STANFORD_CORENLP_3_4_1_JAR)
    folded = [fold_lines(s) for s in sentences]
    keep = [i for i, s in enumerate(folded) if s.strip()]  # Java drops trailing empty lines: skip empties
    out = [""] * len(sentences)
    if not keep:
        return out
    with tempfile.TemporaryDirectory(prefix="fifa-ptb-") as d:
        path = os.path.join(d, "sentences.txt")
        with open(path, "wb") as f:
            f.write("\n".join(folded[i] for i in keep).encode())
        cmd = ["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    lines = res.stdout.decode().split("\n")
    if lines and lines[-1] == "" and len(lines) == len(keep) + 1:
        lines.pop()
    if len(lines) != len(keep):
        raise RuntimeError(
            f"PTB tokenizer returned {len(lines)} lines for {len(keep)} sentences: "
            "scores would be misaligned, refusing to score"
        )
    for i, line in zip(keep, lines):
        out[i] = " ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS)
    return out


_FALLBACK = re.compile(r"\w+|[^\w\s]")
#: pycocoevalcap's punctuation list plus the characters PTB turns into -LRB- / -RRB- / -LCB- / -RCB- / `` / ''
FALLBACK_DROP = PUNCTUATIONS | set('(){}"')


def fallback_tokenize(sentence: str) -> str:
    return " ".join(w for w in _FALLBACK.findall(fold_lines(sentence).lower()) if w not in FALLBACK_DROP)


def tokenize(sentences: list[str], use_java: bool) -> list[str]:
    if use_java:
        return _ptb_java(sentences)
    return [fallback_tokenize(s) for s in sentences]


# --------------------------------------------------------------------- METEOR
class MeteorBatch:
    """pycocoevalcap's METEOR jar and protocol, one JVM for all tasks, bulk I/O."""

    def __init__(self):
        jar_dir = os.path.dirname(os.path.abspath(_meteor_mod.__file__))
        cmd = ["java", "-jar", "-Xmx2G", _meteor_mod.METEOR_JAR, "-", "-", "-stdio", "-l", "en", "-norm"]
        self.p = subprocess.Popen(
            cmd, cwd=jar_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )

    def _readlines(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("METEOR process ended unexpectedly")
            out.append(line.decode().strip())
        return out

    def score(self, refs: list[str], hyps: list[str]) -> tuple[float, list[float]]:
        lines = []
        for ref, hyp in zip(refs, hyps):
            hyp = hyp.replace("|||", "").replace("  ", " ")
            lines.append(" ||| ".join(("SCORE", ref, hyp)) + "\n")
        blob = "".join(lines).encode()
        err: list[BaseException] = []

        def write():
            try:
                self.p.stdin.write(blob)
                self.p.stdin.flush()
            except BaseException as e:  # noqa: BLE001
                err.append(e)

        t = threading.Thread(target=write, daemon=True)
        t.start()
        stats = self._readlines(len(lines))
        t.join()
        if err:
            raise RuntimeError(f"METEOR write failed: {err[0]}")
        eval_line = "EVAL" + "".join(f" ||| {s}" for s in stats) + "\n"
        self.p.stdin.write(eval_line.encode())
        self.p.stdin.flush()
        per = [float(x) for x in self._readlines(len(lines))]
        total = float(self._readlines(1)[0])
        return total, per

    def close(self):
        with contextlib.suppress(OSError):
            self.p.stdin.close()
        self.p.kill()
        self.p.wait()


# -------------------------------------------------------------------- scoring
class MeteorProcess:
    """The METEOR helper process; start it early, :meth:`submit` the texts, :meth:`result` at the end."""

    def __init__(self):
        self.p = subprocess.Popen(
            [sys.executable, "-m", "fifa.benchmarks.meteor_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._thread: threading.Thread | None = None
        self._out: tuple[bytes, bytes] | None = None

    def submit(self, tasks: dict[str, tuple[list[str], list[str]]]) -> None:
        payload = json.dumps(tasks).encode()

        def run():
            self._out = self.p.communicate(payload)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self) -> dict[str, tuple[float, list[float]]]:
        if self._thread is None:
            self.submit({})
        self._thread.join()
        out, err = self._out or (b"", b"")
        if self.p.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"exit status {self.p.returncode}: {tail[0]}")
        return {t: (float(v[0]), list(v[1])) for t, v in json.loads(out or b"{}").items()}

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@dataclass
class TextScores:
    summary: dict
    per_sample: dict = field(default_factory=dict)  # metric -> np.ndarray


def text_scores(
    tasks: dict[str, tuple[list[str], list[str]]],
    use_java: bool | None = None,
    meteor: MeteorProcess | None = None,
    with_meteor: bool = True,
) -> tuple[dict[str, TextScores], list[str]]:
    """Scores per task from ``{task: (references, predictions)}``; also returns warnings.

    ``meteor``: a :class:`MeteorProcess` started earlier (else one is started here when Java is used);
    ``with_meteor=False`` skips METEOR, with a warning.
    """
    warnings: list[str] = []
    if use_java is None:
        use_java = java_available()
    meteor = _meteor_choice(use_java, meteor, with_meteor, warnings)
    tasks = {t: v for t, v in tasks.items() if len(v[0])}
    sentences: list[str] = []
    spans = {}
    for t, (refs, hyps) in tasks.items():
        a = len(sentences)
        sentences.extend(refs)
        sentences.extend(hyps)
        spans[t] = (a, len(refs))
    if use_java and with_meteor and tasks and meteor is None:
        meteor = MeteorProcess()
    try:
        toks = tokenize(sentences, use_java) if sentences else []
        tok = {t: (toks[a : a + n], toks[a + n : a + 2 * n]) for t, (a, n) in spans.items()}
        if meteor is not None:
            meteor.submit(tok)
        out = {t: _coco_scores(r, h) for t, (r, h) in tok.items()}
        if meteor is not None:
            _add_meteor(out, meteor, warnings)
    finally:
        if meteor is not None:
            meteor.close()
    for t in out:  # fixed key order
        out[t].summary = {k: out[t].summary[k] for k in TEXT_METRICS if k in out[t].summary}
    return out, warnings


def _meteor_choice(
    use_java: bool, meteor: MeteorProcess | None, with_meteor: bool, warnings: list[str]
) -> MeteorProcess | None:
    """The METEOR process to use (closed and None when METEOR is skipped, with a warning why)."""
    if not use_java:
        why = "java disabled (use_java=False)" if java_available() else "java not found"
        warnings.append(
            f"meteor omitted: {why}; texts tokenized with the fallback tokenizer "
            "(not PTB), so text metrics are not comparable to pycocoevalcap"
        )
        if meteor is not None:
            meteor.close()
            meteor = None
    elif not with_meteor:
        warnings.append("meteor omitted: disabled (--no-meteor)")
    if not with_meteor and meteor is not None:
        meteor.close()
        meteor = None
    return meteor


def _coco_scores(r: list[str], h: list[str]) -> TextScores:
    """BLEU-1..4, ROUGE-L and CIDEr-D of tokenized references ``r`` and predictions ``h``."""
    gts = {k: [x] for k, x in enumerate(r)}
    res = {k: [x] for k, x in enumerate(h)}
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_per = rouge_l(r, h)
    cider, cider_per = cider_d(r, h)
    summ = {f"bleu_{i + 1}": float(bleu[i]) for i in range(4)}
    summ["rouge_l"] = rouge
    summ["cider"] = cider
    return TextScores(summ, {"rouge_l": rouge_per, "cider": cider_per, "bleu_4": np.asarray(bleu_per[3], dtype=float)})


def _add_meteor(out: dict[str, TextScores], meteor: MeteorProcess, warnings: list[str]) -> None:
    """METEOR of every task from the process (none of it, with a warning, when the process failed)."""
    try:
        for t, (total, per) in meteor.result().items():
            out[t].summary["meteor"] = total
            out[t].per_sample["meteor"] = np.asarray(per, dtype=float)
    except Exception as e:  # noqa: BLE001
        for t in out:
            out[t].summary.pop("meteor", None)
            out[t].per_sample.pop("meteor", None)
        warnings.append(f"meteor omitted: the METEOR process failed ({e})")
