"""`build_site`: a static review site over an annotation run, a build or a release.

Layout of ``SITE``::

    index.html, viewer.js, viewer.css   the page (static, the same for every site; no data inside)
    data/index.js                       facets + one compact entry per sample (filtering, paging)
    data/p00000.js, p00001.js, ...      the samples, ``page_size`` per file, loaded on demand
    img/<sha256>.jpg                    each image once, downscaled (content-addressed)
    .fifa-viewer                        marks the folder as a site (a rebuild may replace its files)

Data files are JavaScript (``fifaViewerData(kind, n, {...json...})``), not ``.json``, so the
site works opened from disk (``file://`` pages may not fetch files) under a Content-Security-
Policy that runs only the site's own scripts. The JSON is ASCII-escaped: no data string can end
the call or a string, and the page sets every string through ``textContent``.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.atomic import write_text_atomic
from fifa.core.errors import FifaError

from .images import ImageMissing, ImageStore
from .samples import build_sample
from .sources import ROLES, Source, detect, read_role

log = logging.getLogger(__name__)

MARKER = ".fifa-viewer"
STATIC = ("index.html", "viewer.js", "viewer.css", "favicon.svg")
FACETS = ("label", "method", "category", "status")  # single-valued; split and task are lists


@dataclass(frozen=True)
class ViewerConfig:
    page_size: int = 50  # samples per data file and per page of the list
    max_side: int = 512  # images are downscaled to at most this many pixels on their long side
    jpeg_quality: int = 85
    image_root: str | Path | None = None  # where relative image paths of a build/release live
    workers: int = 0  # image-encoding threads; 0: one per core
    progress: bool = True


@dataclass
class SiteSummary:
    out: str
    kind: str
    samples: int = 0
    pages: int = 0
    images: int = 0
    missing_images: int = 0
    samples_with_warnings: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class SiteError(FifaError, ValueError):
    """The output folder cannot be used (the message says why)."""


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise SiteError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"--out {out} is a non-empty folder that is not a viewer site; choose a new or empty folder")
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("fifa-data view site\n", "utf-8")


def _groups(t: pa.Table) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Row ranges of each sample_id in a table sorted by sample_id."""
    ids = t.column("sample_id").to_pylist()
    spans: dict[str, tuple[int, int]] = {}
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            spans[ids[start]] = (start, i)
            start = i
    return ids, spans


def _rows(t: pa.Table, spans: dict, sids: list[str]) -> dict[str, list[dict]]:
    """Rows of the samples ``sids`` (contiguous in sort order), grouped by sample_id."""
    hit = [spans[s] for s in sids if s in spans]
    if not hit:
        return {}
    lo, hi = hit[0][0], hit[-1][1]
    out: dict[str, list[dict]] = {}
    for r in t.slice(lo, hi - lo).to_pylist():
        out.setdefault(r["sample_id"], []).append(r)
    return out


class _Images:
    """Finds and stores the image (and, for annotations, the pristine source) of every sample."""

    def __init__(self, source: Source, store: ImageStore, workers: int):
        self.source, self.store = source, store
        self.workers = workers or os.cpu_count() or 1
        self.img: dict[str, dict] = {}
        self.src: dict[str, dict] = {}
        self.problems: dict[str, list[str]] = {}

    def _try(self, sid: str, spec, into: dict) -> None:
        try:
            into[sid] = self.store.add(spec).to_json()
        except ImageMissing as e:
            self.problems.setdefault(sid, []).append(str(e))
        except OSError as e:
            self.problems.setdefault(sid, []).append(f"image not readable ({type(e).__name__})")

    def _run(self, pool: cf.Executor, jobs: list[tuple]) -> None:
        list(pool.map(lambda j: self._try(*j), jobs))

    def collect(self, ann: pa.Table, progress) -> None:
        with cf.ThreadPoolExecutor(self.workers) as pool:
            cols = [c for c in ("sample_id", "image_path", "source_path") if c in ann.column_names]
            if "image_path" in cols:
                for batch in ann.select(cols).to_batches(max_chunksize=64):
                    rows = batch.to_pylist()
                    self._run(pool, [(r["sample_id"], r["image_path"], self.img) for r in rows if r["image_path"]])
                    self._run(
                        pool, [(r["sample_id"], r["source_path"], self.src) for r in rows if r.get("source_path")]
                    )
                    progress(len(rows))
            for part in self.source.parts:
                self._stream_part(pool, part.path, progress)
        for sid in self.img:
            self.problems.pop(sid, None)  # a later copy of the image was found

    def _stream_part(self, pool, path: Path, progress) -> None:
        try:
            f = pq.ParquetFile(path)
            if "image" not in f.schema_arrow.names:
                return
            for batch in f.iter_batches(batch_size=64, columns=["sample_id", "image"]):
                rows = batch.to_pylist()
                todo, seen = [], set()
                for r in rows:
                    sid = r["sample_id"]
                    if sid is not None and sid not in self.img and sid not in seen:
                        seen.add(sid)
                        todo.append((sid, r["image"], self.img))
                self._run(pool, todo)
                progress(len(rows))
        except (OSError, pa.ArrowException) as e:
            log.warning("images of %s not read: %s", path.name, e)

    def for_sample(self, sid: str) -> dict:
        return {"img": self.img.get(sid), "source": self.src.get(sid), "warnings": self.problems.get(sid, [])}


