"""The scoring report: ``report.json`` (DESIGN keys), ``report.md`` and plots.

``report.json`` layout::

    {
      "det":  {"acc": .., "auc": .., "ap": .., "eer": .., "n": ..},
      "cls":  {"acc": .., "macro_f1": .., "n": ..},
      "toe":  {"bleu_1": .., ..., "bleu_4": .., "meteor": .., "rouge_l": .., "cider": .., "n": ..},
      "loc":  {"giou": .., "ciou": .., "n": ..},
      "age":  {text metrics..., "giou": .., "ciou": .., "miou": .., "grounded_recall": ..,
               "grounded_precision": .., "consistency": .., "n": ..},
      "_meta": {
        "tasks": {task: {"main_metric", "missing", "unparsed", "ci": {"metric", "low", "high", "level",
                   "resamples", "seed"}, "cis": {metric: ci} (grounding, judge_mean),
                   "not_computed": {metric: why}, "by_method": {...}, "by_category": {...}}},
        "warnings": [...], "tokenizer": "ptb"|"fallback", "meteor": bool, ...,
        "judge": {"model", "endpoint", "rubric_version", "images", "cost_usd", "llm_calls", "cache_hits",
                  "budget_stops", "max_cost"} (with a judge)
      }
    }

Task entries hold only metric values (``null`` where undefined, with a
warning) and ``n``; everything else lives under ``_meta``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fifa.core.tasks import task_order

METRIC_ORDER = (
    "acc",
    "auc",
    "ap",
    "eer",
    "macro_f1",
    "bleu_1",
    "bleu_2",
    "bleu_3",
    "bleu_4",
    "meteor",
    "rouge_l",
    "cider",
    "giou",
    "ciou",
    "miou",
    "grounded_recall",
    "grounded_precision",
    "consistency",
    "judge_mean",
)
JUDGE_SCORES = "judge_scores.jsonl"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


@dataclass
class Report:
    """Scores of one submission; ``tasks[task]`` = ``{metric: value, "n": count}``."""

    tasks: dict[str, dict] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    plot_data: dict = field(default_factory=dict, repr=False)
    #: per-question judge scores ({question_id, task, score, reason, error, cached}) when a judge ran
    judge_scores: list[dict] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ access
    def metric(self, task: str, name: str) -> float | None:
        return self.tasks.get(task, {}).get(name)

    def main_metric(self, task: str) -> tuple[str, float | None]:
        name = self.meta.get("tasks", {}).get(task, {}).get("main_metric")
        return name, self.metric(task, name) if name else None

    def main_metrics(self) -> dict[str, float | None]:
        """``{"det/auc": value, ...}``: the headline number of every task (for training logs)."""
        out = {}
        for t in sorted(self.tasks, key=task_order):
            name, v = self.main_metric(t)
            if name:
                out[f"{t}/{name}"] = v
        return out

    @property
    def warnings(self) -> list[str]:
        return list(self.meta.get("warnings", []))

    def to_dict(self) -> dict:
        out = {t: dict(self.tasks[t]) for t in sorted(self.tasks, key=task_order)}
        out["_meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Report:
        return cls(tasks={k: v for k, v in d.items() if not k.startswith("_")}, meta=d.get("_meta", {}))

    @classmethod
    def load(cls, path: str | Path) -> Report:
        p = Path(path)
        if p.is_dir():
            p = p / "report.json"
        return cls.from_dict(json.loads(p.read_text()))

    # ----------------------------------------------------------------- writing
    def to_markdown(self, plots: list[str] | None = None) -> str:
        tasks = sorted(self.tasks, key=task_order)
        lines = self._md_header() + self._md_scores(tasks) + self._md_extras(tasks) + self._md_breakdowns(tasks)
        if plots:
            lines.append("## Plots")
            lines.append("")
            lines += [f"![{p}]({p})" for p in plots]
            lines.append("")
        return "\n".join(lines)

    def _md_header(self) -> list[str]:
        lines = ["# DFA-Bench report", ""]
        m = self.meta
        for k in ("bench", "submission", "created", "tokenizer"):
            if m.get(k) is not None:
                lines.append(f"- {k}: `{m[k]}`")
        lines.append(
            f"- questions: {m.get('n_questions')}, answered: {m.get('n_answered')}, missing: {m.get('n_missing')}"
        )
        lines.append(f"- bootstrap: {m.get('bootstrap')} resamples, seed {m.get('seed')}, 95% percentile CI")
        lines.append("")
        return lines

    def _md_scores(self, tasks: list[str]) -> list[str]:
        """The scores table: one row per task, its main metric with its CI."""
        m = self.meta
        metrics = [k for k in METRIC_ORDER if any(k in self.tasks[t] for t in tasks)]
        lines = ["## Scores", ""]
        lines.append("| task | n | " + " | ".join(metrics) + " | main (95% CI) | missing | unparsed |")
        lines.append("|---|---:|" + "---:|" * len(metrics) + "---|---:|---:|")
        for t in tasks:
            tm = m.get("tasks", {}).get(t, {})
            ci = tm.get("ci")
            main = tm.get("main_metric")
            main_s = f"{main} {_fmt(self.tasks[t].get(main))}" if main else ""
            if ci:
                main_s += f" [{ci['low']:.4f}, {ci['high']:.4f}]"
            row = [t, str(self.tasks[t].get("n", ""))] + [
                _fmt(self.tasks[t][k]) if k in self.tasks[t] else "" for k in metrics
            ]
            row += [main_s, str(tm.get("missing", 0)), str(tm.get("unparsed", "")) if "unparsed" in tm else ""]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        return lines

    def _md_extras(self, tasks: list[str]) -> list[str]:
        """The other CIs (grounding, judge_mean), the judge, the warnings."""
        m = self.meta
        lines: list[str] = []
        extra = [(t, k, ci) for t in tasks for k, ci in (m.get("tasks", {}).get(t, {}).get("cis") or {}).items() if ci]
        if extra:
            lines += [
                f"- {t} {k}: {_fmt(self.tasks[t].get(k))} [{ci['low']:.4f}, {ci['high']:.4f}]" for t, k, ci in extra
            ]
            lines.append("")
        if m.get("judge"):
            jm = m["judge"]
            lines.append(
                f"- judge: `{jm.get('model')}` at `{jm.get('endpoint')}`, rubric `{jm.get('rubric_version')}`, "
                f"cost ${jm.get('cost_usd', 0):.4f}, {jm.get('llm_calls')} call(s), "
                f"{jm.get('cache_hits')} cached"
            )
            lines.append("")
        if m.get("warnings"):
            lines.append("## Warnings")
            lines.append("")
            lines += [f"- {w}" for w in m["warnings"]]
            lines.append("")
        return lines

    def _md_breakdowns(self, tasks: list[str]) -> list[str]:
        """One table per task and grouping (method, category)."""
        lines: list[str] = []
        for t in tasks:
            tm = self.meta.get("tasks", {}).get(t, {})
            for by in ("method", "category"):
                groups = tm.get(f"by_{by}") or {}
                if not groups:
                    continue
                cols = [k for k in METRIC_ORDER if any(k in g for g in groups.values())]
                lines.append(f"## {t} by {by}")
                lines.append("")
                lines.append(f"| {by} | n | " + " | ".join(cols) + " |")
                lines.append("|---|---:|" + "---:|" * len(cols))
                for name, g in groups.items():
                    lines.append(f"| {name} | {g.get('n')} | " + " | ".join(_fmt(g.get(k)) for k in cols) + " |")
                lines.append("")
        return lines

    def write(self, out_dir: str | Path, plots: bool = True) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        if plots:
            from .plots import write_plots

            written = write_plots(self, out)
        (out / "report.json").write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        (out / "report.md").write_text(self.to_markdown(written))
        if self.judge_scores is not None:
            with open(out / JUDGE_SCORES, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in self.judge_scores)
        return out / "report.json"
