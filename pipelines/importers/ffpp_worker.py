"""The work of one FF++ source video and its fakes, in a worker process (see :mod:`.ffpp`).

Streamed: a video is decoded once, front to back, and only the sampled frames are kept long
enough to crop and write them; what a task holds is the per-index crop transforms.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .facecrop import CropConfig, CropTransform, FaceCropper
from .report import Failure, rel_path
from .video import VideoError, frame_indices, probe, read_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class WorkerConfig:
    crop: CropConfig
    frames: int
    compression: str
    frames_dir: str
    manifest_dir: str


@dataclass
class TaskResult:
    rows: list[dict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    frames: int = 0  # frames decoded and cropped
    detectors: dict[str, int] = field(default_factory=dict)  # source crops by detector (facemesh, facedetection)


_STATE: dict = {}


def init_worker(config: WorkerConfig) -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging, before its graphs start
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cv2.setNumThreads(1)  # one process per core: no nested OpenCV thread pools
    _STATE["config"] = config
    _STATE["cropper"] = FaceCropper(config.crop)


def init_pool_worker(config: WorkerConfig) -> None:
    """A pool worker: Ctrl-C is the parent's to handle (it stops handing out tasks and keeps what is done)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(config)


def warm_up() -> None:
    """A short task: keeps a worker busy so that each start-up submit starts a new process."""
    import time

    time.sleep(0.05)


def failed_task(task, reason: str, stage: str) -> TaskResult:
    """A task that could not run: one failure per video, so every video is accounted for."""
    refs = ([task.source] if task.source else []) + list(task.fakes)
    return TaskResult(failures=[Failure(ref.path, reason, stage) for ref in refs])


# ------------------------------------------------------------------ frame sources
def _frame_files(folder: Path) -> dict[int, Path]:
    out = {}
    for p in folder.iterdir():
        if p.suffix.lower() in IMAGE_SUFFIXES and p.stem.isdigit():
            out[int(p.stem)] = p
    return out


def positions(path: str) -> list[int]:
    """Frame indices a video (or a folder of numbered frames) holds; VideoError if unreadable."""
    p = Path(path)
    if p.is_dir():
        got = sorted(_frame_files(p))
        if not got:
            raise VideoError(f"no numbered frame images (e.g. 000.png) in {p}")
        return got
    return list(range(probe(p).frame_count))


def frames_at(path: str, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    p = Path(path)
    if not p.is_dir():
        yield from read_frames(p, indices)
        return
    files = _frame_files(p)
    for i in sorted(indices):
        img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR) if i in files else None
        if img is not None:
            yield i, img


# ------------------------------------------------------------------ one task
def run_task(task) -> TaskResult:
    """Crop the sampled frames of ``task.source`` and its fakes; rows and failures, never raises
    for a bad video (it is recorded and the rest of the task goes on)."""
    cfg: WorkerConfig = _STATE["config"]
    cropper: FaceCropper = _STATE["cropper"]
    res = TaskResult()
    pos: dict[str, list[int]] = {}
    for ref in ([task.source] if task.source else []) + list(task.fakes):
        try:
            pos[ref.path] = positions(ref.path)
        except (VideoError, OSError) as e:
            res.failures.append(Failure(ref.path, str(e), "open"))
    src = task.source if task.source and task.source.path in pos else None
    fakes = [f for f in task.fakes if f.path in pos]
    if src is not None:
        common = set(pos[src.path]).intersection(*(pos[f.path] for f in fakes)) or set(pos[src.path])
        idx = [sorted(common)[k] for k in frame_indices(len(common), cfg.frames)]
        transforms = _crop_video(src, idx, None, cropper, cfg, res)
        for f in fakes:
            _crop_video(f, [i for i in idx if i in transforms], transforms, cropper, cfg, res, src)
            for i in idx:
                if i not in transforms:
                    res.failures.append(
                        Failure(
                            _sample_id(cfg, f, i),
                            f"source frame {i} has no crop (no face, or not decodable: see {_sample_id(cfg, src, i)})",
                            "source",
                        )
                    )
    else:
        for f in fakes:
            got = pos[f.path]
            _crop_video(f, [got[k] for k in frame_indices(len(got), cfg.frames)], None, cropper, cfg, res)
    return res


def _sample_id(cfg: WorkerConfig, ref, i: int) -> str:
    return f"ffpp/{cfg.compression}/{ref.subset}/{ref.name}/f{i:04d}"


def _crop_video(
    ref,
    idx: list[int],
    transforms: dict[int, CropTransform] | None,
    cropper: FaceCropper,
    cfg: WorkerConfig,
    res: TaskResult,
    source=None,
) -> dict[int, CropTransform]:
    """Crop frames ``idx`` of one video: with the given per-index transforms (a fake of a source),
    or detecting the face in each frame (a source, or a fake alone). Returns the transforms used."""
    used: dict[int, CropTransform] = {}
    seen: set[int] = set()
    try:
        for i, frame in frames_at(ref.path, idx):
            seen.add(i)
            sid = _sample_id(cfg, ref, i)
            t = transforms[i] if transforms is not None else cropper.transform(frame)
            if t is None:
                res.failures.append(Failure(sid, f"no face found in frame {i} of {ref.path}", "face"))
                continue
            if transforms is None:
                res.detectors[t.detector] = res.detectors.get(t.detector, 0) + 1
            out = Path(cfg.frames_dir) / f"{sid}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(out), t.apply(frame)):
                res.failures.append(Failure(sid, f"cannot write {out}", "write"))
                continue
            used[i] = t
            res.frames += 1
            res.rows.append(_row(cfg, ref, i, sid, out, source))
    except (VideoError, cv2.error, OSError) as e:
        res.failures.append(Failure(ref.path, f"decoding failed: {e}", "decode"))
    for i in idx:
        if i not in seen:
            res.failures.append(
                Failure(
                    _sample_id(cfg, ref, i),
                    f"frame {i} could not be read from {ref.path} "
                    "(the video ends earlier than its header says, or the frame is damaged)",
                    "decode",
                )
            )
    return used


def _row(cfg: WorkerConfig, ref, i: int, sid: str, out: Path, source) -> dict:
    src_path = None
    if source is not None:
        src_path = rel_path(Path(cfg.frames_dir) / f"{_sample_id(cfg, source, i)}.png", cfg.manifest_dir)
    row = {
        "sample_id": sid,
        "image_path": rel_path(out, cfg.manifest_dir),
        "source_path": src_path,
        "label": ref.label,
        "method": ref.method,
        "category": ref.category,
        "group": ref.group,
        "identities": ref.identities,
        "video": ref.name,
        "frame": i,
        "collection": "FaceForensics++",
    }
    if ref.split is not None:
        row["official_split"] = ref.split
    return row
