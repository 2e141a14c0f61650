"""What an import did: rows written, every failure with its reason, files written.

Every importer returns an :class:`ImportReport` and writes it next to the manifest as
``<manifest stem>.import.json`` (failures included), so nothing is dropped silently.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fifa.core.atomic import write_json_atomic
from fifa.core.errors import FifaError
from fifa.pipelines.manifest import write_manifest


class ImportLayoutError(FifaError, ValueError):
    """The folder or file is not the layout the importer reads; the message says what was expected."""


@dataclass(frozen=True)
class Failure:
    item: str  # what failed: a video, a frame id, a JSON key, a file
    reason: str  # why, in words
    stage: str = "import"  # open | decode | face | missing | match | ...


@dataclass
class ImportReport:
    importer: str
    manifest: Path
    rows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    methods: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # role -> path (report, qa, frames, ...)
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rows > 0

    def failure_counts(self) -> dict[str, int]:
        return dict(Counter(f.stage for f in self.failures).most_common())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["manifest"] = str(self.manifest)
        d["failure_counts"] = self.failure_counts()
        return d


def report_path(manifest: str | Path) -> Path:
    p = Path(manifest)
    return p.with_name(p.stem + ".import.json")


def rel_path(path: str | Path, base: str | Path) -> str:
    """``path`` relative to the folder ``base``, POSIX separators (manifest paths are relative to
    the manifest's own folder; ``..`` appears when the file lies outside it)."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


def outside(rel: str | None) -> bool:
    return rel is not None and (rel == ".." or rel.startswith("../") or os.path.isabs(rel))


def finish(
    importer: str,
    rows: list[Mapping],
    failures: Iterable[Failure],
    out: str | Path,
    *,
    started: float,
    files: Mapping[str, str] | None = None,
    notes: Iterable[str] = (),
    stats: Mapping[str, float] | None = None,
) -> ImportReport:
    """Write the manifest (when there are rows) and ``<stem>.import.json``; return the report."""
    out = Path(out)
    rep = ImportReport(
        importer,
        out,
        rows=len(rows),
        failures=list(failures),
        files=dict(files or {}),
        notes=list(notes),
        stats=dict(stats or {}),
    )
    rep.labels = dict(Counter(r["label"] for r in rows))
    rep.methods = dict(Counter(r.get("method") for r in rows if r.get("method")))
    n_out = sum(1 for r in rows if outside(r.get("image_path")) or outside(r.get("source_path")))
    if n_out:
        rep.notes.append(
            f"{n_out} row(s) point outside the manifest's folder ({out.parent}): run the annotator with "
            f"--data-root set to the collection's root, or --allow-outside-root, or write the manifest at "
            f"the collection's root"
        )
    if rows:
        write_manifest(rows, out)
    rep.elapsed_s = round(time.perf_counter() - started, 3)
    rp = report_path(out)
    rp.parent.mkdir(parents=True, exist_ok=True)
    rep.files["report"] = str(rp)
    write_json_atomic(rep.to_dict(), rp)
    return rep
