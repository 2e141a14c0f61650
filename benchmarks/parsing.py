"""Answer parsing for the closed-form tasks (``det`` and ``cls``).

Free-text answers are mapped to a verdict; what cannot be mapped is ``None``
(unparseable), which the metrics count as wrong.  The rules, in order:

1. Text is lower-cased, ``n't`` becomes `` not`` and ``cannot`` ``can not``.
2. Clauses that end with ``?`` are dropped: they echo the question
   ("real? no, it is fake" is read as "no, it is fake").
3. The rest is split into clauses at ``. , ; : !`` and at "but", "however",
   "although", "though", "yet".
4. A clause that expresses doubt ("cannot tell", "not sure", "hard to say",
   "whether", "uncertain", ...) contributes nothing.
5. ``det``: verdict terms are looked up (fake side: fake, forged, manipulated,
   deepfake, synthetic, tampered, altered, edited, swapped, ...; real side:
   real, authentic, genuine, pristine, unaltered, unmanipulated, ...).  A
   negator (not, no, never, without, nothing, none, free of, lack of, ...) at
   most five words before a term in the same clause flips it ("not fake",
   "no signs of manipulation").  Terms right after a hedge (looks, seems,
   appears, might, may, could) are weak.  If the strong terms agree, that is
   the verdict; if they disagree the answer is unparseable; with no strong
   term, agreeing weak terms decide.  With no verdict term at all, the first
   yes/no word answers the question "is this face forged?" (yes = fake).
6. ``cls``: every class name, its synonyms (``SYNONYMS``), and for category
   classes the method names of that category (``METHOD_CATEGORY``) are looked
   up as whole words (case-insensitive; spaces, hyphens and underscores are
   interchangeable, CamelCase names also match split: "neural textures").
   Overlapping matches keep the longest; negated matches are dropped; the
   earliest remaining match gives the class.  A phrase that would name two
   classes of the class set is ambiguous and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

FAKE, REAL = 1, 0

_FAKE_TERMS = [
    "fake",
    "faked",
    "forged",
    "forgery",
    "forgeries",
    "manipulated",
    "manipulation",
    "manipulations",
    "deepfake",
    "deep fake",
    "deepfaked",
    "synthetic",
    "synthesized",
    "synthesised",
    "generated",
    "ai generated",
    "gan generated",
    "tampered",
    "tampering",
    "altered",
    "alteration",
    "edited",
    "editing",
    "doctored",
    "swapped",
    "face swap",
    "reenacted",
    "reenactment",
    "counterfeit",
    "artificial",
    "not genuine",
    "spoofed",
    "morphed",
    "fabricated",
    "artifacts",
    "artifact",
]
_REAL_TERMS = [
    "real",
    "authentic",
    "genuine",
    "pristine",
    "unaltered",
    "unmanipulated",
    "unedited",
    "untampered",
    "non manipulated",
    "bona fide",
    "bonafide",
    "legitimate",
]
_NEGATORS = {
    "not",
    "no",
    "never",
    "without",
    "nothing",
    "none",
    "nor",
    "neither",
    "free",
    "lack",
    "lacks",
    "lacking",
    "absence",
    "absent",
    "hardly",
    "zero",
    "unlikely",
}
_HEDGES = {"looks", "look", "seems", "seem", "appears", "appear", "might", "may", "could", "possibly", "likely"}
_DOUBT = re.compile(
    r"\b(can not (tell|say|determine|decide|be sure)|could not (tell|say|determine)|not sure|unsure|"
    r"uncertain|unclear|hard to (say|tell)|difficult to (say|tell|determine)|impossible to (say|tell|determine)|"
    r"do not know|whether|unable to (tell|determine|decide))\b"
)
_YES = {"yes", "yeah", "yep", "yup", "correct", "true", "affirmative", "indeed"}
_NO = {"no", "nope", "false", "negative"}

_CLAUSE_SPLIT = re.compile(r"[.,;:!\n]+|\b(?:but|however|although|though|yet|whereas)\b")
_WORD = re.compile(r"[a-z0-9]+")

#: Synonyms of category names (keys: class names, case-insensitive).
SYNONYMS: dict[str, list[str]] = {
    "fs": ["face swap", "face swapping", "face swapped", "faceswap", "identity swap", "identity swapping", "swap"],
    "fr": [
        "reenactment",
        "face reenactment",
        "reenacted",
        "expression swap",
        "expression transfer",
        "facial reenactment",
    ],
    "fe": ["face editing", "attribute editing", "attribute manipulation", "edited", "editing", "facial editing"],
    "efs": [
        "entire face synthesis",
        "entire-face synthesis",
        "fully synthetic",
        "whole face synthesis",
        "gan generated",
        "face synthesis",
        "synthesized face",
        "synthetic face",
        "entirely synthetic",
    ],
    "real": ["real", "pristine", "authentic", "genuine", "unmanipulated", "not manipulated"],
}
#: Method names that imply a category, used when the class set holds categories.
METHOD_CATEGORY: dict[str, str] = {
    "deepfakes": "fs",
    "faceswap": "fs",
    "faceshifter": "fs",
    "simswap": "fs",
    "fsgan": "fs",
    "blendface": "fs",
    "uniface": "fs",
    "mobileswap": "fs",
    "e4s": "fs",
    "inswapper": "fs",
    "face2face": "fr",
    "neuraltextures": "fr",
    "fomm": "fr",
    "facevid2vid": "fr",
    "wav2lip": "fr",
    "mcnet": "fr",
    "one shot": "fr",
    "lia": "fr",
    "tpsm": "fr",
    "sadtalker": "fr",
    "faceapp": "fe",
    "stargan": "fe",
    "attgan": "fe",
    "styleclip": "fe",
    "e4e": "fe",
    "collaborative diffusion": "fe",
    "stylegan": "efs",
    "stylegan2": "efs",
    "stylegan3": "efs",
    "pggan": "efs",
    "ddpm": "efs",
    "ddim": "efs",
    "stable diffusion": "efs",
    "dalle": "efs",
    "midjourney": "efs",
    "vqgan": "efs",
    "diffusion": "efs",
}


def normalize(text: str) -> str:
    t = text.lower().replace("\u2019", "'")
    t = re.sub(r"n't\b", " not", t)
    t = re.sub(r"\bcannot\b", "can not", t)
    t = re.sub(r"[-_/]", " ", t)
    return t


def _drop_questions(t: str) -> str:
    # remove every clause that ends with '?': from the previous boundary up to the '?'
    return re.sub(r"[^.!?;\n]*\?", " ", t)


def clauses(text: str) -> list[str]:
    t = _drop_questions(normalize(text))
    return [c.strip() for c in _CLAUSE_SPLIT.split(t) if c and c.strip()]


def _term_regex(terms: Iterable[str]) -> re.Pattern:
    alts = sorted({re.escape(t).replace(r"\ ", r"\s+") for t in terms}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(alts) + r")\b")


_FAKE_RE = _term_regex(_FAKE_TERMS)
_REAL_RE = _term_regex(_REAL_TERMS)


def _negated(clause: str, start: int, window: int = 5) -> bool:
    before = _WORD.findall(clause[:start])[-window:]
    return any(w in _NEGATORS for w in before)


def _hedged(clause: str, start: int, window: int = 3) -> bool:
    before = _WORD.findall(clause[:start])[-window:]
    return any(w in _HEDGES for w in before)


def parse_det(answer: object) -> int | None:
    """``1`` (fake), ``0`` (real) or ``None`` (unparseable) for a detection answer."""
    if not isinstance(answer, str) or not answer.strip():
        return None
    simple = answer.strip().strip(".!").lower()
    if simple in _YES or simple == "fake":
        return FAKE
    if simple in _NO or simple == "real":
        return REAL
    strong: list[int] = []
    weak: list[int] = []
    first_yes_no: int | None = None
    for cl in clauses(answer):
        if _DOUBT.search(cl):
            continue
        hits = []
        for rx, side in ((_FAKE_RE, FAKE), (_REAL_RE, REAL)):
            for m in rx.finditer(cl):
                hits.append((m.start(), side))
        for start, side in sorted(hits):
            v = 1 - side if _negated(cl, start) else side
            (weak if _hedged(cl, start) else strong).append(v)
        if first_yes_no is None:
            for w in _WORD.findall(cl):
                if w in _YES:
                    first_yes_no = FAKE
                    break
                if w in _NO:
                    first_yes_no = REAL
                    break
    if strong:
        return strong[0] if len(set(strong)) == 1 else None
    if weak:
        return weak[0] if len(set(weak)) == 1 else None
    return first_yes_no


# ------------------------------------------------------------------------ cls
def _variants(name: str) -> set[str]:
    """Spellings of a class/method name: as is, CamelCase split, without spaces."""
    base = normalize(name).strip()
    out = {base, base.replace(" ", "")}
    split = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name.strip())
    split = normalize(split)
    out.add(split)
    out.add(re.sub(r"(?<=[a-z])(?=[0-9])|(?<=[0-9])(?=[a-z])", " ", split))
    return {o.strip() for o in out if o.strip()}


class ClassParser:
    """Parses free text into one class of a fixed class set."""

    def __init__(self, classes: Sequence[str]):
        self.classes = list(classes)
        phrase_to: dict[str, set[str]] = {}

        def add(phrase: str, cls: str):
            for v in _variants(phrase):
                phrase_to.setdefault(v, set()).add(cls)

        lower = {c.lower(): c for c in self.classes}
        for c in self.classes:
            add(c, c)
        # synonyms and implied methods only where they do not clash with a class name itself
        extra: dict[str, set[str]] = {}
        for key, cls in lower.items():
            for syn in SYNONYMS.get(key, []):
                for v in _variants(syn):
                    extra.setdefault(v, set()).add(cls)
        for method, cat in METHOD_CATEGORY.items():
            if cat in lower:
                for v in _variants(method):
                    extra.setdefault(v, set()).add(lower[cat])
        for phrase, owners in extra.items():
            if phrase in phrase_to:  # a class name wins over any synonym
                continue
            phrase_to[phrase] = owners
        self._phrase_class = {p: next(iter(o)) for p, o in phrase_to.items() if len(o) == 1}
        self._exact = dict(self._phrase_class.items())
        self._rx = _term_regex(self._phrase_class) if self._phrase_class else None

    def __call__(self, answer: object) -> str | None:
        if not isinstance(answer, str) or not answer.strip():
            return None
        key = normalize(answer).strip().strip(".!").strip()
        key = re.sub(r"\s+", " ", key)
        if key in self._exact:
            return self._exact[key]
        if self._rx is None:
            return None
        best: tuple[int, str] | None = None
        for _ci, cl in enumerate(clauses(answer)):
            if _DOUBT.search(cl):
                continue
            for m in self._rx.finditer(cl):  # regex alternation is longest-first, non-overlapping
                if _negated(cl, m.start(), window=3):
                    continue
                phrase = re.sub(r"\s+", " ", m.group(0))
                cls = self._phrase_class.get(phrase)
                if cls is not None:
                    return cls
        return best[1] if best else None


@lru_cache(maxsize=32)
def class_parser(classes: tuple[str, ...]) -> ClassParser:
    return ClassParser(classes)


def parse_cls(answer: object, classes: Sequence[str]) -> str | None:
    """The class of ``classes`` named by ``answer``, or ``None``."""
    return class_parser(tuple(classes))(answer)
