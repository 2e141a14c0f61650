"""PNG plots of a report (matplotlib, Agg backend): ROC curve, confusion matrix, per-method bars."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _roc(report, out: Path) -> str | None:
    d = report.plot_data.get("roc")
    if not d:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.plot(d["fpr"], d["tpr"], lw=2, label=f"AUC = {report.metric('det', 'auc'):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    eer = report.metric("det", "eer")
    if eer is not None:
        ax.plot([eer], [1 - eer], "o", color="C3", label=f"EER = {eer:.4f}")
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title="det: ROC curve (fake = positive)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png")
    plt.close(fig)
    return "roc.png"


def _confusion(report, out: Path) -> str | None:
    d = report.plot_data.get("confusion")
    if not d:
        return None
    cm = np.asarray(d["matrix"], dtype=float)
    rows, cols = d["classes"], d["classes"] + ["unparsed"]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(cols), 1.2 + 0.7 * len(rows)), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted", ylabel="reference", title="cls: confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "confusion.png")
    plt.close(fig)
    return "confusion.png"


def _per_method(report, out: Path) -> str | None:
    tasks = report.meta.get("tasks", {})
    panels = []
    for t, tm in tasks.items():
        groups = tm.get("by_method") or {}
        main = tm.get("main_metric")
        metric = main if any(g.get(main) is not None for g in groups.values()) else "acc"
        vals = {k: g.get(metric) for k, g in groups.items() if g.get(metric) is not None}
        if vals:
            panels.append((t, metric, vals))
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.6 * len(panels)), dpi=110, squeeze=False)
    for ax, (t, metric, vals) in zip(axes[:, 0], panels):
        names = list(vals)
        ax.bar(range(len(names)), [vals[n] for n in names], color="C0")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_ylabel(metric)
        ax.set_title(f"{t}: {metric} per method")
        top = max(1.0, max(vals.values())) * 1.12
        ax.set_ylim(0, top)
        for i, n in enumerate(names):
            ax.text(i, vals[n], f"{vals[n]:.3f}", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "per_method.png")
    plt.close(fig)
    return "per_method.png"


def write_plots(report, out: Path) -> list[str]:
    return [p for p in (_roc(report, out), _confusion(report, out), _per_method(report, out)) if p]
