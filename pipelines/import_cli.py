"""`fifa-data import {ffpp|deepfakebench|ddvqa|folders}`: thin typer layer over :mod:`fifa.pipelines.importers`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from fifa.cli_utils import command, examples, make_app, setup_logging
from fifa.core.errors import EXIT_FAILED, EXIT_OK, UserError

import_app = make_app(
    "Import public collections into a manifest (paths relative to the manifest's folder).",
    epilog=examples(
        "fifa-data import ffpp /data/FaceForensics++ --out data/ffpp.parquet --frames 32",
        "fifa-data import folders my_set/ --out my_set/manifest.parquet",
    ),
)

OutOpt = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Manifest to write (.parquet, .csv or .jsonl); a report "
        "<stem>.import.json with every failure goes next to it.",
        dir_okay=False,
    ),
]
MethodsOpt = Annotated[
    Path | None,
    typer.Option(
        "--methods",
        help="YAML file extending the method -> category table (default: $FIFA_METHODS).",
        exists=True,
        dir_okay=False,
    ),
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Exit 1 when anything failed (default: only when nothing was imported).")
]
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose")]


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Library errors that are the user's (wrong folder, unknown method, bad option) -> exit 2."""
    from fifa.pipelines.importers import ImportLayoutError
    from fifa.pipelines.manifest import ManifestError
    from fifa.pipelines.methods import MethodTableError, UnknownMethodError

    try:
        yield
    except (ImportLayoutError, UnknownMethodError, MethodTableError, ManifestError) as e:
        raise UserError(str(e)) from None


def _config(make: Callable[[], object]):
    """A config dataclass; its validation errors (bad option values) are the user's."""
    try:
        return make()
    except ValueError as e:
        raise UserError(str(e)) from None


def _finish(report, strict: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title=f"fifa-data import {report.importer}: {report.manifest}")
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("rows", str(report.rows))
    for k, v in sorted(report.labels.items()):
        t.add_row(f"  {k}", str(v))
    for k, v in sorted(report.methods.items()):
        t.add_row(f"  method {k}", str(v))
    t.add_row("failures", str(len(report.failures)))
    for k, v in report.failure_counts().items():
        t.add_row(f"  {k}", str(v))
    for k, v in report.stats.items():
        t.add_row(k, f"{v:g}" if isinstance(v, float) else str(v))
    t.add_row("time (s)", f"{report.elapsed_s:.1f}")
    con.print(t)
    for f in report.failures[:5]:
        con.print(f"[red]failed[/red] {f.item}: {f.reason}", markup=True, highlight=False)
    if len(report.failures) > 5:
        con.print(f"... {len(report.failures) - 5} more in {report.files['report']}", highlight=False)
    for n in report.notes:
        con.print(f"note: {n}", highlight=False)
    for role, path in report.files.items():
        con.print(f"{role}: {path}", highlight=False)
    if not report.ok or (strict and report.failures):
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


@contextlib.contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int, int], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[frames]} frames"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=None, frames=0)

        def update(done: int, total: int, frames: int) -> None:
            bar.update(task, completed=done, total=total, frames=frames)

        yield update


# fifa-data import ffpp's longer options (declared here so that the command reads as its list of options)
FFPPRootArg = Annotated[
    Path,
    typer.Argument(
        help="FaceForensics++ root (holds original_sequences/, manipulated_sequences/).", exists=True, file_okay=False
    ),
]
CropModeOpt = Annotated[
    str,
    typer.Option(
        help="align (DeepfakeBench's 5-point alignment), box (FF++'s square box, no rotation) or none (whole frames)."
    ),
]
FFPPFromOpt = Annotated[
    str,
    typer.Option(
        "--from", help="videos, or frames (read <c>/frames/<video>/NNN.png or <c>/images/<video>/NNNN.png instead)."
    ),
]
FFPPSplitsOpt = Annotated[
    Path | None,
    typer.Option(
        help="FF++'s dataset/splits folder (train/val/test.json): adds an official_split column.",
        exists=True,
        file_okay=False,
    ),
]


