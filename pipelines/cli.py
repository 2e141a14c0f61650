"""`fifa-data`: dataset construction commands (typer, over the library API)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_utils import command, examples, make_app, run_app, setup_logging
from fifa.core.errors import UserError
from fifa.pipelines.build_cli import BUILD_EXAMPLES, build
from fifa.pipelines.export import FORMATS
from fifa.pipelines.import_cli import import_app

app = make_app(
    "Build XDFA datasets: pseudo-forgeries, imports, instruction data, exports, releases, a viewer.",
    epilog=examples("fifa-data forge --out forged/ --n 60 --seed 1"),
)
app.add_typer(import_app, name="import")


class Identities(str, Enum):
    bundled = "bundled"
    lfw = "lfw"
    all = "all"


@command(app, "fifa-data forge --out forged/ --n 200 --seed 3 --identities lfw --identity-size 256")
def forge(
    out: Annotated[Path, typer.Option(help="Output folder.", file_okay=False)],
    n: Annotated[int, typer.Option(help="Number of fakes.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 0,
    identities: Annotated[
        Identities,
        typer.Option(
            help="Base faces: bundled (two public-domain photos and their "
            "variants), lfw (the 100 faces of scikit-image's lfw_subset, "
            "one identity each) or all."
        ),
    ] = Identities.bundled,
    identity_size: Annotated[int, typer.Option(help="Side (px) the 25x25 lfw faces are upscaled to.")] = 256,
    max_identities: Annotated[int | None, typer.Option(help="Use at most this many lfw faces.")] = None,
    faces: Annotated[
        Path | None, typer.Option(help="Extra folder (or file) of real face images used as bases.", exists=True)
    ] = None,
    kinds: Annotated[
        str | None, typer.Option(help="Comma-separated edit kinds (default: all; see docs/forge.md).")
    ] = None,
    jpeg_fraction: Annotated[
        float, typer.Option(help="Share of fakes saved as high-quality JPEG (source PNG).")
    ] = 0.25,
    jpeg_pair_fraction: Annotated[
        float, typer.Option(help="Share of fakes whose fake and source are both re-encoded as JPEG (q 75-95).")
    ] = 0.15,
    reencoded_fraction: Annotated[
        float, typer.Option(help="Re-encoded-only pairs (not forgeries, label real), as a share of --n.")
    ] = 0.1,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> None:
    """Pseudo-forgeries with exact ground truth (SBI blends, region edits, subtle edits, JPEG pairs).

    Writes OUT/manifest.parquet (manifest columns + truth, truth_target, truth_mask, edit, pair_kind),
    OUT/images/{real,fake}/, OUT/masks/ (ground-truth PNGs) and OUT/forge.json (counts, skipped faces).
    """
    setup_logging(verbose)
    from fifa.annotator.forge import forge as run_forge

    if n < 0:
        raise UserError("--n must be >= 0")
    try:
        path = run_forge(
            out,
            n=n,
            seed=seed,
            faces=faces,
            jpeg_fraction=jpeg_fraction,
            identities=identities.value,
            identity_size=identity_size,
            max_identities=max_identities,
            kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None,
            jpeg_pair_fraction=jpeg_pair_fraction,
            reencoded_fraction=reencoded_fraction,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    typer.echo(_forge_report(path))


def _forge_report(manifest: Path) -> str:
    """What a forge made, from the forge.json beside its manifest."""
    import json

    info = json.loads((manifest.parent / "forge.json").read_text())
    skipped = (
        f", {info['skipped_faces']} face image(s) without a detectable face skipped" if info["skipped_faces"] else ""
    )
    return (
        f"wrote {manifest}: {info['fakes']} fakes, {info['bases']} real bases, "
        f"{info['reencoded_rows']} re-encoded real rows{skipped}"
    )


@command(
    app, "fifa-data view annotated/ --out site/", "fifa-data view build/ --out site/ --page-size 100 --max-side 384"
)
def view(
    src: Annotated[
        Path, typer.Argument(help="An annotation run, a build or a release folder.", exists=True, file_okay=False)
    ],
    out: Annotated[
        Path, typer.Option(help="Site folder to write (open OUT/index.html in a browser).", file_okay=False)
    ],
    page_size: Annotated[int, typer.Option(help="Samples per data file and per page of the list.")] = 50,
    max_side: Annotated[int, typer.Option(help="Images are downscaled to at most this many pixels (long side).")] = 512,
    image_root: Annotated[
        Path | None,
        typer.Option(help="Folder that relative image paths of a build or release are relative to.", file_okay=False),
    ] = None,
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
    typer.echo(
        f"wrote {s.out}/index.html: {s.samples} samples ({s.kind}) on {s.pages} pages, {s.images} images, "
        f"{s.samples_with_warnings} samples with warnings, {s.missing_images} without an image"
    )
    if s.samples == 0:
        raise typer.Exit(1)


command(app, *BUILD_EXAMPLES)(build)  # `fifa-data build` (pipelines/build_cli.py), listed here after view


@command(
    app,
    "fifa-data review-stats ana.json ben.json cem.json",
    "fifa-data review-stats ana.json ben.json --annotations ann/ --json agreement.json",
)
def review_stats(
    files: Annotated[
        list[Path],
        typer.Argument(help="Review files of fifa-data view, one per reviewer.", exists=True, dir_okay=False),
    ],
    annotations: Annotated[
        list[Path] | None,
        typer.Option(
            help="Annotation folder(s): agreement of each reviewer with the annotator's status.",
            exists=True,
            file_okay=False,
            metavar="DIR",
        ),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures as JSON.", dir_okay=False)
    ] = None,
    show: Annotated[int, typer.Option(help="Disputed samples listed.")] = 20,
) -> None:
    """Agreement between reviewers: Cohen's kappa per pair, Fleiss' kappa, agreement with the annotator's status,
    and the disputed samples (reviewers disagree)."""
    from .review_stats import review_stats as run_stats

    rep = run_stats([str(f) for f in files], [str(a) for a in annotations or ()])
    for line in rep.lines(show):
        typer.echo(line)
    if json_out:
        from .parquet_io import write_json

        write_json(rep.figures, json_out)


@command(
    app,
    "fifa-data export --build build/ --format llava --out exports/",
    "fifa-data export --build build/ --format llamafactory --out exports/",
)
def export(
    build: Annotated[Path, typer.Option(help="Build folder.", exists=True, file_okay=False)],
    format: Annotated[str, typer.Option(help=" | ".join(FORMATS) + ".")],
    out: Annotated[Path, typer.Option(help="Export folder (images/ shared by every format).", file_okay=False)],
) -> None:
    """The instruction data in LLaVA, LLaMA-Factory, ms-swift or GLaMM format (docs/export.md)."""
    from .export import ExportError
    from .export import export as run_export

    try:
        s = run_export(build, format, out)
    except ExportError as e:
        raise UserError(str(e)) from None
    typer.echo(
        f"wrote {s.out}: {s.format} {s.rows}, {s.images} images"
        + (f"; not carried by the format: {s.skipped}" if s.skipped else "")
    )
    if s.empty:
        typer.echo(
            f"left out: split(s) {', '.join(s.empty)} (no row to export; no file written or registered)", err=True
        )


@command(
    app,
    "fifa-data release --build build/ --version 1.0 --out release/",
    "fifa-data release --build build/ --version 1.0 --out release/ --images embed",
)
def release(
    build: Annotated[Path, typer.Option(help="Build folder.", exists=True, file_okay=False)],
    version: Annotated[str, typer.Option(help="Release version (in the card and MANIFEST.json).")],
    out: Annotated[Path, typer.Option(help="Release folder to write (replaced if it is a release).", file_okay=False)],
    images: Annotated[
        str, typer.Option(help="reference (paths relative to the image root) | embed (bytes).")
    ] = "reference",
    max_shard_mb: Annotated[int, typer.Option(help="Shard size limit in MB.")] = 256,
    date: Annotated[str | None, typer.Option(help="Date written into the card (none by default).")] = None,
    sources: Annotated[
        Path | None,
        typer.Option(
            help="Extra source collections YAML (licences, how to get the images).", exists=True, dir_okay=False
        ),
    ] = None,
) -> None:
    """A Hugging Face dataset folder: data/<config>/<split>-*.parquet, README.md card, MANIFEST.json."""
    from .release import ReleaseConfig, ReleaseError
    from .release import release as run_release

    try:
        s = run_release(
            build,
            out,
            ReleaseConfig(
                version=version,
                images=images,
                max_shard_bytes=max_shard_mb << 20,
                date=date,
                sources=str(sources) if sources else None,
            ),
        )
    except ReleaseError as e:
        raise UserError(str(e)) from None
    typer.echo(f"wrote {s.out}: {len(s.files)} files; rows {s.rows}")
    for name, splits in s.empty.items():
        typer.echo(f"left out: {name} {', '.join(splits)} (no row; not registered in the card)", err=True)


@command(app, "fifa-data validate release/")
def validate(
    release: Annotated[Path, typer.Argument(help="Release folder.", exists=True, file_okay=False)],
    max_problems: Annotated[int, typer.Option(help="Problems listed per kind.")] = 50,
) -> int:
    """Check a release: checksums, schemas, masks, mark/mask correspondence, split leakage. Exit 1 on problems."""
    from .validate import validate as run_validate

    rep = run_validate(release, max_problems=max_problems)
    for line in rep.notes:
        typer.echo(f"note: {line}")
    for line in rep.lines():
        typer.echo(line)
    checked = ", ".join(f"{v} {k}" for k, v in sorted(rep.checked.items()))
    if rep.ok:
        typer.echo(f"ok: {release} ({checked})")
        return 0
    typer.echo(f"{len(rep.problems) + sum(rep.suppressed.values())} problem(s) in {release} ({checked})", err=True)
    return 1


def main(argv: list[str] | None = None) -> None:
    run_app(app, argv, prog_name="fifa-data")


if __name__ == "__main__":  # pragma: no cover
    main()
