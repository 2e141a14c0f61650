"""FaceForensics++ importer: sampled, face-cropped frames of every video, pairs kept aligned.

Layout read (FF++'s download script; ``<c>`` is ``raw``, ``c23`` or ``c40``)::

    ROOT/original_sequences/youtube/<c>/videos/000.mp4            real, FF++ ids 000-999
    ROOT/original_sequences/actors/<c>/videos/01__scene.mp4       real, DeepFakeDetection actors
    ROOT/manipulated_sequences/<Method>/<c>/videos/000_003.mp4    fake of target 000, face of 003
    ROOT/manipulated_sequences/DeepFakeDetection/<c>/videos/01_02__scene__XXXXXXXX.mp4

``--from frames`` reads ``<c>/frames/<video>/<index>.png`` (or FF++'s ``<c>/images/...``)
instead of ``videos/``. Method folders are looked up in the method table (an unknown one is an
error naming it and the file to extend).

Work is one task per *source* video with all of its fakes: the frame indices are chosen once
(``n`` evenly spaced over the frames every video of the task has), the face transform is
computed on the source frame and applied unchanged to each fake at the same index, so every
pair is pixel-aligned. A fake without a source video is cropped on its own frames. Crops go
to ``FRAMES/<sample_id>.png`` (``FRAMES`` defaults to ``<manifest dir>/frames``).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing as mp
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from fifa.pipelines.methods import load_methods

from .facecrop import CropConfig
from .identity import video_identity
from .report import ImportLayoutError, ImportReport, finish
from .video import VIDEO_SUFFIXES

log = logging.getLogger(__name__)

COMPRESSIONS = ("raw", "c23", "c40")
REAL_SUBSETS = {"youtube": "ffpp", "actors": "dfd"}  # original_sequences/<subset> -> identity family
FRAME_DIRS = ("frames", "images")  # DeepfakeBench / FF++'s extraction script


@dataclass(frozen=True)
class FFPPConfig:
    compression: str = "c23"
    frames: int = 32  # frames sampled per video (DeepfakeBench's default)
    crop: CropConfig = field(default_factory=CropConfig)
    source: str = "videos"  # videos | frames
    workers: int = 2  # processes for decode + crop; 0 = in this process
    limit: int | None = None  # only the first N source videos (sorted), to try a subset
    methods: tuple[str, ...] | None = None  # only these methods (canonical or alias); None = all
    frames_dir: Path | None = None  # where crops go; default <manifest dir>/frames
    splits_dir: Path | None = None  # FF++'s dataset/splits/{train,val,test}.json -> `official_split`
    methods_file: Path | None = None  # extra method table (YAML)

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression {self.compression!r} not in {COMPRESSIONS}")
        if self.source not in ("videos", "frames"):
            raise ValueError(f"--from {self.source!r}: use videos or frames")
        if self.frames < 1:
            raise ValueError("--frames must be >= 1")
        if self.workers < 0:
            raise ValueError("--workers must be >= 0")


@dataclass(frozen=True)
class VideoRef:
    """One video (file, or folder of frames) of the collection."""

    label: str  # real | fake
    subset: str  # youtube | actors | the canonical method name
    method: str | None
    category: str
    name: str  # FF++ video id, e.g. 000 or 000_003
    path: str
    group: str
    identities: str | None
    split: str | None = None


@dataclass(frozen=True)
class SourceTask:
    source: VideoRef | None  # None: fakes whose source video is not in the tree
    fakes: tuple[VideoRef, ...]


# ------------------------------------------------------------------ scanning the tree
def _media(cdir: Path, source: str) -> list[tuple[str, Path]]:
    """(video id, path) of the videos (or frame folders) of one ``<c>`` folder."""
    if source == "videos":
        d = cdir / "videos"
        return sorted((p.stem, p) for p in d.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if d.is_dir() else []
    for name in FRAME_DIRS:
        d = cdir / name
        if d.is_dir():
            return sorted((p.name, p) for p in d.iterdir() if p.is_dir())
    return []


def _check_root(root: Path) -> tuple[Path, Path]:
    orig, manip = root / "original_sequences", root / "manipulated_sequences"
    if orig.is_dir() or manip.is_dir():
        return orig, manip
    hint = ""
    if root.name in ("original_sequences", "manipulated_sequences") or (root / "youtube").is_dir():
        hint = f" (it looks like a sub-folder: pass its parent {root.parent})"
    raise ImportLayoutError(
        f"{root} is not a FaceForensics++ folder: it has no original_sequences/ or manipulated_sequences/{hint}. "
        "Expected ROOT/original_sequences/youtube/c23/videos/000.mp4 and "
        "ROOT/manipulated_sequences/Deepfakes/c23/videos/000_003.mp4"
    )


def _load_splits(splits_dir: Path | None) -> dict[str, str]:
    """FF++'s official splits (lists of [target, source] id pairs) as video id -> split."""
    out: dict[str, str] = {}
    if splits_dir is None:
        return out
    for split in ("train", "val", "test"):
        p = Path(splits_dir) / f"{split}.json"
        if not p.is_file():
            raise ImportLayoutError(f"--splits {splits_dir}: {p.name} not found (FF++'s dataset/splits folder)")
        for a, b in json.loads(p.read_text("utf-8")):
            for k in (a, b, f"{a}_{b}", f"{b}_{a}"):
                out[k] = "validation" if split == "val" else split
    return out


