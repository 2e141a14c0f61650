"""`fifa-data`: dataset construction commands."""

from __future__ import annotations

import click

from fifa.cli_utils import UserError, handle_errors, setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Build XDFA datasets: pseudo-forgeries, imports, instruction data, releases.

    \b
    Example:
      fifa-data forge --out forged/ --n 60 --seed 1
    """


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--n", type=int, default=60, show_default=True, help="Number of fakes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same output).")
@click.option("--faces", type=click.Path(exists=True), default=None,
              help="Extra folder (or file) of real face images used as bases.")
@click.option("--jpeg-fraction", type=float, default=0.25, show_default=True,
              help="Share of fakes saved as high-quality JPEG instead of PNG.")
@click.option("-v", "--verbose", is_flag=True)
@handle_errors
def forge(out, n, seed, faces, jpeg_fraction, verbose):
    """Pseudo-forgeries with exact ground truth (SBI blends and region-targeted edits).

    Writes OUT/manifest.parquet (manifest columns + truth, truth_target, truth_mask, edit),
    OUT/images/{real,fake}/ and OUT/masks/ (ground-truth PNGs).

    \b
    Example:
      fifa-data forge --out forged/ --n 200 --seed 3 --faces my_faces/
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
    click.echo(f"wrote {path}: {t.count('fake')} fakes, {t.count('real')} real sources")


def main() -> None:
    cli()


if __name__ == "__main__":  # pragma: no cover
    main()
