"""`fifa-annotate`: run, retry, show (typer, over :func:`fifa.annotator.run.run_annotation`)."""

from __future__ import annotations

import inspect
import json
import logging
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fifa.cli_utils import command, examples, make_app, run_app, setup_logging
from fifa.concept_tree.segmentation.backends import BackendChoice, backends_help, check_backend
from fifa.concept_tree.segmentation.landmarks import BackendUnavailable
from fifa.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UserError
from fifa.core.llm import OpenAIConfig

log = logging.getLogger(__name__)

app = make_app(
    "FiFa-Annotator: real/fake pairs -> artifact mask -> tree regions -> grounded explanation.",
    epilog=examples(
        "fifa-annotate run --manifest data/manifest.parquet --out ann/",
        "fifa-annotate retry ann/",
        "fifa-annotate show ann/ fake_00001_blur --out fake1.png",
    ),
)


class LLM(str, Enum):
    offline = "offline"
    openai = "openai"


class Executor(str, Enum):
    local = "local"
    ray = "ray"


class Detail(str, Enum):
    low = "low"
    high = "high"
    auto = "auto"


def _opt(name: str, annotation: Any, default: Any, *flags: str, **kw) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(*flags, **kw)],
    )


#: Options shared by `run` and `retry` (one definition; see `_with_run_options`); the LLM transport's defaults are
#: OpenAIConfig's (fifa.core.llm), written there once.
RUN_OPTIONS = [
    _opt("llm", LLM, LLM.offline, help="Explainer backend."),
    _opt("base_url", Optional[str], None, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
    _opt("model", str, OpenAIConfig.model, help="Model name for --llm openai."),
    _opt("api_key_file", Optional[Path], None, dir_okay=False, help="File holding the API key (else OPENAI_API_KEY)."),
    _opt("concurrency", int, 8, help="LLM requests in flight."),
    _opt("workers", int, 0, help="CPU worker processes (0: all cores)."),
    _opt(
        "executor",
        Executor,
        Executor.local,
        help="Where CPU work runs: local processes, or Ray actors (pip install 'fifa-toolkit[ray]').",
    ),
    _opt(
        "ray_address",
        Optional[str],
        None,
        help="--executor ray: cluster to join ('auto', ray://host:10001); default starts a local one.",
    ),
    _opt("segmenter", BackendChoice, BackendChoice.mediapipe, help=backends_help("Landmarks of the tree regions")),
    _opt("timeout", float, OpenAIConfig.timeout, help="LLM request timeout (s)."),
    _opt("max_retries", int, OpenAIConfig.max_retries, help="Transport retries per request."),
    _opt(
        "retry_max_wait",
        float,
        OpenAIConfig.retry_max_wait,
        help="Longest wait between retries (s), Retry-After included.",
    ),
    _opt(
        "cache_dir",
        Optional[Path],
        None,
        file_okay=False,
        help="LLM response cache (default: $FIFA_CACHE_DIR/llm or ~/.cache/fifa-toolkit/llm).",
    ),
    _opt("no_cache", bool, False, "--no-cache", help="Do not read or write the LLM response cache."),
    _opt("max_cost", Optional[float], None, help="Stop cleanly once this many USD are spent."),
    _opt("price_in", float, OpenAIConfig.price_in_per_mtok, help="USD per 1M prompt tokens."),
    _opt("price_out", float, OpenAIConfig.price_out_per_mtok, help="USD per 1M completion tokens."),
    _opt("image_size", int, 512, help="Max side of the JPEGs sent to the LLM."),
    _opt("jpeg_quality", int, 85, help="JPEG quality of the images sent to the LLM."),
    _opt("image_detail", Detail, Detail(OpenAIConfig.image_detail), help="Image detail asked of the LLM."),
    _opt("diff_top_percent", float, 5.0, help="Seed share of strongest differences (published: 5)."),
    _opt(
        "noise_floor",
        float,
        0.5,
        help="Lowest noise floor (ΔE): the floor is measured on each pair (its own "
        "compression noise, per texture) and never set below this.",
    ),
    _opt("min_coverage", float, 0.30, help="A leaf at least this much covered is chosen."),
    _opt("min_share", float, 0.06, help="A leaf holding this share of the artifact is chosen (if >= 8% covered)."),
    _opt(
        "parent_fraction",
        float,
        0.5,
        help="A parent replaces its children when more than this share of them is chosen.",
    ),
    _opt(
        "data_root",
        Optional[Path],
        None,
        file_okay=False,
        help="Folder every manifest path must resolve inside (default: the manifest's folder).",
    ),
    _opt(
        "allow_outside_root",
        bool,
        False,
        "--allow-outside-root",
        help="Let manifest paths reach outside the data root ('..', absolute paths, symlinks).",
    ),
    _opt("shard_rows", int, 500, help="Rows per output shard."),
    _opt("limit", Optional[int], None, help="Annotate at most this many pending rows."),
    _opt("dry_run", bool, False, "--dry-run", help="Print what would be done and the cost estimate; no calls."),
    _opt("no_progress", bool, False, "--no-progress", help="No progress bar."),
    _opt("verbose", bool, False, "-v", "--verbose", help="Debug logging."),
]


def _with_run_options(func):
    """Give ``func(..., **kw)`` the shared run options as typer parameters (typer reads ``__signature__``)."""
    sig = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)  # resolve this module's string annotations
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in sig.parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    func.__signature__ = sig.replace(parameters=own + RUN_OPTIONS)
    return func


