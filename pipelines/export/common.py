"""Shared machinery of the exporters: reading a build, the shared image folder, writing JSON."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from fifa.core.atomic import atomic_open, atomic_path
from fifa.core.errors import EXIT_USAGE, FifaError
from fifa.core.marks import strip as plain_text
from fifa.core.records import InstructRow

from ..buildinfo import build_image_root

SPLITS = ("train", "validation")


class ExportError(FifaError, ValueError):
    """An export that cannot be made (user mistake: exit 2)."""

    exit_code = EXIT_USAGE


@dataclass
class ExportSummary:
    format: str
    out: str
    rows: dict = field(default_factory=dict)  # split -> rows written
    skipped: dict = field(default_factory=dict)  # task -> rows the format cannot carry
    images: int = 0
    files: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # splits with no row: no file written, nothing registered

    def add_split(self, out: Path, split: str, path: Path, rows: int) -> None:
        """Record a split's file; an empty split (no file was kept) goes to ``empty``."""
        self.rows[split] = rows
        if rows:
            self.files.append(str(path.relative_to(out)))
        else:
            self.empty.append(split)


class ImageStore:
    """``DIR/images/<sha256[:2]>/<sha256><ext>``: each distinct image once, whatever the export."""

    def __init__(self, out: Path, build_dir: Path):
        self.out = out
        self.dir = out / "images"
        self.root = build_image_root(build_dir)
        self._seen: dict[str, str] = {}

    def add(self, image: dict) -> str:
        """Relative path (to DIR) of the row's image, materialising it on first use."""
        key = image.get("path") or ""
        if image.get("bytes") is None and key in self._seen:
            return self._seen[key]
        if image.get("bytes") is not None:
            data = image["bytes"]
            digest = hashlib.sha256(data).hexdigest()
            src = None
        else:
            src = self.root / key
            if not src.is_file():
                raise ExportError(
                    f"image not found: {src} (image root {self.root}; is the build folder moved away from its images?)"
                )
            digest = _sha256(src)
        ext = Path(key).suffix.lower() or ".png"
        rel = f"images/{digest[:2]}/{digest}{ext}"
        dst = self.out / rel
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dst, durable=False) as tmp:  # content-addressed: a rerun rewrites it
                if src is None:
                    tmp.write_bytes(data)
                else:
                    try:
                        os.link(src, tmp)
                    except OSError:
                        shutil.copyfile(src, tmp)
        if image.get("bytes") is None:
            self._seen[key] = rel
        return rel

    @property
    def count(self) -> int:
        return len(set(self._seen.values()))


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def iter_rows(build_dir: Path, split: str, batch_rows: int = 4096) -> Iterator[InstructRow]:
    """The instruction rows of a build's split, ``batch_rows`` at a time in memory."""
    files = sorted((build_dir / "instruct").glob(f"{split}*.parquet"))
    for f in files:
        yield from InstructRow.iter_arrow(pq.ParquetFile(f).iter_batches(batch_size=batch_rows))


def plain_messages(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": plain_text(m["content"])} for m in messages]


def write_json_list(path: Path, items: Iterator[dict]) -> int:
    """A JSON array written item by item (bounded memory), sorted keys, one item per line; no file (and
    an earlier one removed) when there is no item: a consumer's loader refuses an empty split."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_open(path, "w") as f:
        f.write("[")
        for item in items:
            f.write(("\n" if n == 0 else ",\n") + json.dumps(item, ensure_ascii=False, sort_keys=True))
            n += 1
        f.write("\n]\n" if n else "]\n")
    return _drop_empty(path, n)


def _drop_empty(path: Path, n: int) -> int:
    """An empty file is dropped (with any earlier file of that name): a consumer refuses an empty split."""
    if not n:
        path.unlink(missing_ok=True)
    return n


def write_jsonl(path: Path, items: Iterator[dict]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_open(path, "w") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return _drop_empty(path, n)


def export(build_dir: str | os.PathLike, fmt: str, out: str | os.PathLike) -> ExportSummary:
    """Write the build's instruction data in format ``fmt`` under ``out`` (see the package docstring)."""
    from . import formats  # noqa: F401 - registers every format
    from .registry import EXPORTERS

    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; formats: {', '.join(EXPORTERS)}")
    b = Path(build_dir)
    if not (b / "build.json").is_file():
        raise ExportError(f"{b} is not a build folder (no build.json; make one with fifa-data build)")
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    store = ImageStore(o, b)
    summary = ExportSummary(fmt, str(o))
    EXPORTERS[fmt](b, o, store, summary)
    summary.images = store.count
    return summary
