"""`fifa-annotate`: run, retry, show."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from fifa.cli_utils import EXIT_FAILED, EXIT_OK, UserError, handle_errors, setup_logging

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """FiFa-Annotator: real/fake pairs -> artifact mask -> tree regions -> grounded explanation.

    \b
    Example:
      fifa-annotate run --manifest data/manifest.parquet --out ann/
      fifa-annotate retry ann/
      fifa-annotate show ann/ fake_00001_blur --out fake1.png
    """


def _common_run_options(f):
    opts = [
        click.option("--llm", type=click.Choice(["offline", "openai"]), default="offline", show_default=True,
                     help="Explainer backend."),
        click.option("--base-url", default=None, help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
        click.option("--model", default="gpt-4o", show_default=True, help="Model name for --llm openai."),
        click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
                     help="File holding the API key (else OPENAI_API_KEY)."),
        click.option("--concurrency", type=int, default=8, show_default=True, help="LLM requests in flight."),
        click.option("--workers", type=int, default=0, show_default=True, help="CPU worker processes (0: all cores)."),
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="Where CPU work runs: local processes, or Ray actors (pip install 'fifa-toolkit[ray]')."),
        click.option("--ray-address", default=None,
                     help="--executor ray: cluster to join ('auto', ray://host:10001); default starts a local one."),
        click.option("--timeout", type=float, default=60.0, show_default=True, help="LLM request timeout (s)."),
        click.option("--max-retries", type=int, default=5, show_default=True, help="Transport retries per request."),
        click.option("--retry-max-wait", type=float, default=60.0, show_default=True,
                     help="Longest wait between retries (s), Retry-After included."),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="LLM response cache (default: $FIFA_CACHE_DIR/llm or ~/.cache/fifa-toolkit/llm)."),
        click.option("--no-cache", is_flag=True, help="Do not read or write the LLM response cache."),
        click.option("--max-cost", type=float, default=None, help="Stop cleanly once this many USD are spent."),
        click.option("--price-in", type=float, default=2.50, show_default=True, help="USD per 1M prompt tokens."),
        click.option("--price-out", type=float, default=10.00, show_default=True, help="USD per 1M completion tokens."),
        click.option("--image-size", type=int, default=512, show_default=True,
                     help="Max side of the JPEGs sent to the LLM."),
        click.option("--jpeg-quality", type=int, default=85, show_default=True),
        click.option("--image-detail", type=click.Choice(["low", "high", "auto"]), default="low", show_default=True),
        click.option("--diff-top-percent", type=float, default=5.0, show_default=True,
                     help="Seed share of strongest differences (published: 5)."),
        click.option("--noise-floor", type=float, default=4.0, show_default=True,
                     help="Absolute difference floor (ΔE) below which nothing is an artifact."),
        click.option("--min-coverage", type=float, default=0.30, show_default=True,
                     help="A leaf at least this much covered is chosen."),
        click.option("--min-share", type=float, default=0.06, show_default=True,
                     help="A leaf holding this share of the artifact is chosen (if >= 8%% covered)."),
        click.option("--parent-fraction", type=float, default=0.5, show_default=True,
                     help="A parent replaces its children when more than this share of them is chosen."),
        click.option("--shard-rows", type=int, default=500, show_default=True, help="Rows per output shard."),
        click.option("--limit", type=int, default=None, help="Annotate at most this many pending rows."),
        click.option("--dry-run", is_flag=True, help="Print what would be done and the cost estimate; no calls."),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
        click.option("-v", "--verbose", is_flag=True),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _config(kw: dict):
    from .diffmask import DiffConfig
    from .explain_openai import OpenAIConfig, read_api_key
    from .regions import RegionSelectConfig
    from .run import AnnotateConfig
    from .cache import default_cache_dir

    if kw["executor"] == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'fifa-toolkit[ray]' (or use --executor local)") from None
    api_key = None
    if kw["llm"] == "openai":
        try:
            api_key = read_api_key(kw["api_key_file"])
        except OSError as e:
            raise UserError(f"cannot read --api-key-file: {e.strerror}") from None
        if api_key is None and not kw["dry_run"] and kw["base_url"] is None:
            raise UserError("--llm openai needs OPENAI_API_KEY or --api-key-file (or a --base-url of a local server)")
    cache_dir = None if kw["no_cache"] else str(kw["cache_dir"] or default_cache_dir())
    if kw["concurrency"] < 1:
        raise UserError("--concurrency must be >= 1")
    return AnnotateConfig(
        llm=kw["llm"],
        workers=kw["workers"],
        executor=kw["executor"],
        ray_address=kw["ray_address"],
        concurrency=kw["concurrency"],
        diff=DiffConfig(top_percent=kw["diff_top_percent"], noise_floor=kw["noise_floor"]),
        select=RegionSelectConfig(min_coverage=kw["min_coverage"], min_share=kw["min_share"],
                                  parent_fraction=kw["parent_fraction"]),
        openai=OpenAIConfig(model=kw["model"], base_url=kw["base_url"], api_key=api_key, timeout=kw["timeout"],
                            max_retries=kw["max_retries"], retry_max_wait=kw["retry_max_wait"],
                            image_detail=kw["image_detail"], price_in_per_mtok=kw["price_in"],
                            price_out_per_mtok=kw["price_out"], cache_dir=cache_dir),
        llm_image_size=kw["image_size"],
        llm_jpeg_quality=kw["jpeg_quality"],
        shard_rows=kw["shard_rows"],
        max_cost=kw["max_cost"],
        dry_run=kw["dry_run"],
        progress=not kw["no_progress"],
        limit=kw["limit"],
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
    if summary.total and summary.ok == 0 and summary.counts:
        return EXIT_FAILED
    return EXIT_OK


@cli.command()
@click.option("--manifest", type=click.Path(dir_okay=False), default=None,
              help="Manifest (.parquet/.csv/.jsonl) of pairs to annotate.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder (resumed if it exists).")
@click.option("--demo", is_flag=True, help="Forge sample pairs from the bundled public-domain photos and annotate them.")
@_common_run_options
@handle_errors
def run(manifest, out, demo, verbose, **kw):
    """Annotate every row of a manifest; rerunning on the same --out resumes.

    \b
    Examples:
      fifa-annotate run --manifest pairs.parquet --out ann/
      fifa-annotate run --manifest pairs.csv --out ann/ --llm openai --model gpt-4o --concurrency 16 --max-cost 5
      fifa-annotate run --manifest pairs.csv --out ann/ --llm openai --base-url http://localhost:8000/v1 --model qwen2-vl
      fifa-annotate run --demo --out demo_ann/
      fifa-annotate run --manifest pairs.parquet --out ann/ --executor ray --ray-address auto
    """
    setup_logging(verbose)
    from .executors import ExecutorUnavailable
    from .manifest import ManifestError
    from .run import run_annotation

    cfg = _config(kw)
    if demo:
        if manifest:
            raise UserError("use either --manifest or --demo")
        manifest = _demo_manifest(Path(out))
    if not manifest:
        raise UserError("--manifest is required (or --demo)")
    try:
        summary = run_annotation(manifest, out, cfg)
    except (ManifestError, ExecutorUnavailable) as e:
        raise UserError(str(e)) from None
    sys.exit(_report(summary, cfg.dry_run))


def _demo_manifest(out: Path) -> Path:
    """Forge a few pairs from the bundled photos into OUT/demo_data."""
    from .forge import forge

    data = out / "demo_data"
    if (data / "manifest.parquet").is_file():
        return data / "manifest.parquet"
    return forge(data, n=12, seed=0, base_tags=("crop1.9_384", "crop1.9_384_mirror", "crop2.6_384"))


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--manifest", type=click.Path(dir_okay=False), default=None,
              help="Manifest to use (default: the copy the run kept in OUT_DIR).")
@_common_run_options
@handle_errors
def retry(out_dir, manifest, verbose, **kw):
    """Re-attempt the rows that failed in OUT_DIR (replacing them; each sample stays once).

    \b
    Example:
      fifa-annotate retry ann/ --llm openai --base-url http://localhost:8000/v1
    """
    setup_logging(verbose)
    from .executors import ExecutorUnavailable
    from .run import run_annotation

    cfg = _config(kw)
    man = Path(manifest) if manifest else Path(out_dir) / "manifest.resolved.parquet"
    if not man.is_file():
        raise UserError(f"no manifest: {man} (pass --manifest)")
    try:
        summary = run_annotation(man, out_dir, cfg, retry=True)
    except ExecutorUnavailable as e:
        raise UserError(str(e)) from None
    sys.exit(_report(summary, cfg.dry_run))


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("sample_id")
@click.option("--out", "out_png", type=click.Path(dir_okay=False), required=True, help="PNG to write.")
@handle_errors
def show(out_dir, sample_id, out_png):
    """Draw the fake, its source, the artifact mask and the labelled regions side by side.

    \b
    Example:
      fifa-annotate show ann/ fake_00003_blur --out fake3.png
    """
    from .show import find_row, render

    row = find_row(out_dir, sample_id)
    if row is None:
        raise UserError(f"sample {sample_id!r} not found in {out_dir}")
    p = render(row, out_png)
    click.echo(str(p))


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
