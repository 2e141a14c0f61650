"""Question and answer templates of the instruction tasks (``questions.yaml``, ``answers.yaml``).

At least 30 question phrasings for ``det``, ``cls`` (method and category variants), ``toe``,
``age``, ``loc`` and each ``rq_*``; answers in the published style. A build picks one phrasing
per row with :func:`fifa.pipelines.rand.pick` (seed, sample id, task), so the choice is
deterministic. Users may pass their own files of the same shape (``BuildConfig.templates``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from fifa.core.errors import FifaError
from fifa.core.tasks import TASKS

#: question sets that must hold at least MIN_PHRASINGS distinct phrasings: the tasks' own (fifa.core.tasks)
REQUIRED_SETS = tuple(name for task in TASKS.values() for name in task.question_sets)
MIN_PHRASINGS = 30


class TemplateError(FifaError, ValueError):
    """A template file that cannot be used."""


@dataclass(frozen=True)
class Templates:
    questions: dict
    answers: dict
    source: str

    def q(self, name: str) -> list[str]:
        return list(self.questions[name])

    def a(self, name: str):
        return self.answers[name]

    def extent_phrase(self, coverage: float) -> str:
        for t, words in self.answers["extents"]:
            if coverage >= t:
                return words
        return self.answers["extents"][-1][1]


def _read(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise TemplateError(f"{path}: cannot read templates: {e}") from None
    if not isinstance(doc, dict):
        raise TemplateError(f"{path}: expected a mapping")
    return doc


def check(questions: dict, source: str) -> None:
    for name in REQUIRED_SETS:
        qs = questions.get(name)
        if not isinstance(qs, list) or not all(isinstance(q, str) and q.strip() for q in qs):
            raise TemplateError(f"{source}: question set {name!r} must be a list of strings")
        if len(set(qs)) < MIN_PHRASINGS:
            raise TemplateError(
                f"{source}: question set {name!r} has {len(set(qs))} distinct phrasings, "
                f"at least {MIN_PHRASINGS} are required"
            )


@lru_cache(maxsize=4)
def load_templates(questions: str | None = None, answers: str | None = None) -> Templates:
    """The packaged templates, or the given YAML files (same shape)."""
    base = Path(str(resources.files("fifa.pipelines.templates")))
    qp = Path(questions) if questions else base / "questions.yaml"
    ap = Path(answers) if answers else base / "answers.yaml"
    q, a = _read(qp), _read(ap)
    check(q, str(qp))
    return Templates(q, a, f"{qp.name}+{ap.name}")
