"""Segment many images in worker processes and stream the results to Parquet.

``DIR/regions.parquet``: one row per image, face and concept with a non-empty mask
(atomic and parent concepts): ``image, face_index, node_id, mask (RLE), area``.
``DIR/images.parquet``: one row per input image with its status and reason.
``DIR/overlays/*.png``: coloured regions (optional).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.atomic import atomic_path
from fifa.core.rle import RLE_TYPE

from ..imageio import ImageError, LoadOptions, load_rgb
from .arrowcols import column, int_list_column, table

log = logging.getLogger(__name__)

REGIONS_SCHEMA = pa.schema(
    [
        ("image", pa.string()),
        ("face_index", pa.int32()),
        ("node_id", pa.string()),
        ("mask", RLE_TYPE),
        ("area", pa.int64()),
    ]
)
IMAGES_SCHEMA = pa.schema(
    [
        ("image", pa.string()),
        ("status", pa.string()),  # ok | no_face | failed
        ("error_code", pa.string()),
        ("error", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("faces", pa.int32()),
        ("seconds", pa.float64()),
    ]
)


@dataclass(frozen=True)
class BatchOptions:
    all_faces: bool = False
    overlays: bool = True
    level: str | int = "anchor"  # overlay colouring level
    workers: int = 0  # 0: one per core
    backend: str = "mediapipe"  # landmark backend (backends.BACKENDS)
    outside_face: bool = True  # False: face concepts only (no person model)
    pose: bool = False  # MediaPipe Pose for the shoulder line and ear points
    load: LoadOptions = field(default_factory=LoadOptions)


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    no_face: int = 0
    failed: int = 0
    faces: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (image, reason)

    @property
    def succeeded(self) -> bool:
        return self.ok > 0


# ------------------------------------------------------------------ worker side
# per-process state of a worker (its models): a pool worker, or the parent while it runs a one-worker job
_WORKER: dict = {}


def _init_worker(opts: BatchOptions, overlay_dir: str | None) -> None:
    import cv2

    from .segment import SegmentConfig, Segmenter

    os.environ.setdefault("GLOG_minloglevel", "2")
    cv2.setNumThreads(1)  # one process per core already
    _WORKER["seg"] = Segmenter(SegmentConfig(backend=opts.backend, outside_face=opts.outside_face, pose=opts.pose))
    _WORKER["opts"] = opts
    _WORKER["overlay_dir"] = overlay_dir


def _process(task: tuple[str, str]) -> dict:
    key, path = task
    opts: BatchOptions = _WORKER["opts"]
    t0 = time.perf_counter()
    rec = {"image": key, "status": "failed", "error_code": None, "error": None, "width": None, "height": None,
           "faces": 0, "rows": []}  # fmt: skip
    try:
        rgb = load_rgb(path, opts.load)
    except ImageError as e:
        rec.update(error_code=e.code, error=e.message)
        rec["seconds"] = time.perf_counter() - t0
        return rec
    h, w = rgb.shape[:2]
    rec.update(width=w, height=h)
    try:
        seg = _WORKER["seg"]
        faces = seg.segment_all(rgb, limit=None if opts.all_faces else 1)
    except Exception as e:  # a model failure on one image must not stop the run
        rec.update(error_code="segmentation_error", error=f"{type(e).__name__}: {e}")
        rec["seconds"] = time.perf_counter() - t0
        return rec
    faces = [f for f in faces if f.ok]
    if not faces:
        rec.update(status="no_face", error_code="no_face", error="no face detected")
    else:
        rec["status"] = "ok"
        rec["faces"] = len(faces)
        rows = []
        for f in faces:
            areas = f.areas(include_parents=True)
            for node_id, r in f.rles(include_parents=True).items():
                rows.append((f.face_index, node_id, r["size"], r["counts"], areas.get(node_id, 0)))
        rec["rows"] = rows
        if _WORKER["overlay_dir"]:
            _write_overlay(rgb, faces, key, opts)
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _write_overlay(rgb: np.ndarray, faces, key: str, opts: BatchOptions) -> None:
    import cv2

    from .overlay import render_overlay

    img = render_overlay(rgb, faces, level=opts.level)
    out = Path(_WORKER["overlay_dir"]) / (overlay_name(key))
    cv2.imwrite(str(out), img[:, :, ::-1])


def overlay_name(key: str) -> str:
    """Overlay file name for an image key (folders flattened)."""
    return key.replace("/", "__").rsplit(".", 1)[0] + ".png"


# ------------------------------------------------------------------ parent side
def image_tasks(source: str | Path, files: Iterable[Path]) -> list[tuple[str, str]]:
    src = Path(source)
    base = src if src.is_dir() else src.parent
    tasks = []
    for f in files:
        try:
            key = f.relative_to(base).as_posix()
        except ValueError:
            key = f.name
        tasks.append((key, str(f)))
    return tasks


def segment_folder(
    tasks: list[tuple[str, str]], out_dir: str | Path, options: BatchOptions = BatchOptions(), progress: bool = True
) -> BatchSummary:
    """Segment ``(key, path)`` tasks in worker processes (in this process for one worker); write Parquet
    (and overlays) under ``out_dir``.

    Raises ``ValueError`` / :class:`~fifa.concept_tree.segmentation.landmarks.BackendUnavailable` before any
    work when ``options.backend`` is unknown or cannot run here."""
    from .backends import check_backend

    check_backend(options.backend)
    out, overlay_dir = _output_dirs(out_dir, options)
    workers = max(1, min(options.workers or (os.cpu_count() or 1), len(tasks)))
    summary = BatchSummary(total=len(tasks))
    t0 = time.perf_counter()
    with ExitStack() as files:  # both files appear complete, at the end, or not at all
        writer = _ParquetOut(files.enter_context(atomic_path(out / "regions.parquet")),
                             files.enter_context(atomic_path(out / "images.parquet")))  # fmt: skip
        try:
            with _progress(progress, len(tasks)) as (bar, task_id):
                overlays = str(overlay_dir) if overlay_dir else None
                with _results(_pool_context(workers), workers, tasks, options, overlays) as results:
                    for rec in results:
                        _account(summary, rec)
                        writer.add(rec)
                        _advance(bar, task_id, summary, t0)
            writer.flush()
        finally:
            writer.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _output_dirs(out_dir: str | Path, options: BatchOptions) -> tuple[Path, Path | None]:
    """The output folder and its ``overlays`` folder (None without overlays), created."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not options.overlays:
        return out, None
    overlay_dir = out / "overlays"
    overlay_dir.mkdir(exist_ok=True)
    return out, overlay_dir


