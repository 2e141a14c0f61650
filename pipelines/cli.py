"""`fifa-data`: dataset construction commands (typer, over the library API)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_utils import command, examples, make_app, run_app, setup_logging
from fifa.core.errors import UserError
from fifa.core.tasks import TASK_IDS
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
    import json

    info = json.loads((path.parent / "forge.json").read_text())
    skipped = (
        f", {info['skipped_faces']} face image(s) without a detectable face skipped" if info["skipped_faces"] else ""
    )
    typer.echo(
        f"wrote {path}: {info['fakes']} fakes, {info['bases']} real bases, "
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


# the long options of `fifa-data build`
_Annotations = Annotated[
    list[Path],
    typer.Option(
        help="Annotation folder of fifa-annotate run (repeatable: several runs make one dataset).",
        exists=True,
        file_okay=False,
        metavar="DIR",
    ),
]
_SplitRatios = Annotated[
    str,
    typer.Option(
        help="train,validation,test shares of the split units (groups linked by identities; from 3 units on each split "
        "gets one)."
    ),
]
_Review = Annotated[
    list[Path] | None,
    typer.Option(
        help="Review file of fifa-data view (repeatable: one per reviewer): rejected annotations are left out.",
        exists=True,
        dir_okay=False,
        metavar="FILE",
    ),
]
_ReviewRule = Annotated[
    str,
    typer.Option(
        help="How several reviewers' decisions combine: all (kept only if every reviewer who decided accepted), "
        "majority (more accepts than rejects), any (one accept)."
    ),
]
_ExtraQA = Annotated[
    list[Path] | None,
    typer.Option(
        help="<manifest stem>.qa.parquet of an importer (repeatable).", exists=True, dir_okay=False, metavar="FILE"
    ),
]


@command(
    app,
    "fifa-data build --annotations ann/ --out build/ --seed 0",
    "fifa-data build --annotations ffpp_ann/ --annotations celebdf_ann/ --out build/ --review review.json",
    "fifa-data build --annotations ann/ --out build/ --review ana.json --review ben.json --review-rule majority",
    "fifa-data build --annotations ann/ --out build/ --tasks det,cls,age --split-ratios 0.7,0.1,0.2",
    "fifa-data build --annotations ann/ --out build/ --fc-llm openai --model gpt-4o-mini --fc-max-cost 5",
)
def build(
    annotations: _Annotations,
    out: Annotated[Path, typer.Option(help="Build folder to write (replaced if it is a build).", file_okay=False)],
    seed: Annotated[int, typer.Option(help="Seed of every choice (templates, queries, splits).")] = 0,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks.")] = ",".join(TASK_IDS),
    split_ratios: _SplitRatios = "0.8,0.1,0.1",
    rq_queries: Annotated[int, typer.Option(help="Positive region queries per fake and rq task (at most).")] = 3,
    negative_fraction: Annotated[float, typer.Option(help="Share of negative region queries of a fake.")] = 1 / 3,
    real_queries: Annotated[int, typer.Option(help="Negative region queries per real image and rq task.")] = 2,
    bench_per_class: Annotated[
        int, typer.Option(help="At most this many bench questions per task and class (0: no cap).")
    ] = 500,
    bench_cls: Annotated[str, typer.Option(help="cls bench question: method | category.")] = "method",
    methods: Annotated[
        Path | None, typer.Option(help="Extra methods YAML (definitions for cls answers).", exists=True, dir_okay=False)
    ] = None,
    review: _Review = None,
    review_rule: _ReviewRule = "all",
    extra_qa: _ExtraQA = None,
    image_root: Annotated[
        Path | None,
        typer.Option(help="Folder image paths are stored relative to (default: the common folder of all images)."),
    ] = None,
    fc_llm: Annotated[str, typer.Option(help="fc conversations: offline | openai.")] = "offline",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (fc).")] = None,
    model: Annotated[str, typer.Option(help="Model name (fc).")] = "gpt-4o-mini",
    api_key_file: Annotated[
        Path | None, typer.Option(help="File holding the API key (else $OPENAI_API_KEY).", exists=True, dir_okay=False)
    ] = None,
    fc_concurrency: Annotated[int, typer.Option(help="Requests in flight (fc).")] = 8,
    fc_max_cost: Annotated[float | None, typer.Option(help="Budget in USD for fc requests.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Response cache (default $FIFA_CACHE_DIR/llm).")] = None,
    progress: Annotated[bool, typer.Option(help="Progress bar.")] = True,
    verbose: Annotated[bool, typer.Option("-v", "--verbose")] = False,
) -> int:
    """Instruction data (train/validation), the bench (test) and statistics from annotation folders.

    Writes BUILD/instruct/{train,validation}.parquet, BUILD/bench.parquet, BUILD/annotations/,
    BUILD/stats.json and BUILD/build.json. Exit 1 when fc conversations were left out (budget, failures).
    """
    setup_logging(verbose)
    from .build import BuildError
    from .build import build as run_build
    from .build_options import build_config, summary_line

    try:
        config = build_config(
            seed=seed,
            tasks=tasks,
            split_ratios=split_ratios,
            rq_queries=rq_queries,
            negative_fraction=negative_fraction,
            real_queries=real_queries,
            bench_per_class=bench_per_class,
            bench_cls=bench_cls,
            methods=methods,
            review=review,
            review_rule=review_rule,
            extra_qa=extra_qa,
            image_root=image_root,
            fc_llm=fc_llm,
            base_url=base_url,
            model=model,
            api_key_file=api_key_file,
            fc_concurrency=fc_concurrency,
            fc_max_cost=fc_max_cost,
            cache_dir=cache_dir,
        )
        s = run_build([str(a) for a in annotations], out, config, progress=progress)
    except BuildError as e:
        raise UserError(str(e)) from None
    for w in s.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(summary_line(s))
    return 0 if s.complete else 1


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
    format: Annotated[str, typer.Option(help="llava | llamafactory | swift | glamm.")],
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
