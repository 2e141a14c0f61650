"""`fifa-tree segment`: segment images into concept regions (Parquet + overlay PNGs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fifa.core.errors import EXIT_FAILED, UserError

from ..imageio import list_images
from .backends import BackendChoice, backends_help
from .batch import BatchOptions, image_tasks, segment_folder
from .landmarks import BackendUnavailable

SEGMENT_EXAMPLES = (
    "fifa-tree segment photos/ --out regions_out --level anchor",
    "fifa-tree segment face.jpg --out one --level leaf --no-overlays",
    "fifa-tree segment photos/ --out dlib_out --backend dlib68",
    "fifa-tree segment crops/ --out faces_only --face-only --no-overlays",
)


def _level(value: str):
    if value in ("anchor", "leaf"):
        return value
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter("use 'anchor', 'leaf' or a tree depth (0 = root)") from None


def segment(
    source: Annotated[Path, typer.Argument(help="A face image or a folder of images.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")],
    all_faces: Annotated[
        bool, typer.Option("--all-faces", help="Segment every face (face_index in the output), not only the largest.")
    ] = False,
    no_overlays: Annotated[bool, typer.Option("--no-overlays", help="Skip the overlay PNGs.")] = False,
    level: Annotated[str, typer.Option(help="Overlay colouring: anchor, leaf, or a tree depth.")] = "anchor",
    face_only: Annotated[
        bool,
        typer.Option(
            "--face-only",
            help="Only the face concepts (no person model: faster); ears, hair, neck and background are left out.",
        ),
    ] = False,
    pose: Annotated[
        bool,
        typer.Option(
            "--pose",
            help="Also run MediaPipe Pose for the shoulder line and ear points (about 5x the time of FaceMesh).",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes (0: one per core).")] = 0,
    backend: Annotated[BackendChoice, typer.Option(help=backends_help())] = BackendChoice.mediapipe,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Segment a face image or a folder of images into Facial Image Concept Tree regions.

    Writes OUT/regions.parquet (image, face_index, node_id, mask RLE, area), OUT/images.parquet
    (status and reason per image) and OUT/overlays/*.png. Exit code 0 when at least one image was
    segmented, 1 when none was, 2 for usage errors.
    """
    lvl = _level(level)
    if not source.exists():
        raise UserError(f"no such file or folder: {source}")
    files = list_images(source)
    if not files:
        raise UserError(f"no images found in {source}")
    if face_only and pose:
        raise UserError("--pose has no use with --face-only (the pose model only places off-face concepts)")
    opts = BatchOptions(
        all_faces=all_faces,
        overlays=not no_overlays,
        level=lvl,
        workers=workers,
        backend=BackendChoice(backend).value,
        outside_face=not face_only,
        pose=pose,
    )
    try:
        summary = segment_folder(image_tasks(source, files), out_dir, opts, progress=not quiet and sys.stderr.isatty())
    except BackendUnavailable as e:
        raise UserError(str(e)) from None
    _report(summary, out_dir)
    if not summary.succeeded:
        raise typer.Exit(EXIT_FAILED)


def _report(summary, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    t = Table(title=f"fifa-tree segment → {out_dir}")
    for col in ("images", "ok", "no face", "failed", "faces", "seconds"):
        t.add_column(col, justify="right")
    t.add_row(
        str(summary.total),
        str(summary.ok),
        str(summary.no_face),
        str(summary.failed),
        str(summary.faces),
        f"{summary.seconds:.1f}",
    )
    console.print(t)
    for image, reason in summary.failures[:20]:
        console.print(f"  [yellow]{image}[/]: {reason}")
    if len(summary.failures) > 20:
        console.print(f"  ... and {len(summary.failures) - 20} more (see images.parquet)")
