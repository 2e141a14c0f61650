"""Loading a DFA-Bench table (the reference side of scoring).

The bench is Parquet (or a pandas DataFrame) with the DESIGN columns
``question_id, sample_id, task, image, question, answer, label, method,
category, masks, mask_phrases, query_mask`` and, for the grounding metrics of ``age``,
``mask_node_ids`` (the FICT id of each reference mask) and ``anchor_masks`` (the anchors found in
the image).  Reference masks are validated with :func:`fifa.core.rle.check_rle` like any
RLE from outside when the bench is loaded, anchor masks when they are first read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.errors import FifaError
from fifa.core.rle import InvalidRLE, check_rle
from fifa.core.submission import list_ids
from fifa.core.tasks import TASKS

REQUIRED_BENCH_COLUMNS = ("question_id", "task", "answer")
#: tasks answered with a class name (the classes are the bench's answers)
CLASS_TASKS = tuple(t.id for t in TASKS.values() if t.answer == "class")


class BenchError(FifaError, ValueError):
    """The bench itself cannot be used."""


def label_value(v: Any) -> int | None:
    """``1`` fake / ``0`` real from the bench's label column (strings or numbers)."""
    if v is None:
        return None
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("fake", "1", "true", "yes", "forged"):
            return 1
        if s in ("real", "0", "false", "no", "pristine"):
            return 0
        return None
    try:
        if v != v:  # NaN
            return None
        return 1 if int(v) == 1 else 0 if int(v) == 0 else None
    except (TypeError, ValueError):
        return None


@dataclass
class Bench:
    question_id: list[str]
    task: list[str]
    answer: list[str | None]
    label: list[int | None]
    method: list[str | None]
    category: list[str | None]
    sample_id: list[str | None]
    masks: list[list[dict]]
    query_mask_size: list[list[int] | None]
    path: Path | None = None
    #: per row, the FICT id of each reference mask; None when the bench cannot give them for ``age``
    mask_node_ids: list[list[str]] | None = None
    #: per row, {anchor id: RLE} of the anchors found in the image (checked when read); None when the bench
    #: has none for ``age``
    anchor_masks: list[AnchorMasks] | None = None
    question: list[str | None] | None = None
    _table: pa.Table | None = field(default=None, repr=False)
    _image_sizes: dict[int, list[int] | None] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.index = {q: i for i, q in enumerate(self.question_id)}

    def __len__(self) -> int:
        return len(self.question_id)

    def rows(self, task: str) -> list[int]:
        return [i for i, t in enumerate(self.task) if t == task]

    @property
    def tasks(self) -> list[str]:
        return sorted(set(self.task), key=lambda t: (t not in TASKS, t))

    def classes(self) -> list[str]:
        """Class set of ``cls``: the unique reference answers, sorted."""
        return sorted({a for i, a in enumerate(self.answer) if self.task[i] in CLASS_TASKS and a is not None})

    def image_size(self, i: int) -> list[int] | None:
        """[height, width] of row ``i``'s image: from its masks, its query mask, else the image header."""
        if self.masks[i]:
            return list(self.masks[i][0]["size"])
        if self.query_mask_size[i] is not None:
            return self.query_mask_size[i]
        if i not in self._image_sizes:
            self._image_sizes[i] = self._header_size(i)
        return self._image_sizes[i]

    def image(self, i: int) -> dict | None:
        """Row ``i``'s ``image`` struct (``{"bytes", "path"}``) or None; the column is read on first use."""
        if self._table is None and self.path is not None:
            try:
                self._table = pq.read_table(self.path, columns=["image"])
            except Exception:  # noqa: BLE001
                self._table = pa.table({"x": [None] * len(self)})
        if self._table is None or "image" not in self._table.column_names:
            return None
        img = self._table.column("image")[i].as_py()
        return img if isinstance(img, dict) else None

    def image_root(self):
        """The folder relative ``image.path`` values lie in (a build's image root, else the bench's folder)."""
        from fifa.pipelines.buildinfo import build_image_root

        return build_image_root(self.path.parent) if self.path is not None else None

    def _header_size(self, i: int) -> list[int] | None:
        from PIL import Image

        img = self.image(i)
        if img is None:
            return None
        try:
            if img.get("bytes"):
                with Image.open(io.BytesIO(img["bytes"])) as im:  # header only, no pixel decode
                    w, h = im.size
                return [h, w]
            p = img.get("path")
            if p:
                pp = Path(p)
                if not pp.is_absolute() and self.path is not None:
                    pp = self.path.parent / pp
                with Image.open(pp) as im:
                    w, h = im.size
                return [h, w]
        except Exception:  # noqa: BLE001 - an unreadable image only disables the size check
            return None
        return None


