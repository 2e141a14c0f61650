"""`fifa-annotate`: run, retry, show (typer, over :func:`fifa.annotator.run.run_annotation`)."""

from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_options import CliOption, FieldOption, config_from, option_parameters, with_options
from fifa.cli_utils import command, examples, make_app, run_app, setup_logging
from fifa.concept_tree.segmentation.backends import BackendChoice, backends_help, check_backend
from fifa.concept_tree.segmentation.landmarks import BackendUnavailable
from fifa.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UserError

from .explainers import explainer_choice
from .run import AnnotateConfig

log = logging.getLogger(__name__)

app = make_app(
    "FiFa-Annotator: real/fake pairs -> artifact mask -> tree regions -> grounded explanation.",
    epilog=examples(
        "fifa-annotate run --manifest data/manifest.parquet --out ann/",
        "fifa-annotate retry ann/",
        "fifa-annotate show ann/ fake_00001_blur --out fake1.png",
    ),
)


class Detail(str, Enum):  # OpenAIConfig.image_detail's values (fifa.core.llm keeps it a str)
    low = "low"
    high = "high"
    auto = "auto"


def _path_str(p: Path | None) -> str | None:
    return str(p) if p else None


#: Options shared by `run` and `retry` (one definition; see `_with_run_options`). Each FieldOption's default and
#: type are those of its AnnotateConfig field (annotator/run.py; the LLM transport's: OpenAIConfig, fifa.core.llm),
#: written there once; CliOptions are the command's own.
RUN_OPTION_SPECS: list[FieldOption | CliOption] = [
    FieldOption("llm", "llm", "Explainer backend.", choices=explainer_choice()),  # the registry's names
    FieldOption("base_url", "openai.base_url", "OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    FieldOption("model", "openai.model", "Model name for --llm openai."),
    CliOption(
        "api_key_file",
        Path | None,
        None,
        "File holding the API key (else OPENAI_API_KEY).",
        typer_kw={"dir_okay": False},
    ),
    FieldOption("concurrency", "concurrency", "LLM requests in flight."),
    FieldOption("workers", "workers", "CPU worker processes (0: all cores)."),
    FieldOption(
        "executor", "executor", "Where CPU work runs: local processes, or Ray actors (pip install 'fifa-toolkit[ray]')."
    ),
    FieldOption(
        "ray_address",
        "ray_address",
        "--executor ray: cluster to join ('auto', ray://host:10001); default starts a local one.",
    ),
    FieldOption("segmenter", "segmenter", backends_help("Landmarks of the tree regions"), choices=BackendChoice),
    FieldOption("timeout", "openai.timeout", "LLM request timeout (s)."),
    FieldOption("max_retries", "openai.max_retries", "Transport retries per request."),
    FieldOption("retry_max_wait", "openai.retry_max_wait", "Longest wait between retries (s), Retry-After included."),
    CliOption(
        "cache_dir",
        Path | None,
        None,
        "LLM response cache (default: $FIFA_CACHE_DIR/llm or ~/.cache/fifa-toolkit/llm).",
        typer_kw={"file_okay": False},
    ),
    CliOption("no_cache", bool, False, "Do not read or write the LLM response cache.", ("--no-cache",)),
    FieldOption("max_cost", "max_cost", "Stop cleanly once this many USD are spent."),
    FieldOption("price_in", "openai.price_in_per_mtok", "USD per 1M prompt tokens."),
    FieldOption("price_out", "openai.price_out_per_mtok", "USD per 1M completion tokens."),
    FieldOption("image_size", "llm_image_size", "Max side of the JPEGs sent to the LLM."),
    FieldOption("jpeg_quality", "llm_jpeg_quality", "JPEG quality of the images sent to the LLM."),
    FieldOption("image_detail", "openai.image_detail", "Image detail asked of the LLM.", choices=Detail),
    FieldOption("diff_top_percent", "diff.top_percent", "Seed share of strongest differences (published: 5)."),
    FieldOption(
        "noise_floor",
        "diff.noise_floor",
        "Lowest noise floor (ΔE): the floor is measured on each pair (its own "
        "compression noise, per texture) and never set below this.",
    ),
    FieldOption("min_coverage", "select.min_coverage", "A leaf at least this much covered is chosen."),
    FieldOption(
        "min_share", "select.min_share", "A leaf holding this share of the artifact is chosen (if >= 8% covered)."
    ),
    FieldOption(
        "parent_fraction",
        "select.parent_fraction",
        "A parent replaces its children when more than this share of them is chosen.",
    ),
    FieldOption(
        "data_root",
        "data_root",
        "Folder every manifest path must resolve inside (default: the manifest's folder).",
        annotation=Path | None,
        to_config=_path_str,
        typer_kw={"file_okay": False},
    ),
    FieldOption(
        "allow_outside_root",
        "allow_outside_root",
        "Let manifest paths reach outside the data root ('..', absolute paths, symlinks).",
        ("--allow-outside-root",),
    ),
    FieldOption("shard_rows", "shard_rows", "Rows per output shard."),
    FieldOption("limit", "limit", "Annotate at most this many pending rows."),
    FieldOption("dry_run", "dry_run", "Print what would be done and the cost estimate; no calls.", ("--dry-run",)),
    FieldOption("no_progress", "progress", "No progress bar.", ("--no-progress",), invert=True),
    CliOption("verbose", bool, False, "Debug logging.", ("-v", "--verbose")),
]
RUN_OPTIONS = option_parameters(AnnotateConfig, RUN_OPTION_SPECS)


#: gives a command ``func(..., **kw)`` the shared run options as typer parameters
_with_run_options = with_options(RUN_OPTIONS)


def _check_executor(executor: str) -> None:
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError(
                "--executor ray needs Ray: pip install 'fifa-toolkit[ray]' (or use --executor local)"
            ) from None


def _api_key(kw: dict) -> str | None:
    from fifa.core.llm import read_api_key

    try:
        api_key = read_api_key(kw["api_key_file"])
    except OSError as e:
        raise UserError(f"cannot read --api-key-file: {e.strerror}") from None
    if api_key is None and not kw["dry_run"] and kw["base_url"] is None:
        raise UserError("--llm openai needs OPENAI_API_KEY or --api-key-file (or a --base-url of a local server)")
    return api_key


def _config(kw: dict) -> AnnotateConfig:
    """The run's config from the parsed options, after the checks that need the environment."""
    from fifa.core.llm_cache import default_cache_dir

    _check_executor(kw["executor"].value)
    api_key = _api_key(kw) if kw["llm"].value == "openai" else None
    if kw["concurrency"] < 1:
        raise UserError("--concurrency must be >= 1")
    segmenter = kw["segmenter"].value
    try:
        check_backend(segmenter)
    except BackendUnavailable as e:
        raise UserError(f"--segmenter {segmenter}: {e}") from None
    cache_dir = None if kw["no_cache"] else str(kw["cache_dir"] or default_cache_dir())
    return config_from(AnnotateConfig, RUN_OPTION_SPECS, kw, openai__api_key=api_key, openai__cache_dir=cache_dir)


def _report(summary, dry_run: bool) -> int:
    from rich.console import Console
    from rich.table import Table

    con = Console(stderr=False)
    if dry_run:
        est = summary.estimate or {}
        con.print(f"dry run: {summary.pending} row(s) to annotate, {summary.skipped_done} already done")
        con.print(json.dumps(est, indent=2))
        return EXIT_OK
    t = Table(title=f"fifa-annotate: {summary.out_dir}")
    t.add_column("what")
    t.add_column("value", justify="right")
    for k in ("ok", "failed", "skipped"):
        t.add_row(k, str(summary.counts.get(k, 0)))
    t.add_row("pending", str(summary.pending))
    t.add_row("written now", str(summary.processed))
    t.add_row("already done (resumed)", str(summary.skipped_done))
    for code, n in sorted(summary.errors.items(), key=lambda kv: -kv[1]):
        t.add_row(f"  failed: {code}", str(n))
    t.add_row("LLM calls / cache hits", f"{summary.llm_calls} / {summary.cache_hits}")
    t.add_row("tokens in / out", f"{summary.prompt_tokens} / {summary.completion_tokens}")
    t.add_row("cost (USD)", f"{summary.cost_usd:.4f}")
    t.add_row("time (s) / rows/s", f"{summary.elapsed_s:.1f} / {summary.rows_per_s:.1f}")
    if summary.stopped:
        t.add_row("stopped", summary.stopped)
    con.print(t)
    if summary.stopped == "interrupted":
        return EXIT_INTERRUPTED
    if summary.total and summary.ok == 0 and summary.counts:
        return EXIT_FAILED
    return EXIT_OK


@command(
    app,
    "fifa-annotate run --manifest pairs.parquet --out ann/",
    "fifa-annotate run --manifest pairs.csv --out ann/ --llm openai --model gpt-4o --concurrency 16 --max-cost 5",
    "fifa-annotate run --manifest pairs.csv --out ann/ --llm openai --base-url http://localhost:8000/v1 "
    "--model qwen2-vl",
    "fifa-annotate run --demo --out demo_ann/",
    "fifa-annotate run --manifest pairs.parquet --out ann/ --executor ray --ray-address auto",
)
@_with_run_options
def run(
    out: Annotated[Path, typer.Option(file_okay=False, help="Output folder (resumed if it exists).")],
    manifest: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Manifest (.parquet/.csv/.jsonl) of pairs to annotate.")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Forge sample pairs from the bundled public-domain photos and annotate them.")
    ] = False,
    **kw,
) -> int:
    """Annotate every row of a manifest; rerunning on the same --out resumes."""
    setup_logging(kw["verbose"])
    from .executors import ExecutorUnavailable
    from .manifest import ManifestError
    from .run import run_annotation
    from .runlock import FolderLocked

    cfg = _config(kw)
    if demo:
        if manifest:
            raise UserError("use either --manifest or --demo")
        from .demo import demo_manifest

        manifest = demo_manifest(out / "demo_data")
    if not manifest:
        raise UserError("--manifest is required (or --demo)")
    try:
        summary = run_annotation(manifest, out, cfg)
    except (ManifestError, ExecutorUnavailable, FolderLocked) as e:
        raise UserError(str(e)) from None
    return _report(summary, cfg.dry_run)


