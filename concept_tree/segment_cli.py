"""`fifa-tree segment`: segment images into concept regions (Parquet + overlay PNGs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fifa.cli_utils import EXIT_FAILED, UserError, handle_errors

from .batch import BatchOptions, image_tasks, segment_folder
from .imageio import list_images


def _level(value: str):
    if value in ("anchor", "leaf"):
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter("use 'anchor', 'leaf' or a tree depth (0 = root)") from None


@click.command(
    name="segment",
    epilog="""Example:

  fifa-tree segment photos/ --out regions_out --level anchor

Writes regions_out/regions.parquet (image, face_index, node_id, mask RLE, area),
regions_out/images.parquet (status and reason per image) and regions_out/overlays/*.png.
Exit code 0 when at least one image was segmented, 1 when none was, 2 for usage errors.""",
)
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--all-faces", is_flag=True, help="Segment every face (face_index in the output), not only the largest.")
@click.option("--no-overlays", is_flag=True, help="Skip the overlay PNGs.")
@click.option("--level", default="anchor", show_default=True, help="Overlay colouring: anchor, leaf, or a tree depth.")
@click.option("--workers", default=0, show_default=True, help="Worker processes (0: one per core).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def segment(source: Path, out_dir: Path, all_faces: bool, no_overlays: bool, level: str, workers: int, quiet: bool):
    """Segment a face image or a folder of images into Facial Image Concept Tree regions."""
    if not source.exists():
        raise UserError(f"no such file or folder: {source}")
    files = list_images(source)
    if not files:
        raise UserError(f"no images found in {source}")
    opts = BatchOptions(all_faces=all_faces, overlays=not no_overlays, level=_level(level), workers=workers)
    summary = segment_folder(image_tasks(source, files), out_dir, opts, progress=not quiet and sys.stderr.isatty())
    _report(summary, out_dir)
    if not summary.succeeded:
        sys.exit(EXIT_FAILED)


def _report(summary, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    t = Table(title=f"fifa-tree segment → {out_dir}")
    for col in ("images", "ok", "no face", "failed", "faces", "seconds"):
        t.add_column(col, justify="right")
    t.add_row(str(summary.total), str(summary.ok), str(summary.no_face), str(summary.failed), str(summary.faces),
              f"{summary.seconds:.1f}")  # fmt: skip
    console.print(t)
    for image, reason in summary.failures[:20]:
        console.print(f"  [yellow]{image}[/]: {reason}")
    if len(summary.failures) > 20:
        console.print(f"  ... and {len(summary.failures) - 20} more (see images.parquet)")