def _fake_refs(
    manip: Path, table, wanted: set[str] | None, config: FFPPConfig, splits: dict, found_c: set[str]
) -> list[tuple[tuple[str, str] | None, VideoRef]]:
    """Every fake video of the wanted methods with the (family, source video) it was made from (None when its
    name does not tell); adds the compression folders seen to ``found_c``."""
    fakes: list[tuple[tuple[str, str] | None, VideoRef]] = []
    for mdir in sorted(p for p in manip.iterdir() if p.is_dir()) if manip.is_dir() else []:
        method = table.canonical(mdir.name)  # UnknownMethodError names the folder and the file
        found_c |= {p.name for p in mdir.iterdir() if p.is_dir()}
        if wanted is not None and method not in wanted:
            continue
        family = "dfd" if method == "DeepFakeDetection" else "ffpp"
        for name, path in _media(mdir / config.compression, config.source):
            vid = video_identity(name, family, fake=True)
            ref = VideoRef(
                "fake",
                method,
                method,
                table.category(method),
                name,
                str(path),
                vid.group,
                vid.identities,
                splits.get(name),
            )
            fakes.append(((family, vid.source) if vid.source else None, ref))
    return fakes


def scan_ffpp(root: str | Path, config: FFPPConfig) -> tuple[list[SourceTask], list[str]]:
    """The import tasks of a FaceForensics++ tree (one per source video) and notes.

    Raises :class:`ImportLayoutError` for a folder that is not FF++ or lacks the compression,
    :class:`~fifa.pipelines.methods.UnknownMethodError` for a method folder the table lacks.
    """
    root = Path(root)
    orig, manip = _check_root(root)
    table = load_methods(config.methods_file)
    wanted = {table.canonical(m) for m in config.methods} if config.methods else None
    splits = _load_splits(config.splits_dir)
    c = config.compression
    found_c: set[str] = set()
    reals: dict[tuple[str, str], VideoRef] = {}
    for subset, family in REAL_SUBSETS.items():
        sdir = orig / subset
        found_c |= {p.name for p in sdir.iterdir() if p.is_dir()} if sdir.is_dir() else set()
        for name, path in _media(sdir / c, config.source):
            vid = video_identity(name, family, fake=False)
            reals[(family, name)] = VideoRef(
                "real", subset, None, "real", name, str(path), vid.group, vid.identities, splits.get(name)
            )
    fakes = _fake_refs(manip, table, wanted, config, splits, found_c)
    if not reals and not fakes:
        have = ", ".join(sorted(found_c & set(COMPRESSIONS))) or "none"
        raise ImportLayoutError(
            f"{root}: no {config.source} under */{c}/{'videos' if config.source == 'videos' else 'frames'}/ "
            f"(compression folders found: {have}; choose one with --compression, or --from frames|videos)"
        )
    by_source: dict[tuple[str, str], list[VideoRef]] = {k: [] for k in reals}
    alone: list[VideoRef] = []
    for key, ref in fakes:
        (by_source[key].append(ref) if key in reals else alone.append(ref))
    notes = (
        [
            f"{len(alone)} fake video(s) without their source video in the tree: cropped on their own frames, "
            "no source_path"
        ]
        if alone
        else []
    )
    tasks = [SourceTask(reals[k], tuple(v)) for k, v in sorted(by_source.items(), key=lambda kv: kv[0][1])]
    tasks += [SourceTask(None, (ref,)) for ref in sorted(alone, key=lambda r: (r.name, r.subset))]
    return tasks, notes


