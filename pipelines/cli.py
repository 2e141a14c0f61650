"""`fifa-data`: dataset construction commands (typer, over the library API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fifa.cli_utils import UserError, command, examples, make_app, run_app, setup_logging
from fifa.pipelines.import_cli import import_app

app = make_app(
    "Build XDFA datasets: pseudo-forgeries, imports, instruction data, exports, releases, a viewer.",
    epilog=examples("fifa-data forge --out forged/ --n 60 --seed 1"),
)
app.add_typer(import_app, name="import")


@command(app, "fifa-data forge --out forged/ --n 200 --seed 3 --faces my_faces/")
def forge(
    out: Annotated[Path, typer.Option(help="Output folder.", file_okay=False)],
    n: Annotated[int, typer.Option(help="Number of fakes.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 0,
    faces: Annotated[Optional[Path], typer.Option(help="Extra folder (or file) of real face images used as bases.",
                                                  exists=True)] = None,
    jpeg_fraction: Annotated[float, typer.Option(help="Share of fakes saved as high-quality JPEG instead of PNG.")] = 0.25,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Pseudo-forgeries with exact ground truth (SBI blends and region-targeted edits).

    Writes OUT/manifest.parquet (manifest columns + truth, truth_target, truth_mask, edit),
    OUT/images/{real,fake}/ and OUT/masks/ (ground-truth PNGs).
    """
    setup_logging(verbose)
    from fifa.annotator.forge import forge as run_forge

    if n < 0:
        raise UserError("--n must be >= 0")
    try:
        path = run_forge(out, n=n, seed=seed, faces=faces, jpeg_fraction=jpeg_fraction)
    except ValueError as e:
        raise UserError(str(e)) from None
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["label"]).column("label").to_pylist()
    typer.echo(f"wrote {path}: {t.count('fake')} fakes, {t.count('real')} real sources")


@command(app, "fifa-data view annotated/ --out site/", "fifa-data view build/ --out site/ --page-size 100 --max-side 384")
def view(
    src: Annotated[Path, typer.Argument(help="An annotation run, a build or a release folder.", exists=True,
                                        file_okay=False)],
    out: Annotated[Path, typer.Option(help="Site folder to write (open OUT/index.html in a browser).", file_okay=False)],
    page_size: Annotated[int, typer.Option(help="Samples per data file and per page of the list.")] = 50,
    max_side: Annotated[int, typer.Option(help="Images are downscaled to at most this many pixels (long side).")] = 512,
    image_root: Annotated[Optional[Path], typer.Option(help="Folder that relative image paths of a build or "
                                                            "release are relative to.", file_okay=False)] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """A static review site (no server): filters, masks over each image, grounded explanations, QA rows,
    and a review mode whose decisions download as a JSON file for `fifa-data build --review FILE`."""
    setup_logging(verbose)
    from fifa.pipelines.viewer import SiteError, SourceError, ViewerConfig, build_site

    try:
        s = build_site(src, out, ViewerConfig(page_size=page_size, max_side=max_side, image_root=image_root))
    except (SiteError, SourceError) as e:
        raise UserError(str(e)) from None
    typer.echo(f"wrote {s.out}/index.html: {s.samples} samples ({s.kind}) on {s.pages} pages, {s.images} images, "
               f"{s.samples_with_warnings} samples with warnings, {s.missing_images} without an image")
    if s.samples == 0:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-data")


if __name__ == "__main__":  # pragma: no cover
    main()
