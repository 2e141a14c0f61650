"""The nine tasks of DESIGN.md ("Tasks", "Metric definitions"), defined once: the registry that the builder, the
dataset card, the scorer, the report and the viewer iterate.

Data shapes:

* :class:`Task`: one task: ``id`` (the ``task`` column's value), ``title`` (what the dataset card calls it),
  ``answer`` (:data:`AnswerKind`), ``masks`` (the bench holds reference masks and the submission masks:
  ``loc``, ``age``), ``text`` (scored with the text metrics), ``metrics`` (the metric names ``report.json`` holds
  for it; ``judge_mean`` is added to text tasks when a judge runs), ``main_metric`` (its headline number; the
  scorer falls back to ``acc`` for ``det`` when AUC is undefined), ``region_query`` (the query a region question
  carries: a concept ``name``, a ``mask`` or a ``box``; None for the others) and ``question_sets`` (the keys of
  ``pipelines/templates/questions.yaml`` that phrase its questions, each held to the build's minimum number of
  phrasings; the templates stay data there).
* :data:`TASKS`: ``{id: Task}`` in report order; :data:`TASK_IDS` the ids in that order.
* :data:`TEXT_TASKS`, :data:`MASK_TASKS`, :data:`REGION_QUERY_TASKS`: the ids with ``text`` / ``masks`` /
  ``region_query``, in report order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: what an answer is: yes/no (+ optional score), a class name, text, text with marked phrases and their masks,
#: or one mask (with a short text)
AnswerKind = Literal["yes_no", "class", "text", "grounded_text", "mask"]
RegionQuery = Literal["name", "mask", "box"]

DET_METRICS = ("acc", "auc", "ap", "eer")
CLS_METRICS = ("acc", "macro_f1")
#: pycocoevalcap's scorers on PTB-tokenized text (METEOR omitted where Java is missing)
TEXT_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")
MASK_METRICS = ("giou", "ciou")
GROUNDING_METRICS = ("grounded_recall", "grounded_precision", "consistency")


@dataclass(frozen=True)
class Task:
    """One task of DESIGN.md (see the module's data shapes)."""

    id: str
    title: str
    answer: AnswerKind
    metrics: tuple[str, ...]
    main_metric: str
    masks: bool = False
    text: bool = False
    region_query: RegionQuery | None = None
    question_sets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.main_metric not in self.metrics:
            raise ValueError(f"task {self.id}: main metric {self.main_metric!r} is not one of its metrics")
        if self.text != (set(TEXT_METRICS) <= set(self.metrics)):
            raise ValueError(f"task {self.id}: text={self.text} disagrees with its metrics")

    @property
    def needs_artifact_mask(self) -> bool:
        """Made only from fakes whose artifact mask was measured (its masks, or the regions it asks about)."""
        return self.masks or self.region_query is not None


def _region(kind: RegionQuery, title: str) -> Task:
    return Task(
        f"rq_{kind}",
        title,
        "text",
        TEXT_METRICS,
        "rouge_l",
        text=True,
        region_query=kind,
        question_sets=(f"rq_{kind}",),
    )


_ALL = (
    Task("det", "detection (yes/no with a reason)", "yes_no", DET_METRICS, "auc", question_sets=("det",)),
    Task("cls", "forgery method / category", "class", CLS_METRICS, "acc", question_sets=("cls_method", "cls_category")),
    Task("toe", "text-only explanation", "text", TEXT_METRICS, "rouge_l", text=True, question_sets=("toe",)),
    Task(
        "age",
        "artifact-grounding explanation (masks)",
        "grounded_text",
        TEXT_METRICS + MASK_METRICS + ("miou",) + GROUNDING_METRICS,
        "giou",
        masks=True,
        text=True,
        question_sets=("age",),
    ),
    Task("loc", "artifact localisation (one mask)", "mask", MASK_METRICS, "giou", masks=True, question_sets=("loc",)),
    _region("name", "region query by name"),
    _region("mask", "region query by mask"),
    _region("box", "region query by box"),
    # fc's questions come from the conversation builder: an LLM, or offline the short scripted fc_* sets,
    # which are not held to the minimum number of phrasings
    Task("fc", "free conversation", "text", TEXT_METRICS, "rouge_l", text=True),
)

TASKS: Mapping[str, Task] = {t.id: t for t in _ALL}
TASK_IDS: tuple[str, ...] = tuple(TASKS)
TEXT_TASKS: tuple[str, ...] = tuple(t.id for t in _ALL if t.text)
MASK_TASKS: tuple[str, ...] = tuple(t.id for t in _ALL if t.masks)
REGION_QUERY_TASKS: tuple[str, ...] = tuple(t.id for t in _ALL if t.region_query)


def task_order(task_id: str) -> tuple[int, str]:
    """Sort key: the registry's order, unknown ids after it, by name."""
    ids = TASK_IDS
    return (ids.index(task_id) if task_id in TASKS else len(ids), task_id)


__all__ = [
    "AnswerKind",
    "CLS_METRICS",
    "DET_METRICS",
    "GROUNDING_METRICS",
    "MASK_METRICS",
    "MASK_TASKS",
    "REGION_QUERY_TASKS",
    "RegionQuery",
    "TASKS",
    "TASK_IDS",
    "TEXT_METRICS",
    "TEXT_TASKS",
    "Task",
    "task_order",
]
