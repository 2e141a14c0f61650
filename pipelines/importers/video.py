"""Frame sampling from videos (OpenCV), streamed: one decoded frame in memory at a time.

FaceForensics++ pairs a fake with its source frame by frame, so both must be sampled at the
*same* indices. :func:`frame_indices` gives DeepfakeBench's ``fixed_num_frames`` choice
(``np.linspace(0, count - 1, n)`` cast to int); :func:`read_frames` walks the video once with
``grab()`` (no colour conversion for skipped frames) and ``retrieve()`` only at those indices.
Sequential reading is exact where seeking (``CAP_PROP_POS_FRAMES``) is not for every codec.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fifa.core.errors import FifaError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class VideoError(FifaError, RuntimeError):
    """A video that cannot be opened or read; the message says which and why."""


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int  # as the container reports it (may exceed what decodes)
    width: int
    height: int
    fps: float


def probe(path: str | Path) -> VideoInfo:
    """Open a video and read its header; :class:`VideoError` when it cannot be opened."""
    p = Path(path)
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise VideoError(f"cannot open video {p} (not a video OpenCV can decode, or truncated)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        info = VideoInfo(
            p,
            count,
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
            float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        )
    finally:
        cap.release()
    if info.frame_count < 1:
        raise VideoError(f"video {p} reports no frames")
    return info


def frame_indices(count: int, n: int) -> list[int]:
    """``n`` indices evenly spaced over ``count`` frames, first and last included (DeepfakeBench's
    ``fixed_num_frames``); fewer when the video is shorter than ``n`` (every frame once)."""
    if count < 1 or n < 1:
        return []
    if n >= count:
        return list(range(count))
    return sorted({int(i) for i in np.linspace(0, count - 1, n, endpoint=True, dtype=int)})


def read_frames(path: str | Path, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, BGR frame)`` for each wanted index, in increasing order.

    Stops early when the video ends; the caller sees which indices never came (a truncated
    video). :class:`VideoError` when the file cannot be opened at all.
    """
    wanted = sorted({int(i) for i in indices})
    if not wanted:
        return
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoError(f"cannot open video {path} (not a video OpenCV can decode, or truncated)")
        k, pos = 0, 0
        last = wanted[-1]
        while pos <= last:
            if not cap.grab():
                return
            if pos == wanted[k]:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    return
                yield pos, frame
                k += 1
            pos += 1
    finally:
        cap.release()