@command(
    import_app,
    "fifa-data import ffpp /data/FaceForensics++ --out data/ffpp_c23.parquet --frames 32 --workers 2",
    "fifa-data import ffpp /data/FaceForensics++ --out try.parquet --limit 5 --method Deepfakes --frames 4",
)
def ffpp(
    root: FFPPRootArg,
    out: OutOpt,
    compression: Annotated[str, typer.Option(help="raw, c23 or c40.")] = "c23",
    frames: Annotated[
        int, typer.Option(help="Frames sampled per video, evenly spaced; the same indices in a fake and its source.")
    ] = 32,
    size: Annotated[int, typer.Option(help="Side of the face crops in pixels.")] = 256,
    scale: Annotated[float, typer.Option(help="Crop margin: the crop covers SCALE times the face.")] = 1.3,
    crop: CropModeOpt = "align",
    source: FFPPFromOpt = "videos",
    workers: Annotated[int, typer.Option(help="Worker processes for decoding and cropping (0: this process).")] = 2,
    limit: Annotated[int | None, typer.Option(help="Only the first N source videos (with their fakes).")] = None,
    method: Annotated[list[str] | None, typer.Option("--method", help="Only this method (repeatable).")] = None,
    frames_dir: Annotated[
        Path | None, typer.Option(help="Where the crops go (default: frames/ next to the manifest).", file_okay=False)
    ] = None,
    splits: FFPPSplitsOpt = None,
    methods: MethodsOpt = None,
    strict: StrictOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """FaceForensics++: sample frames of every video, crop the face as DeepfakeBench does, pair each fake
    frame with its source frame (same index, same crop).

    Writes OUT, OUT's <stem>.import.json and the crops under FRAMES_DIR/ffpp/<c>/<subset or method>/<video>/.
    """
    setup_logging(verbose)
    from fifa.pipelines.importers import CropConfig, FFPPConfig, import_ffpp

    cfg = _config(
        lambda: FFPPConfig(
            compression=compression,
            frames=frames,
            crop=CropConfig(mode=crop, size=size, scale=scale),
            source=source,
            workers=workers,
            limit=limit,
            methods=tuple(method) if method else None,
            frames_dir=frames_dir,
            splits_dir=splits,
            methods_file=methods,
        )
    )
    with _user_errors(), _progress("ffpp: source videos") as progress:
        report = import_ffpp(root, out, cfg, progress=progress)
    _finish(report, strict)


@command(
    import_app,
    "fifa-data import deepfakebench dataset_json/FaceForensics++.json --root datasets/rgb --out dfb_ffpp.parquet",
)
def deepfakebench(
    json_files: Annotated[
        list[Path],
        typer.Argument(
            help="DeepfakeBench dataset JSON file(s) (preprocessing/dataset_json/*.json).", exists=True, dir_okay=False
        ),
    ],
    out: OutOpt,
    root: Annotated[
        Path | None,
        typer.Option(
            help="Folder relative frame paths start from (DeepfakeBench's rgb_dir; default: the JSON file's folder).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
    compression: Annotated[str, typer.Option(help="Compression level of the FaceForensics++ family.")] = "c23",
    frames: Annotated[int, typer.Option(help="Frames per video, evenly spaced (0: every frame listed).")] = 0,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only this top-level dataset (repeatable).")
    ] = None,
    pair: Annotated[
        bool,
        typer.Option(help="Give FF++/DFD/Celeb-DF fakes the same-named frame of their source video as source_path."),
    ] = True,
    methods: MethodsOpt = None,
    strict: StrictOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """DeepfakeBench's dataset JSON (dataset -> label -> split -> [compression ->] video -> frames): its face
    crops, used in place."""
    setup_logging(verbose)
    from fifa.pipelines.importers import DFBConfig, import_deepfakebench

    cfg = _config(
        lambda: DFBConfig(
            root=root,
            compression=compression,
            frames=frames,
            datasets=tuple(dataset) if dataset else None,
            pair=pair,
            methods_file=methods,
        )
    )
    with _user_errors():
        report = import_deepfakebench(json_files, out, cfg)
    _finish(report, strict)


@command(
    import_app,
    "fifa-data import ddvqa Research-DD-VQA/DQ_FF++ --frames-manifest data/ffpp_c23.parquet --out data/ddvqa.parquet",
)
def ddvqa(
    paths: Annotated[list[Path], typer.Argument(help="DD-VQA JSON files or its DQ_FF++ folder.", exists=True)],
    out: OutOpt,
    frames: Annotated[
        Path,
        typer.Option(
            "--frames-manifest",
            help="Manifest of FF++ frames (from `fifa-data import "
            "ffpp` or `deepfakebench`) to attach the questions to.",
            exists=True,
            dir_okay=False,
        ),
    ],
    attach: Annotated[
        str, typer.Option(help="Which sampled frames of a video get its questions: middle, all or first.")
    ] = "middle",
    answers: Annotated[str, typer.Option(help="all: one QA row per annotator answer; first: the first only.")] = "all",
    id_map: Annotated[
        list[str] | None,
        typer.Option(
            "--id-map", help="ID=METHOD (or ID=real) for a manipulation id DD-VQA does not document, e.g. 4=..."
        ),
    ] = None,
    methods: MethodsOpt = None,
    strict: StrictOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """DD-VQA question/answer pairs as extra rq_name / toe rows: OUT (the frames that got questions) and
    <stem>.qa.parquet next to it (for `fifa-data build --extra-qa`)."""
    setup_logging(verbose)
    from fifa.pipelines.importers import DDVQAConfig, import_ddvqa

    cfg = _config(
        lambda: DDVQAConfig(attach=attach, answers=answers, id_map=_id_map(id_map or []), methods_file=methods)
    )
    with _user_errors():
        report = import_ddvqa(paths, frames, out, cfg)
    _finish(report, strict)


def _id_map(items: list[str]) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k.strip().isdigit() or not v.strip():
            raise UserError(f"--id-map {it!r}: expected ID=METHOD, e.g. 4=DeepFakeDetection (or 4=real)")
        out[int(k)] = None if v.strip().lower() in ("real", "original") else v.strip()
    return out


@command(
    import_app,
    "fifa-data import folders my_set/ --out my_set/manifest.parquet",
    "fifa-data import folders faceapp/ --out faceapp.csv --prefix faceapp --methods my_methods.yaml",
)
def folders(
    root: Annotated[
        Path,
        typer.Argument(help="Folder with real/, fake/<method>/ and optionally source/.", exists=True, file_okay=False),
    ],
    out: OutOpt,
    prefix: Annotated[str, typer.Option(help="First part of the sample ids.")] = "folders",
    methods: MethodsOpt = None,
    strict: StrictOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """A plain folder layout: real/, fake/<method>/, optional source/ (a fake's source matched by relative path,
    else by file name)."""
    setup_logging(verbose)
    from fifa.pipelines.importers import FoldersConfig, import_folders

    with _user_errors():
        report = import_folders(root, out, FoldersConfig(prefix=prefix, methods_file=methods))
    _finish(report, strict)
