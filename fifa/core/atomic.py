"""Atomic files and folder swaps: a reader (or a crash) sees the old content or the new, never half.

Data shapes:

* ``path``: a file or folder path (``str`` or ``os.PathLike``);
* a temp file is a hidden sibling ``.tmp-<12 hex>-<name>`` in the same folder (same file system, so
  the final rename is atomic; hidden names are skipped by Arrow / pandas / ``datasets`` readers);
* a staging folder is the hidden sibling ``.<name>.tmp-<pid>``, the old folder during a swap
  ``.<name>.old-<pid>``: the pid tells :func:`clean_stale` which ones belong to a dead process.

Files: :func:`atomic_path` (a temp path for any library that writes to a path), :func:`atomic_open`
(an open temp file), and the shortcuts :func:`write_bytes_atomic`, :func:`write_text_atomic`,
:func:`write_json_atomic`, :func:`write_table_atomic`. Each writes the temp file, fsyncs it, renames it
over ``path`` and fsyncs the folder (``durable=False`` skips both fsyncs, for bulk content-addressed
files that a rerun rewrites anyway); on any error the temp file is removed and ``path`` is untouched.

Folders: write the new folder at :func:`staging_dir`, then :func:`swap_folder` puts it in place. The old
folder is kept until the new one is complete: on Linux one ``renameat2(RENAME_EXCHANGE)`` swaps them
atomically; elsewhere two renames leave a window of one system call in which only ``.<name>.old-<pid>``
exists, which :func:`clean_stale` (run before the next write) renames back. So a crash (SIGKILL) at
any point leaves the old or the new complete folder.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, TypeAlias

__all__ = [
    "atomic_path",
    "atomic_open",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "write_table_atomic",
    "move",
    "fsync_dir",
    "staging_dir",
    "swap_folder",
    "clean_stale",
    "pid_alive",
]

StrPath: TypeAlias = "str | os.PathLike[str]"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


# ---------------------------------------------------------------------------- files
def fsync_dir(d: StrPath) -> None:
    """Make a rename inside ``d`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_file(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(p: Path) -> None:
    with suppress(OSError):
        p.unlink()


@contextmanager
def atomic_path(path: StrPath, *, durable: bool = True) -> Iterator[Path]:
    """A temp path next to ``path``; when the block ends without error it replaces ``path``."""
    path = Path(path)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{path.name}"
    try:
        yield tmp
        if durable:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


@contextmanager
def atomic_open(path: StrPath, mode: str = "w", *, durable: bool = True, encoding: str = "utf-8") -> Iterator[IO[Any]]:
    """An open temp file (text mode in ``encoding``, or binary) that replaces ``path`` when closed."""
    with atomic_path(path, durable=durable) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
        yield f


def write_bytes_atomic(path: StrPath, data: bytes, *, durable: bool = True) -> None:
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data)


def write_text_atomic(path: StrPath, text: str, encoding: str = "utf-8", *, durable: bool = True) -> None:
    with atomic_open(path, "w", durable=durable, encoding=encoding) as f:
        f.write(text)


def write_json_atomic(obj: Any, path: StrPath, *, durable: bool = True, **dumps: Any) -> None:
    """``json.dump(obj, indent=2, default=str, **dumps)`` written atomically (``dumps`` overrides)."""
    with atomic_open(path, "w", durable=durable) as f:
        json.dump(obj, f, **{"indent": 2, "default": str, **dumps})


def write_table_atomic(table: Any, path: StrPath, *, durable: bool = True, **options: Any) -> None:
    """A ``pyarrow.Table`` as Parquet (zstd unless ``options`` say otherwise), written atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path, durable=durable) as tmp:
        pq.write_table(table, str(tmp), **{"compression": "zstd", **options})


def move(src: StrPath, dst: StrPath, *, durable: bool = True) -> None:
    """Rename ``src`` over ``dst`` (same file system): one atomic step, then the folder is fsync'd."""
    os.replace(src, dst)
    if durable:
        fsync_dir(Path(dst).parent)


# ---------------------------------------------------------------------------- folders
def staging_dir(out: StrPath, pid: int | None = None) -> Path:
    """Where this process writes the next version of folder ``out`` (an empty folder is not made)."""
    out = Path(out)
    return out.parent / f".{out.name}.tmp-{os.getpid() if pid is None else pid}"


def _old_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.old-{os.getpid()}"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one system call (Linux renameat2); False where it is not supported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _remove_tree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def swap_folder(new: StrPath, out: StrPath, *, exchange: bool = True) -> None:
    """Put the complete folder ``new`` in place of ``out`` (absent or a folder), then remove the old one.

    ``exchange=False`` uses two renames even where the atomic exchange exists (see the module doc)."""
    new, out = Path(new), Path(out)
    if not out.exists():
        os.replace(new, out)
    elif exchange and _exchange(new, out):
        _remove_tree(new)  # it holds the old folder now
    else:
        old = _old_dir(out)
        os.replace(out, old)
        os.replace(new, out)
        _remove_tree(old)
    fsync_dir(out.parent)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


def _stale(out: Path) -> list[tuple[Path, str]]:
    found = []
    for p in out.parent.glob(f".{out.name}.*-*"):
        kind_pid = p.name[len(out.name) + 2 :]
        kind, _, pid = kind_pid.rpartition("-")
        if kind in ("tmp", "old") and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            found.append((p, kind))
    return sorted(found)


def clean_stale(out: StrPath) -> None:
    """Finish what a killed writer of ``out`` left: its old folder goes back in place if ``out`` is
    missing (killed between the two renames of a swap), its staging folders are removed."""
    out = Path(out)
    for p, kind in _stale(out):
        if kind == "old" and not out.exists():
            os.replace(p, out)
            fsync_dir(out.parent)
        else:
            _remove_tree(p)