def _site_id(kind: str, sids: list[str]) -> str:
    h = hashlib.sha256(kind.encode())
    for s in sids:
        h.update(b"\0" + s.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def _js(kind: str, n: int, obj) -> str:
    """A data file; ``<``, ``>`` and ``&`` are escaped too, so even inlined in HTML it could not end a script."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"fifaViewerData({json.dumps(kind)}, {n}, {text});\n"


def _write(path: Path, text: str) -> None:
    write_text_atomic(path, text, "ascii", durable=False)  # a generated site: a rebuild rewrites it


class _Facets:
    """Per-sample facet codes for the index (value lists + integer columns)."""

    def __init__(self):
        self.values: dict[str, list] = {k: [] for k in (*FACETS, "split", "task")}
        self._code: dict[str, dict] = {k: {} for k in self.values}
        self.cols: dict[str, list] = {k: [] for k in ("id", "warn", *self.values)}

    def _c(self, facet: str, v) -> int:
        codes = self._code[facet]
        if v not in codes:
            codes[v] = len(self.values[facet])
            self.values[facet].append(v)
        return codes[v]

    def add(self, s: dict) -> None:
        self.cols["id"].append(s["id"])
        self.cols["warn"].append(1 if s["warnings"] else 0)
        for f in FACETS:
            self.cols[f].append(self._c(f, s[f]))
        self.cols["split"].append([self._c("split", v) for v in s["splits"]])
        self.cols["task"].append([self._c("task", v) for v in s["tasks"]])


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


def build_site(src: str | Path, out: str | Path, config: ViewerConfig | None = None) -> SiteSummary:
    """Write a static review site for the annotation run, build or release folder ``src`` into ``out``
    (``config``: ``ViewerConfig()`` by default).

    Raises :class:`~fifa.pipelines.viewer.sources.SourceError` for an unreadable input and
    :class:`SiteError` for an output folder that is not a site. A bad row, mask or image never
    stops the build: it shows as a warning of its sample.
    """
    t0 = time.perf_counter()
    config = config if config is not None else ViewerConfig()
    if config.page_size < 1 or config.max_side < 16:
        raise SiteError("page size must be >= 1 and max side >= 16")
    source = detect(src, config.image_root)
    out = Path(out)
    _prepare_out(out)
    tables = {role: read_role(source, role) for role in ROLES}
    spans = {role: _groups(t)[1] for role, t in tables.items()}
    sids = sorted(set().union(*(s.keys() for s in spans.values())))
    store = ImageStore(
        out / "img", source.image_roots, config.max_side, config.jpeg_quality, allow_absolute=source.kind != "release"
    )
    images = _Images(source, store, config.workers)
    summary = SiteSummary(out=str(out), kind=source.kind, samples=len(sids))
    facets = _Facets()
    pages = (len(sids) + config.page_size - 1) // config.page_size
    with _progress_bar(config.progress) as bar:
        total = sum(t.num_rows for t in tables.values())
        task = bar.add_task("images", total=total)
        images.collect(tables["annotations"], lambda n: bar.advance(task, n))
        task = bar.add_task("pages", total=pages)
        for p in range(pages):
            page_ids = sids[p * config.page_size : (p + 1) * config.page_size]
            _write_page(out, p, page_ids, tables, spans, images, facets)
            bar.advance(task)
    index = {
        "version": 1,
        "site_id": _site_id(source.kind, sids),
        "kind": source.kind,
        "title": f"{source.kind}: {source.root.resolve().name}",
        "meta": source.meta,
        "page_size": config.page_size,
        "pages": pages,
        "facets": facets.values,
        "samples": facets.cols,
    }
    _write(out / "data" / "index.js", _js("index", 0, index))
    _finish_files(out, pages)
    store.prune()
    summary.pages = pages
    summary.images = len(store.written)
    summary.missing_images = sum(1 for s in sids if s not in images.img)
    summary.samples_with_warnings = sum(facets.cols["warn"])
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def _write_page(
    out: Path, p: int, page_ids: list[str], tables: dict, spans: dict, images: _Images, facets: _Facets
) -> None:
    """Page ``p``: its samples with their annotation, instruction and bench rows and images (their facets
    counted into ``facets``)."""
    rows = {role: _rows(tables[role], spans[role], page_ids) for role in ROLES}
    samples = [
        build_sample(
            s,
            rows["annotations"].get(s, []),
            rows["instruct"].get(s, []),
            rows["bench"].get(s, []),
            images.for_sample(s),
        )
        for s in page_ids
    ]
    for s in samples:
        facets.add(s)
    _write(out / "data" / f"p{p:05d}.js", _js("page", p, {"page": p, "samples": samples}))


def _finish_files(out: Path, pages: int) -> None:
    """Copy the static files of the site; delete the pages an earlier, larger build of this site left."""
    for name in STATIC:
        with resources.as_file(resources.files(__package__) / "static" / name) as f:
            shutil.copyfile(f, out / name)
    for f in (out / "data").glob("p*.js"):  # pages of an earlier, larger build of this site
        if f.stem[1:].isdigit() and int(f.stem[1:]) >= pages:
            f.unlink()
