"""Reading a build's instruction Parquet directly: an index, seeded epoch orders with task mixing,
and rows fetched by row group (a small per-process cache), so nothing is converted or held whole.

Image paths of a build are relative to the image root its ``build.json`` records (the build folder
itself when there is none), or absolute; when an image struct carries ``bytes``, the bytes are used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow.parquet as pq

from fifa.core.errors import UserError
from fifa.core.records import BenchQuestion, InstructRow
from fifa.pipelines.buildinfo import build_image_root

INDEX_COLUMNS = ["task", "label"]
#: the records a build's Parquet rows read as
R = TypeVar("R", BenchQuestion, InstructRow)


@dataclass
class Location:
    file: int
    group: int
    row: int


class ParquetRows:
    """Rows of one or more Parquet files addressed by a global index, read one row group at a time."""

    def __init__(self, files: list[Path], cache_groups: int = 2):
        self.files = [Path(f) for f in files]
        self._pf: dict[int, pq.ParquetFile] = {}
        self._cache: OrderedDict = OrderedDict()
        self.cache_groups = cache_groups
        starts, locs = [], []
        for fi, f in enumerate(self.files):
            md = pq.ParquetFile(f).metadata
            for g in range(md.num_row_groups):
                starts.append(sum(n for _, _, n in locs))
                locs.append((fi, g, md.row_group(g).num_rows))
        self._groups = locs
        self._starts = np.asarray(starts + [sum(n for _, _, n in locs)], dtype=np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self):  # worker processes reopen files themselves
        d = dict(self.__dict__)
        d["_pf"], d["_cache"] = {}, OrderedDict()
        return d

    def locate(self, i: int) -> tuple[int, int]:
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        return k, i - int(self._starts[k])

    def column(self, name: str) -> list:
        out = []
        for f in self.files:
            pf = pq.ParquetFile(f)
            out.extend(pf.read(columns=[name]).column(name).to_pylist())
        return out

    def _group(self, k: int) -> dict:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        fi, g, _ = self._groups[k]
        if fi not in self._pf:
            self._pf[fi] = pq.ParquetFile(self.files[fi])
        cols = self._pf[fi].read_row_group(g).to_pydict()
        self._cache[k] = cols
        while len(self._cache) > self.cache_groups:
            self._cache.popitem(last=False)
        return cols

    def row(self, i: int) -> dict:
        k, r = self.locate(i)
        cols = self._group(k)
        return {c: v[r] for c, v in cols.items()}

    def records(self, cls: type[R], indices: Sequence[int]) -> list[R]:
        """Rows ``indices`` as typed records of ``cls`` (a bench: :class:`~fifa.core.records.BenchQuestion`), in
        that order: each row group read once, its rows converted by ``cls.from_arrow`` (the columns checked once:
        a column missing, of another type, or null where the record needs a value raises
        :class:`~fifa.core.records.RecordTypeError` naming the field)."""
        where: dict[int, list[tuple[int, int]]] = {}
        for n, i in enumerate(indices):
            k, r = self.locate(i)
            where.setdefault(k, []).append((n, r))
        out: list = [None] * len(indices)
        for k, pairs in where.items():
            fi, g, _ = self._groups[k]
            if fi not in self._pf:
                self._pf[fi] = pq.ParquetFile(self.files[fi])
            table = self._pf[fi].read_row_group(g).take([r for _, r in pairs])
            for (n, _), rec in zip(pairs, cls.from_arrow(table)):
                out[n] = rec
        return out


def split_files(build: str | Path, split: str) -> list[Path]:
    root = Path(build)
    if not root.is_dir():
        raise UserError(f"build folder not found: {root}")
    files = sorted((root / "instruct").glob(f"{split}*.parquet"))
    return files


class InstructData:
    """One split of a build: the index (tasks, labels) and rows by global position."""

    def __init__(self, build: str | Path, split: str = "train"):
        self.root = Path(build)
        files = split_files(build, split)
        if not files:
            raise UserError(
                f"no instruction data for split {split!r}: expected {self.root}/instruct/{split}*.parquet "
                "(run fifa-data build)"
            )
        self.rows = ParquetRows(files)
        if len(self.rows) == 0:
            raise UserError(f"the {split} split of {self.root} has no rows")
        self.tasks = np.asarray(self.rows.column("task"), dtype=object)
        self.image_root = build_image_root(self.root)

    def __len__(self) -> int:
        return len(self.rows)

    def task_counts(self) -> dict[str, int]:
        names, counts = np.unique(self.tasks.astype(str), return_counts=True)
        return {str(n): int(c) for n, c in zip(names, counts)}

    def resolve_image(self, image: dict | None) -> bytes | Path:
        if image is None:
            raise ValueError("row has no image")
        if image.get("bytes"):
            return image["bytes"]
        p = image.get("path")
        if not p:
            raise ValueError("image has neither bytes nor path")
        path = Path(p)
        return path if path.is_absolute() else self.image_root / path


def task_weights(available: dict[str, int], wanted: dict[str, float]) -> dict[str, float]:
    """Sampling weight per task; a task the config asks for that the build lacks is a user error."""
    if not wanted:
        return dict.fromkeys(available, 1.0)
    missing = sorted(t for t, w in wanted.items() if w > 0 and t not in available)
    if missing:
        raise UserError(
            f"the build has no rows for task(s) {', '.join(missing)} that data.tasks asks for "
            f"(the build has: {', '.join(sorted(available)) or 'none'})"
        )
    return {t: float(wanted.get(t, 0.0)) for t in available}


def epoch_order(tasks: np.ndarray, weights: dict[str, float], seed: int, epoch: int, chunk_rows: int) -> np.ndarray:
    """Global row indices for one epoch: each task's rows repeated ``weight`` times (the fractional part
    drawn at random), shuffled within windows of ``chunk_rows`` storage-order rows (Parquet locality),
    windows in random order, then interleaved in blocks so a batch mixes windows. Same seed, same order."""
    rng = np.random.default_rng([seed, epoch])
    picked = []
    for t, w in sorted(weights.items()):
        idx = np.flatnonzero(tasks == t)
        if w <= 0 or not len(idx):
            continue
        whole, frac = int(np.floor(w)), w - np.floor(w)
        parts = [idx] * whole
        if frac > 0:
            parts.append(rng.choice(idx, size=int(round(frac * len(idx))), replace=False))
        picked.append(np.concatenate(parts) if parts else idx[:0])
    if not picked:
        return np.zeros(0, dtype=np.int64)
    rows = np.sort(np.concatenate(picked))
    window = rows // max(1, chunk_rows)
    order = rng.permutation(int(window.max()) + 1)
    key = order[window] * (len(rows) + 1) + rng.permutation(len(rows))
    return rows[np.argsort(key, kind="stable")].astype(np.int64)