def _col(table: pa.Table, name: str, n: int) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * n


def load_bench(bench: Any) -> Bench:
    """Read a bench from a Parquet path or a DataFrame; raises :class:`BenchError`."""
    if isinstance(bench, Bench):
        return bench
    table, path = _bench_table(bench)
    n = table.num_rows
    qids = _question_ids(table)
    tasks = [str(t) if t is not None else "" for t in table.column("task").to_pylist()]
    masks = _reference_masks(qids, _col(table, "masks", n))
    qsizes = _query_mask_sizes(qids, _col(table, "query_mask", n))
    text = lambda name: [None if v is None else str(v) for v in _col(table, name, n)]  # noqa: E731
    node_ids, anchors = _grounding_columns(table, qids, tasks, masks)
    return Bench(
        question_id=qids,
        task=tasks,
        answer=text("answer"),
        label=[label_value(v) for v in _col(table, "label", n)],
        method=text("method"),
        category=text("category"),
        sample_id=text("sample_id"),
        masks=masks,
        query_mask_size=qsizes,
        path=path,
        mask_node_ids=node_ids,
        anchor_masks=anchors,
        question=text("question"),
        _table=None if path is not None else table.select([c for c in ("image",) if c in table.column_names]),
    )


def _bench_table(bench: Any) -> tuple[pa.Table, Path | None]:
    """The bench's table (from a Parquet path: without images) with the required columns, and its path."""
    path = None
    if isinstance(bench, (str, os.PathLike)):
        path = Path(bench)
        if not path.exists():
            raise BenchError(f"bench not found: {path}")
        try:
            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[c for c in names if c != "image"])
        except Exception as e:  # noqa: BLE001
            raise BenchError(f"cannot read bench {path}: {e}") from None
    else:
        try:
            table = pa.Table.from_pandas(bench, preserve_index=False)
        except Exception as e:  # noqa: BLE001
            raise BenchError(f"cannot use bench table: {e}") from None
    missing = [c for c in REQUIRED_BENCH_COLUMNS if c not in table.column_names]
    if missing:
        raise BenchError(f"bench lacks column(s): {', '.join(missing)}")
    return table, path


def _question_ids(table: pa.Table) -> list[str]:
    """The ``question_id`` column as strings, each present and unique."""
    qids = [None if q is None else str(q) for q in table.column("question_id").to_pylist()]
    if any(q is None for q in qids):
        raise BenchError("bench has null question_id values")
    seen, dups = set(), []
    for q in qids:
        if q in seen:
            dups.append(q)
        seen.add(q)
    if dups:
        raise BenchError(f"bench has {len(dups)} duplicate question_id(s): {list_ids(dups)}")
    return qids  # type: ignore[return-value]


def _reference_masks(qids: list[str], raw_masks: list) -> list[list[dict]]:
    """Each question's reference masks, checked (valid RLE, one size per question)."""
    masks: list[list[dict]] = []
    bad = []
    for q, ms in zip(qids, raw_masks):
        out = []
        if ms:
            try:
                out = [check_rle(m) for m in ms]
                if len({tuple(m["size"]) for m in out}) > 1:
                    raise InvalidRLE("reference masks of one question differ in size")
            except InvalidRLE as e:
                bad.append(f"{q!r} ({e})")
                out = []
        masks.append(out)
    if bad:
        raise BenchError(f"bench has {len(bad)} invalid reference mask list(s): {list_ids(bad, quote=False)}")
    return masks


def _query_mask_sizes(qids: list[str], raw: list) -> list[list[int] | None]:
    """[height, width] of each question's query mask (None without one), each checked."""
    qsizes, bad = [], []
    for q, qm in zip(qids, raw):
        try:
            qsizes.append(list(check_rle(qm)["size"]) if qm else None)
        except InvalidRLE as e:  # a broken query is a broken bench, never silently "no query"
            bad.append(f"{q!r} ({e})")
            qsizes.append(None)
    if bad:
        raise BenchError(f"bench has {len(bad)} invalid query_mask(s): {list_ids(bad, quote=False)}")
    return qsizes


