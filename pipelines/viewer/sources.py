"""What a viewer input folder is (annotation run, build, release) and its tables.

* annotation run: ``DIR/annotations/part-*.parquet`` (+ ``run.json``), as `fifa-annotate run` writes;
* build: ``DIR/instruct/{train,validation}*.parquet``, ``DIR/bench.parquet`` (+ ``build.json``,
  ``stats.json``; an ``annotations/`` folder is read too when present);
* release: ``DIR/data/<config>/<split>-0000K-of-0000N.parquet`` for the configs ``instruct``,
  ``bench`` and ``annotations`` (+ ``MANIFEST.json``, ``README.md``).

Tables are read without their image bytes (the images are streamed separately, see
``images.py``); a column missing in some files is null there. Every optional file may be absent.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.errors import FifaError
from fifa.pipelines.schema import SPLITS

log = logging.getLogger(__name__)

KINDS = ("annotations", "build", "release")
ROLES = ("annotations", "instruct", "bench")

#: The columns the viewer uses, per role (others are not read).
COLUMNS = {
    "annotations": [
        "sample_id",
        "status",
        "error",
        "error_code",
        "label",
        "method",
        "category",
        "group",
        "image_path",
        "source_path",
        "artifact_mask",
        "artifact_regions",
        "regions",
        "explanation",
        "segments",
        "explainer",
        "grounded",
        "mask_fraction",
        "split",
    ],
    "instruct": [
        "id",
        "sample_id",
        "task",
        "messages",
        "masks",
        "mask_phrases",
        "mask_node_ids",
        "query_mask",
        "query_box",
        "label",
        "method",
        "category",
        "group",
        "split",
    ],
    "bench": [
        "question_id",
        "sample_id",
        "task",
        "question",
        "answer",
        "label",
        "method",
        "category",
        "group",
        "masks",
        "mask_phrases",
        "mask_node_ids",
        "query_mask",
        "query_box",
        "history",
    ],
}

_SPLIT_RE = re.compile(r"^({})(?:[-_.]|$)".format("|".join(SPLITS)))


class SourceError(FifaError, ValueError):
    """A folder the viewer cannot read (the message says what it expected)."""


@dataclass(frozen=True)
class Part:
    """One Parquet file of the input: its role and the split its name gives (if any)."""

    path: Path
    role: str
    split: str | None


@dataclass
class Source:
    kind: str
    root: Path
    parts: list[Part]
    meta: dict = field(default_factory=dict)  # small display facts, never a path
    image_roots: list[Path] = field(default_factory=list)

    def role_parts(self, role: str) -> list[Part]:
        return [p for p in self.parts if p.role == role]


def split_of(path: Path) -> str | None:
    m = _SPLIT_RE.match(path.name)
    return m.group(1) if m else None


def _parquets(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def detect(root: str | Path, image_root: str | Path | None = None) -> Source:
    """Which kind of folder ``root`` is, with its Parquet parts; :class:`SourceError` if none."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"not a folder: {root}")
    extra = [Path(image_root)] if image_root is not None else []
    data = root / "data"
    if (root / "MANIFEST.json").is_file() or any(_parquets(data / c) for c in ROLES):
        parts = [Part(p, c, split_of(p)) for c in ROLES for p in _parquets(data / c)]
        meta = _meta(root / "MANIFEST.json")
        return Source("release", root, parts, meta, extra + [root])
    if (root / "instruct").is_dir() or (root / "bench.parquet").is_file() or (root / "build.json").is_file():
        parts = [Part(p, "instruct", split_of(p)) for p in _parquets(root / "instruct")]
        if (root / "bench.parquet").is_file():
            parts.append(Part(root / "bench.parquet", "bench", "test"))
        parts += [Part(p, "annotations", split_of(p)) for p in _parquets(root / "annotations")]
        meta = _meta(root / "build.json") | {f"stats.{k}": v for k, v in _meta(root / "stats.json").items()}
        roots = extra + [_build_image_root(root)] + [root]
        return Source("build", root, parts, meta, [r for r in roots if r is not None])
    if _parquets(root / "annotations"):
        parts = [Part(p, "annotations", None) for p in _parquets(root / "annotations")]
        return Source("annotations", root, parts, _meta(root / "run.json"), extra + [root])
    raise SourceError(
        f"{root} is neither an annotation run (annotations/*.parquet), a build (instruct/, bench.parquet) "
        "nor a release (data/<config>/*.parquet, MANIFEST.json)"
    )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable %s: %s", path.name, e)
        return {}
    return obj if isinstance(obj, dict) else {}


def _build_image_root(root: Path) -> Path | None:
    """The image root a build names (``image_root`` in build.json), if any."""
    value = _read_json(root / "build.json").get("image_root")
    if not isinstance(value, str) or not value:
        return None
    p = Path(value)
    return p if p.is_absolute() else root / p


def _meta(path: Path) -> dict:
    """Scalar facts of a JSON file (top level and one level down, configs left out), nothing path-like."""
    out: dict = {}

    def visit(prefix: str, obj, depth: int) -> None:
        for k, v in obj.items():
            key = f"{prefix}{k}"
            if "/" in key or "\\" in key or k == "files":  # file lists and path-like keys say nothing here
                continue
            if isinstance(v, dict) and depth < 1 and k not in ("config", "env", "environment"):
                visit(key + ".", v, depth + 1)
            elif (
                isinstance(v, (bool, int, float))
                or isinstance(v, str)
                and len(v) <= 80
                and "/" not in v
                and "\\" not in v
            ):
                out[key] = v

    visit("", _read_json(path), 0)
    return dict(list(out.items())[:60])


def read_role(source: Source, role: str) -> pa.Table:
    """All rows of one role (without images), a ``split`` from the file name where the rows
    have none, sorted by ``sample_id``. Unreadable files are skipped with a warning."""
    tables = []
    for part in source.role_parts(role):
        try:
            schema = pq.read_schema(part.path)
            cols = [c for c in COLUMNS[role] if c in schema.names]
            if "sample_id" not in cols:
                raise SourceError("no sample_id column")
            t = pq.read_table(part.path, columns=cols)
        except (OSError, pa.ArrowException, SourceError) as e:
            log.warning("skipping %s: %s", part.path.name, e)
            source.meta.setdefault("skipped_files", 0)
            source.meta["skipped_files"] += 1
            continue
        if "split" not in t.column_names:
            t = t.append_column("split", pa.array([part.split] * t.num_rows, pa.string()))
        tables.append(t)
    if not tables:
        return pa.table({"sample_id": pa.array([], pa.string())})
    t = pa.concat_tables(tables, promote_options="permissive")
    return t.filter(t.column("sample_id").is_valid()).sort_by("sample_id")