def _config(kw: dict):
    from fifa.core.llm import read_api_key
    from fifa.core.llm_cache import default_cache_dir

    from .diffmask import DiffConfig
    from .regions import RegionSelectConfig
    from .run import AnnotateConfig

    llm, executor = LLM(kw["llm"]).value, Executor(kw["executor"]).value
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError(
                "--executor ray needs Ray: pip install 'fifa-toolkit[ray]' (or use --executor local)"
            ) from None
    api_key = None
    if llm == "openai":
        try:
            api_key = read_api_key(kw["api_key_file"])
        except OSError as e:
            raise UserError(f"cannot read --api-key-file: {e.strerror}") from None
        if api_key is None and not kw["dry_run"] and kw["base_url"] is None:
            raise UserError("--llm openai needs OPENAI_API_KEY or --api-key-file (or a --base-url of a local server)")
    cache_dir = None if kw["no_cache"] else str(kw["cache_dir"] or default_cache_dir())
    if kw["concurrency"] < 1:
        raise UserError("--concurrency must be >= 1")
    segmenter = BackendChoice(kw["segmenter"]).value
    try:
        check_backend(segmenter)
    except BackendUnavailable as e:
        raise UserError(f"--segmenter {segmenter}: {e}") from None
    return AnnotateConfig(
        llm=llm,
        workers=kw["workers"],
        executor=executor,
        ray_address=kw["ray_address"],
        concurrency=kw["concurrency"],
        diff=DiffConfig(top_percent=kw["diff_top_percent"], noise_floor=kw["noise_floor"]),
        select=RegionSelectConfig(
            min_coverage=kw["min_coverage"], min_share=kw["min_share"], parent_fraction=kw["parent_fraction"]
        ),
        openai=OpenAIConfig(
            model=kw["model"],
            base_url=kw["base_url"],
            api_key=api_key,
            timeout=kw["timeout"],
            max_retries=kw["max_retries"],
            retry_max_wait=kw["retry_max_wait"],
            image_detail=Detail(kw["image_detail"]).value,
            price_in_per_mtok=kw["price_in"],
            price_out_per_mtok=kw["price_out"],
            cache_dir=cache_dir,
        ),
        llm_image_size=kw["image_size"],
        llm_jpeg_quality=kw["jpeg_quality"],
        shard_rows=kw["shard_rows"],
        data_root=str(kw["data_root"]) if kw["data_root"] else None,
        allow_outside_root=kw["allow_outside_root"],
        max_cost=kw["max_cost"],
        dry_run=kw["dry_run"],
        progress=not kw["no_progress"],
        limit=kw["limit"],
        segmenter=segmenter,
    )


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
