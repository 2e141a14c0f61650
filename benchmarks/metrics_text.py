"""Text metrics equal to pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr.

How the numbers are made (one reference per question, the bench's ``answer``):

* Tokenization: pycocoevalcap's PTB tokenizer (Stanford CoreNLP 3.4.1 jar shipped
  with pycocoevalcap, ``-preserveLines -lowerCase``, then its punctuation list
  removed).  All texts of all tasks, references and predictions, go through ONE
  Java call (the JVM start is the expensive part); lines are independent, so this
  equals tokenizing each side separately as pycocoevalcap's own example does.
* BLEU (``Bleu(4)``, "closest" reference length), ROUGE-L (``Rouge``) and CIDEr-D
  (``Cider``) are pycocoevalcap's scorers, called per task, so CIDEr's document
  frequencies (IDF) come from that task's references only.
* METEOR: the ``meteor-1.5.jar`` of pycocoevalcap with the same command line and
  protocol as its ``Meteor`` class (``SCORE`` lines, then one ``EVAL`` line per
  task), but written in bulk instead of one round trip per line and run in a
  background thread while the Python scorers work.  One JVM serves every task.
* Without Java (``shutil.which("java")`` is None): a fallback tokenizer
  (lower-case, words and single punctuation characters split apart with
  ``\\w+|[^\\w\\s]``, tokens in pycocoevalcap's ``PUNCTUATIONS`` list and brackets / double quotes
  (which PTB turns into -LRB-, ``, ... and so removes) dropped) and
  no METEOR; a warning says so.  These numbers are then NOT comparable to
  pycocoevalcap's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field

import numpy as np
import pycocoevalcap.meteor.meteor as _meteor_mod
import pycocoevalcap.tokenizer.ptbtokenizer as _ptb_mod
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

PUNCTUATIONS = set(_ptb_mod.PUNCTUATIONS)
TEXT_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")


def java_available() -> bool:
    return shutil.which("java") is not None


# ----------------------------------------------------------------- tokenizing
def _ptb_java(sentences: list[str]) -> list[str]:
    jar_dir = os.path.dirname(os.path.abspath(_ptb_mod.__file__))
    jar = os.path.join(jar_dir, _ptb_mod.STANFORD_CORENLP_3_4_1_JAR)
    text = "\n".join(s.replace("\n", " ") for s in sentences)
    with tempfile.TemporaryDirectory(prefix="fifa-ptb-") as d:
        path = os.path.join(d, "sentences.txt")
        with open(path, "wb") as f:
            f.write(text.encode())
        cmd = ["java", "-cp", jar, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    lines = res.stdout.decode().split("\n")
    if len(lines) < len(sentences):
        lines += [""] * (len(sentences) - len(lines))
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in lines[: len(sentences)]]


_FALLBACK = re.compile(r"\w+|[^\w\s]")
#: pycocoevalcap's punctuation list plus the characters PTB turns into -LRB- / -RRB- / -LCB- / -RCB- / `` / ''
FALLBACK_DROP = PUNCTUATIONS | set("(){}\"")


def fallback_tokenize(sentence: str) -> str:
    return " ".join(w for w in _FALLBACK.findall(sentence.lower()) if w not in FALLBACK_DROP)


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
        self.p = subprocess.Popen(cmd, cwd=jar_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)

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
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.kill()
        self.p.wait()


# -------------------------------------------------------------------- scoring
@dataclass
class TextScores:
    summary: dict
    per_sample: dict = field(default_factory=dict)  # metric -> np.ndarray


def text_scores(tasks: dict[str, tuple[list[str], list[str]]], use_java: bool | None = None
                ) -> tuple[dict[str, TextScores], list[str]]:
    """Scores per task from ``{task: (references, predictions)}``; also returns warnings."""
    warnings: list[str] = []
    if use_java is None:
        use_java = java_available()
    if not use_java:
        warnings.append("meteor omitted: java not found; texts tokenized with the fallback tokenizer "
                        "(not PTB), so text metrics are not comparable to pycocoevalcap")
    tasks = {t: v for t, v in tasks.items() if len(v[0])}
    sentences: list[str] = []
    spans = {}
    for t, (refs, hyps) in tasks.items():
        a = len(sentences)
        sentences.extend(refs)
        sentences.extend(hyps)
        spans[t] = (a, len(refs))
    toks = tokenize(sentences, use_java) if sentences else []
    tok = {t: (toks[a:a + n], toks[a + n:a + 2 * n]) for t, (a, n) in spans.items()}

    meteor_out: dict[str, tuple[float, list[float]]] = {}
    meteor_err: list[str] = []
    thread = None
    if use_java and tok:
        def run_meteor():
            m = None
            try:
                m = MeteorBatch()
                for t, (r, h) in tok.items():
                    meteor_out[t] = m.score(r, h)
            except Exception as e:  # noqa: BLE001
                meteor_err.append(str(e))
            finally:
                if m is not None:
                    m.close()

        thread = threading.Thread(target=run_meteor, daemon=True)
        thread.start()

    out: dict[str, TextScores] = {}
    for t, (r, h) in tok.items():
        gts = {k: [x] for k, x in enumerate(r)}
        res = {k: [x] for k, x in enumerate(h)}
        bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, rouge_per = Rouge().compute_score(gts, res)
        cider, cider_per = Cider().compute_score(gts, res)
        summ = {f"bleu_{i + 1}": float(bleu[i]) for i in range(4)}
        summ["rouge_l"] = float(rouge)
        summ["cider"] = float(cider)
        out[t] = TextScores(summ, {"rouge_l": np.asarray(rouge_per, dtype=float),
                                   "cider": np.asarray(cider_per, dtype=float),
                                   "bleu_4": np.asarray(bleu_per[3], dtype=float)})
    if thread is not None:
        thread.join()
        if meteor_err:
            warnings.append(f"meteor omitted: the METEOR process failed ({meteor_err[0]})")
        for t, (total, per) in meteor_out.items():
            if not meteor_err:
                out[t].summary["meteor"] = total
                out[t].per_sample["meteor"] = np.asarray(per, dtype=float)
    for t in out:  # fixed key order
        out[t].summary = {k: out[t].summary[k] for k in TEXT_METRICS if k in out[t].summary}
    return out, warnings