def _pool_context(workers: int):
    """The multiprocessing context of the worker pool; None for one worker (run in this process)."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # silence MediaPipe's C++ logging in the workers
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if workers > 1 and "forkserver" in mp.get_all_start_methods():
        # Workers fork from a server that imported MediaPipe once (models are created per worker).
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["mediapipe", "fifa.concept_tree.segmentation.segment"])
        return ctx
    return mp.get_context("spawn") if workers > 1 else None


class _ParquetOut:
    """``regions.parquet`` and ``images.parquet`` being written: records buffered, written in batches."""

    def __init__(self, regions_path: Path, images_path: Path):
        self._rw = pq.ParquetWriter(regions_path, REGIONS_SCHEMA)
        self._iw = pq.ParquetWriter(images_path, IMAGES_SCHEMA)
        self._rows: list[tuple] = []
        self._imgs: list[dict] = []

    def add(self, rec: dict) -> None:
        """One image's record (its ``rows`` are taken out of it)."""
        self._rows.extend((rec["image"],) + row for row in rec.pop("rows"))
        self._imgs.append({k: rec.get(k) for k in IMAGES_SCHEMA.names})
        if len(self._rows) > 20000:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._rw.write_table(_rows_table(self._rows))
            self._rows.clear()
        if self._imgs:
            self._iw.write_table(table(self._imgs, IMAGES_SCHEMA))
            self._imgs.clear()

    def close(self) -> None:
        self._rw.close()
        self._iw.close()


def _advance(bar, task_id, summary: BatchSummary, t0: float) -> None:
    """One image more on the progress bar (if any), with the failures and the rate so far."""
    if bar is None:
        return
    done = summary.ok + summary.failed + summary.no_face
    rate = f"{done / max(time.perf_counter() - t0, 1e-9):.1f} img/s"
    bar.update(task_id, advance=1, failed=summary.failed + summary.no_face, rate=rate)


@contextmanager
def _results(ctx, workers: int, tasks: list[tuple[str, str]], options: BatchOptions, overlay_dir: str | None):
    """Per-image records in task order: from a pool of ``workers`` processes, or, for one worker,
    from this process (a pool of one only adds a second interpreter that imports MediaPipe again,
    about a second of CPU, and a pickling round trip per image)."""
    if ctx is None:
        import cv2

        threads = cv2.getNumThreads()
        try:
            _init_worker(options, overlay_dir)
            yield (_process(t) for t in tasks)
        finally:
            seg = _WORKER.pop("seg", None)
            if seg is not None:
                seg.close()
            _WORKER.clear()
            cv2.setNumThreads(threads)
        return
    with ctx.Pool(workers, initializer=_init_worker, initargs=(options, overlay_dir)) as pool:
        yield pool.imap(_process, tasks, chunksize=4)


def _rows_table(rows: list[tuple]) -> pa.Table:
    images, faces, nodes, sizes, counts, areas = zip(*rows)
    # sizes as one flat array + offsets: converting 158 small Python lists per image cost the
    # parent 3 ms per image, a third of a FaceMesh call
    masks = pa.StructArray.from_arrays([int_list_column(sizes, 2), column(counts, pa.string())], fields=list(RLE_TYPE))
    return pa.Table.from_arrays(
        [column(images, pa.string()), column(faces, pa.int32()), column(nodes, pa.string()), masks,
         column(areas, pa.int64())],
        schema=REGIONS_SCHEMA,
    )  # fmt: skip


def _account(s: BatchSummary, rec: dict) -> None:
    if rec["status"] == "ok":
        s.ok += 1
        s.faces += rec["faces"]
    elif rec["status"] == "no_face":
        s.no_face += 1
        s.failures.append((rec["image"], "no_face: no face detected"))
    else:
        s.failed += 1
        s.failures.append((rec["image"], f"{rec['error_code']}: {rec['error']}"))


class _progress:
    """A rich progress bar with rate, ETA and failures (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.p = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return None, None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(
            TextColumn("[bold]segment"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("[yellow]{task.fields[failed]} without result"),
            TimeRemainingColumn(),
        )  # fmt: skip
        self.p.__enter__()
        return self.p, self.p.add_task("segment", total=self.total, failed=0, rate="")

    def __exit__(self, *exc):
        if self.p is not None:
            self.p.__exit__(*exc)
