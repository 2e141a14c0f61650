"""One run per output folder: an advisory lock on ``DIR/.lock`` (DESIGN: "A run holds a lock on DIR").

The lock is ``flock`` on an open file, so the kernel releases it when the holding process dies,
SIGKILL included: a stale lock of a dead process is simply taken over. The file also records who
holds it (pid, host, command, start time) for the refusal message. Worker processes never hold
it (the descriptor is not inherited).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from fifa.core.errors import FifaError

LOCK_NAME = ".lock"


class FolderLocked(FifaError, RuntimeError):
    """Another live process holds the folder's lock; the message says which."""


class RunLock:
    """``with RunLock(out_dir):`` holds the folder for the duration of a run (or a retry)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(self.path)
            os.close(fd)
            raise FolderLocked(
                f"{self.path.parent} is in use by another run ({holder}); wait for it to finish "
                "or stop it, then rerun (a stopped run's lock is released automatically)"
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(sys.argv[:3]),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text("utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "a process that has not written its details yet"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"