# ------------------------------------------------------------------ running the tasks
def import_ffpp(
    root: str | Path,
    out: str | Path,
    config: FFPPConfig = FFPPConfig(),
    progress: Callable[[int, int, int], None] | None = None,
) -> ImportReport:
    """Import a FaceForensics++ tree into the manifest ``out`` (see the module docstring).

    ``progress(done_tasks, total_tasks, frames_so_far)`` is called once the tree is scanned and
    after each source video (with its fakes).
    """
    from .ffpp_worker import WorkerConfig, init_worker, run_task

    started = time.perf_counter()
    out = Path(out)
    tasks, notes = scan_ffpp(root, config)
    if config.limit is not None:
        tasks = tasks[: max(0, config.limit)]
    frames_dir = Path(config.frames_dir) if config.frames_dir else out.parent / "frames"
    wcfg = WorkerConfig(
        crop=config.crop,
        frames=config.frames,
        compression=config.compression,
        frames_dir=str(frames_dir),
        manifest_dir=str(out.parent),
    )
    results: list = [None] * len(tasks)
    interrupted = False
    done = frames = 0
    if progress:
        progress(0, len(tasks), 0)
    try:
        for i, res in _run(tasks, wcfg, config.workers, init_worker, run_task):
            results[i] = res
            done, frames = done + 1, frames + res.frames
            if progress:
                progress(done, len(tasks), frames)
    except KeyboardInterrupt:
        interrupted = True
    rows = [r for res in results if res for r in res.rows]
    failures = [f for res in results if res for f in res.failures]
    n_frames = sum(res.frames for res in results if res)
    if interrupted:
        notes.append(f"interrupted: {sum(1 for r in results if r)} of {len(tasks)} source videos imported")
    elapsed = time.perf_counter() - started
    detectors = Counter()
    for res in results:
        detectors.update(res.detectors if res else {})
    stats = {
        "tasks": len(tasks),
        "frames_cropped": n_frames,
        "frames_per_s": round(n_frames / elapsed, 2) if elapsed > 0 else 0.0,
    }
    stats |= {f"detected_by_{k}": v for k, v in sorted(detectors.items())}
    rep = finish(
        "ffpp", rows, failures, out, started=started, files={"frames": str(frames_dir)}, notes=notes, stats=stats
    )
    if interrupted:
        raise KeyboardInterrupt
    return rep


def _run(tasks: list[SourceTask], wcfg, workers: int, init, work) -> Iterator[tuple[int, object]]:
    """(task index, result) as tasks finish; at most ``3 * workers`` tasks in flight.

    A task that raises is recorded as failed; a worker process that dies (a decoder crash, the
    OOM killer) breaks the pool: a new one starts and the tasks in flight are retried once. On
    Ctrl-C the tasks already running finish and are yielded, the others never start.
    """
    from .ffpp_worker import failed_task

    if workers == 0:
        init(wcfg)
        for i, t in enumerate(tasks):
            yield i, _guarded(work, t, failed_task)
        return
    queue = deque(enumerate(tasks))
    tries: Counter = Counter()
    while queue:
        pool = _start_pool(wcfg, workers)
        pending: dict[cf.Future, tuple[int, SourceTask]] = {}
        try:
            while queue or pending:
                while queue and len(pending) < 3 * workers:
                    i, t = queue.popleft()
                    pending[pool.submit(work, t)] = (i, t)
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    if isinstance(fut.exception(), BrokenProcessPool):
                        raise BrokenProcessPool
                    i, t = pending.pop(fut)
                    err = fut.exception()
                    yield i, (failed_task(t, f"worker error: {err!r}", "error") if err else fut.result())
        except KeyboardInterrupt:  # keep what is running: wait for it, drop what has not started
            pool.shutdown(wait=True, cancel_futures=True)
            for fut, (i, _task) in pending.items():
                if not fut.cancelled() and fut.exception() is None:
                    yield i, fut.result()
            raise
        except BrokenProcessPool:
            log.warning("a worker process died: restarting the workers, retrying %d task(s)", len(pending))
            for i, t in sorted(pending.values(), key=lambda it: -it[0]):
                tries[i] += 1
                if tries[i] >= 2:
                    yield (
                        i,
                        failed_task(
                            t, "the worker process died twice on this video (decoder crash or out of memory)", "crash"
                        ),
                    )
                else:
                    queue.appendleft((i, t))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _guarded(work, task, failed_task):
    try:
        return work(task)
    except Exception as e:  # one bad task never stops the import
        log.debug("task failed", exc_info=True)
        return failed_task(task, f"error: {e!r}", "error")


def _start_pool(wcfg, workers: int) -> cf.ProcessPoolExecutor:
    """Worker processes, every one started now (each loads its own MediaPipe graphs)."""
    from fifa.annotator.executors import no_main_reimport  # the annotator's pool does the same

    from .ffpp_worker import init_pool_worker, warm_up

    ctx = mp.get_context("forkserver")  # not fork: the parent may hold MediaPipe threads
    # MediaPipe imported once in the fork server (it starts no threads), not in every worker
    ctx.set_forkserver_preload(["fifa.pipelines.importers.ffpp_worker", "mediapipe"])
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_pool_worker, initargs=(wcfg,))
    with no_main_reimport():  # start every worker now, without re-running an unguarded calling script
        cf.wait([pool.submit(warm_up) for _ in range(workers)])
    return pool
