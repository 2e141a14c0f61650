"""Training logs: ``metrics.jsonl`` (one JSON object per logged step / evaluation), TensorBoard when
installed, a rich progress bar, and PNG plots of the losses and evaluation metrics at the end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

LOSS_KEYS = ("loss", "lm", "mask_bce", "mask_dice", "det", "cls")


def read_metrics(path: str | Path) -> list[dict]:
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


class MetricsLog:
    def __init__(self, out: Path, enabled: bool = True, resume_step: int | None = None):
        self.out, self.enabled = out, enabled
        self.path = out / "metrics.jsonl"
        self.last: dict = {}
        self.last_eval: dict = {}
        self._tb = None
        if not enabled:
            return
        # a resumed run continues the log from its checkpoint: records after it are dropped
        keep = [r for r in read_metrics(self.path) if resume_step is not None and r.get("step", 0) <= resume_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            self._tb = None

    def write(self, record: dict) -> None:
        if any(k.startswith("eval/") for k in record):
            self.last_eval = record
        else:
            self.last = record
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, record["step"])

    def finish(self) -> None:
        if not self.enabled:
            return
        if self._tb is not None:
            self._tb.close()
        try:
            plot_metrics(read_metrics(self.path), self.out / "plots")
        except Exception as e:  # a plot must never cost a finished training run
            log.warning("plots not written: %s", e)


def plot_metrics(records: list[dict], dest: Path) -> list[Path]:
    """``loss.png`` (training losses by step) and ``eval.png`` (evaluation metrics by step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dest.mkdir(parents=True, exist_ok=True)
    written = []
    train = [r for r in records if "loss" in r]
    if train:
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in LOSS_KEYS:
            pts = [(r["step"], r[k]) for r in train if k in r]
            if pts:
                ax.plot(*zip(*pts), label=k)
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.legend(), ax.grid(alpha=0.3)
        fig.tight_layout(), fig.savefig(dest / "loss.png", dpi=90), plt.close(fig)
        written.append(dest / "loss.png")
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    keys = sorted(
        {
            k
            for r in evals
            for k in r
            if k.startswith("eval/") and k.split("/")[-1] in ("acc", "auc", "giou", "miou", "rouge_l", "macro_f1")
        }
    )
    if evals and keys:
        fig, ax = plt.subplots(figsize=(7, 4))
        for k in keys:
            pts = [(r["step"], r[k]) for r in evals if k in r]
            ax.plot(*zip(*pts), marker="o", label=k[5:])
        ax.set_xlabel("step"), ax.set_ylabel("metric"), ax.set_ylim(0, 1.02), ax.legend(fontsize=7), ax.grid(alpha=0.3)
        fig.tight_layout(), fig.savefig(dest / "eval.png", dpi=90), plt.close(fig)
        written.append(dest / "eval.png")
    return written


class progress_bar:
    """A rich progress bar over optimizer steps (loss in the description); a no-op when disabled."""

    def __init__(self, total: int, done: int, enabled: bool = True, label: str = "train"):
        self._p = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(
            TextColumn(label + " {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._t = self._p.add_task("", total=total, completed=done)
        self._p.start()

    def advance(self, logs: dict) -> None:
        if self._p is not None:
            desc = f"loss {logs['loss']:.3f}" if "loss" in logs else ""
            self._p.update(self._t, advance=1, description=desc)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
