"""`fifa-train`: train the baseline on a build and predict a bench (typer, over the library API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_utils import command, examples, make_app, run_app, setup_logging
from fifa.core.errors import EXIT_FAILED

app = make_app(
    "Train the DFA-GPT / FiFa-MLLM baseline (LoRA, [SEG] mask head, region queries) and predict submissions.",
    epilog=examples(
        "fifa-train run --config modeling/configs/tiny-cpu.yaml --data BUILD --out ckpt",
        "fifa-train predict --checkpoint ckpt --bench BUILD/bench.parquet --out preds.parquet",
    ),
)


def default_config() -> Path:
    return Path(__file__).parent / "configs" / "tiny-cpu.yaml"


@command(
    app, "fifa-train run --config modeling/configs/tiny-cpu.yaml --data BUILD --out ckpt --set train.max_steps=500"
)
def run(
    data: Annotated[Path, typer.Option(help="Build folder (fifa-data build --out), with instruct/train*.parquet.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, metrics.jsonl, plots. Rerun to resume.")],
    config: Annotated[Path | None, typer.Option(help="YAML config (default: the tiny CPU config).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: --set train.lr=1e-4 (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Progress bar.")] = True,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Train (LoRA + heads) on a build; rerunning on the same --out resumes exactly from its last checkpoint."""
    setup_logging(verbose)
    from .config import load_config
    from .train import train

    cfg = load_config(config or default_config(), set_ or [])
    s = train(cfg, data, out, progress=progress)
    ev = ", ".join(
        f"{k[5:]}={v:.3f}"
        for k, v in (s.get("eval") or {}).items()
        if k.startswith("eval/") and k.split("/")[-1] in ("acc", "auc", "giou", "rouge_l")
    )
    skipped = sum(s["skipped"].values())
    typer.echo(
        f"trained {s['steps']} steps -> {out}"
        + (f"; validation: {ev}" if ev else "")
        + (f"; {skipped} row(s) skipped: {s['skipped']}" if skipped else "")
    )


@command(app, "fifa-train predict --checkpoint ckpt --bench BUILD/bench.parquet --out preds.parquet")
def predict(
    checkpoint: Annotated[
        Path, typer.Option(help="A run folder (its final model or newest checkpoint) or a checkpoint-NNNNNN folder.")
    ],
    bench: Annotated[Path, typer.Option(help="Bench Parquet (BUILD/bench.parquet).")],
    out: Annotated[Path, typer.Option(help="Submission file (.parquet, or .jsonl).")],
    batch_size: Annotated[int | None, typer.Option(help="Questions per generation batch.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    image_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder relative image paths are relative to (default: the image root of the build the bench lies in)."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Progress bar.")] = True,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> int:
    """Answer every bench question: generated text, det scores, RLE masks (resumable: rerun to continue)."""
    setup_logging(verbose)
    from .submit import predict_bench

    s = predict_bench(
        checkpoint, bench, out, batch_size=batch_size, limit=limit, progress=progress, image_root=image_root
    )
    typer.echo(
        f"wrote {s.out}: {s.total} question(s), {s.predicted} predicted now, {s.done_before} earlier"
        + (f", {s.failed} without a usable image (null answers)" if s.failed else "")
    )
    return EXIT_FAILED if s.total and s.failed == s.total else 0


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-train")


if __name__ == "__main__":  # pragma: no cover
    main()