class AnchorMasks(Mapping):
    """{anchor id: RLE} of one ``age`` question, each mask checked (``check_rle``, the question's image size)
    when first read: only the anchors a submission's phrases name are ever read (19 per question would
    cost more than the grounding metrics). A broken one refuses the bench (:class:`BenchError`)."""

    def __init__(self, raw: dict[str, Any], question_id: str, size: list[int] | None, fetch=None):
        """``raw``: {anchor: RLE}, or {anchor: position} with ``fetch(position) -> RLE`` (read from Arrow then)."""
        self._raw, self._qid, self._size, self._ok, self._fetch = raw, question_id, size, {}, fetch

    def __getitem__(self, anchor: str) -> dict:
        if anchor not in self._ok:
            try:
                m = check_rle(self._fetch(self._raw[anchor]) if self._fetch else self._raw[anchor], self._size)
            except InvalidRLE as e:
                raise BenchError(
                    f"bench question {self._qid!r} has an invalid anchor mask for {anchor!r}: {e}"
                ) from None
            self._size = self._size or m["size"]  # every anchor mask of the question has one size
            self._ok[anchor] = m
        return self._ok[anchor]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _anchor_masks_arrow(col, qids: list[str], age: list[int], masks: list[list[dict]]) -> list | None:
    """AnchorMasks per row straight from the Arrow column: node ids read now, each mask when first used
    (converting 19 RLE structs per question to Python would cost more than the grounding metrics)."""
    import numpy as np

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count and np.asarray(arr.is_null())[age].any():
        return None
    lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
    starts = np.concatenate(([0], np.cumsum(lengths)))
    flat = arr.flatten()
    ids = flat.field("node_id").to_pylist()
    mask = flat.field("mask")
    sizes, counts = mask.field("size"), mask.field("counts")
    valid = np.asarray(mask.is_valid())
    pairs = None  # [h, w] of every mask as numpy when every size has two values
    if not sizes.null_count and (sizes.value_lengths().to_numpy(zero_copy_only=False) == 2).all():
        pairs = sizes.flatten().to_numpy(zero_copy_only=False).reshape(-1, 2).tolist()

    def fetch(j: int):
        if not valid[j]:
            return None
        return {"size": pairs[j] if pairs is not None else sizes[j].as_py(), "counts": counts[j].as_py()}

    out = [AnchorMasks({}, "", None) for _ in range(len(arr))]
    for i in age:
        a, b = int(starts[i]), int(starts[i + 1])
        out[i] = AnchorMasks(
            {str(x): j for x, j in zip(ids[a:b], range(a, b))},
            qids[i],
            masks[i][0]["size"] if masks[i] else None,
            fetch,
        )
    return out


def _grounding_columns(table: pa.Table, qids: list[str], tasks: list[str], masks: list[list[dict]]):
    """(mask_node_ids, anchor_masks) of the bench, each None when a column is absent or null on an
    ``age`` row (a bench of an older build): the metrics that need it are then not computed."""
    n = table.num_rows
    age = [i for i, t in enumerate(tasks) if t == "age"]
    node_ids = anchors = None
    if "mask_node_ids" in table.column_names:
        raw = table.column("mask_node_ids").to_pylist()
        if all(raw[i] is not None for i in age):
            node_ids = [[str(x) for x in (v or [])] for v in raw]
            bad = [qids[i] for i in age if len(node_ids[i]) != len(masks[i])]
            if bad:
                raise BenchError(
                    f"bench has {len(bad)} age question(s) whose mask_node_ids do not follow their "
                    f"masks (one id per mask): {list_ids(bad)}"
                )
    if "anchor_masks" in table.column_names:
        try:
            return node_ids, _anchor_masks_arrow(table.column("anchor_masks"), qids, age, masks)
        except (pa.ArrowException, AttributeError, KeyError, TypeError):  # not list<struct<node_id, mask>>
            pass
        raw = table.column("anchor_masks").to_pylist()
        if all(raw[i] is not None for i in age):
            anchors = [AnchorMasks({}, "", None) for _ in range(n)]
            for i in age:
                try:
                    anchors[i] = AnchorMasks(
                        {str(e["node_id"]): e["mask"] for e in raw[i]},
                        qids[i],
                        masks[i][0]["size"] if masks[i] else None,
                    )
                except (TypeError, KeyError):
                    raise BenchError(
                        f"bench question {qids[i]!r} has anchor_masks that are not {{node_id, mask}} entries"
                    ) from None
    return node_ids, anchors