@command(app, "fifa-annotate retry ann/ --llm openai --base-url http://localhost:8000/v1")
@_with_run_options
def retry(
    out_dir: Annotated[Path, typer.Argument(file_okay=False, exists=True, help="An annotation output folder.")],
    manifest: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Manifest to use (default: the copy the run kept in OUT_DIR).")
    ] = None,
    **kw,
) -> int:
    """Re-attempt the rows that failed in OUT_DIR (replacing them; each sample stays once)."""
    setup_logging(kw["verbose"])
    from .executors import ExecutorUnavailable
    from .manifest import ManifestError
    from .run import run_annotation
    from .runlock import FolderLocked

    cfg = _config(kw)
    from .runinfo import RESOLVED_MANIFEST, load_manifest_copy

    if manifest is None and not (out_dir / RESOLVED_MANIFEST).is_file():
        raise UserError(f"no manifest: {out_dir / RESOLVED_MANIFEST} (pass --manifest)")
    try:
        rows = manifest or load_manifest_copy(out_dir, cfg.allow_outside_root)
        summary = run_annotation(rows, out_dir, cfg, retry=True)
    except (ManifestError, ExecutorUnavailable, FolderLocked) as e:
        raise UserError(str(e)) from None
    return _report(summary, cfg.dry_run)


@command(app, "fifa-annotate show ann/ fake_00003_blur --out fake3.png")
def show(
    out_dir: Annotated[Path, typer.Argument(file_okay=False, exists=True, help="An annotation output folder.")],
    sample_id: Annotated[str, typer.Argument(help="The sample to draw.")],
    out_png: Annotated[Path, typer.Option("--out", dir_okay=False, help="PNG to write.")],
) -> None:
    """Draw the fake, its source, the artifact mask and the labelled regions side by side."""
    from .show import find_row, render

    row = find_row(out_dir, sample_id)
    if row is None:
        raise UserError(f"sample {sample_id!r} not found in {out_dir}")
    typer.echo(str(render(row, out_png)))


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-annotate")


if __name__ == "__main__":  # pragma: no cover
    main()
