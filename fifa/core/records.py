"""Typed records between the stages: one frozen dataclass per row of a DESIGN.md table.

Data shapes (each class has the columns of its schema in :mod:`fifa.core.schemas`, field for field, in the
schema's order, with the Python type of what ``pyarrow``'s ``to_pylist`` gives for that column):

* :class:`AnnotationRecord`: one row of :data:`~fifa.core.schemas.ANNOTATION_SCHEMA`, what ``fifa-annotate``
  writes per manifest row (the annotator's worker makes it, the run's writer stores it);
* :class:`InstructRow`: one row of :data:`~fifa.core.schemas.INSTRUCT_SCHEMA`, a training conversation of a
  build (the build writes them columnar; the exporters read them one at a time);
* :class:`BenchQuestion`: one row of :data:`~fifa.core.schemas.BENCH_SCHEMA`, a question of the bench;
* nested values are plain dicts and lists (:class:`~fifa.core.rle.RLE` masks, :class:`Image`,
  :class:`Message`, :class:`RegionHit`, :class:`Segment`, :class:`AnchorMask`): the shapes Arrow structs
  read as, so that a record built from a table writes back the same table.

API (the same on each class ``X``): ``X.from_arrow(table) -> list[X]``, ``X.to_arrow(records) -> pa.Table``
(the core schema, the bytes of the table the stage wrote before records existed), ``X.from_row(dict)``,
``x.to_row() -> dict``. A value whose type is not its column's (a ``str`` for an ``int64``, ``None`` for a
column the contract always fills) raises :class:`RecordTypeError` when the record is made; ``from_arrow``
checks the table's schema once instead of every value.

Records are frozen: a stage that adds to a record makes a new one (:func:`replace`, checked). Arrow tables stay
the tool of the columnar paths (the build's 1.5M rows, releases); records are for code that handles one row
at a time.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict, TypeVar

import pyarrow as pa

from .errors import FifaError
from .rle import RLE
from .schemas import ANNOTATION_SCHEMA, BENCH_SCHEMA, INSTRUCT_SCHEMA

__all__ = [
    "AnchorMask",
    "AnnotationRecord",
    "BenchQuestion",
    "Image",
    "InstructRow",
    "Message",
    "RecordTypeError",
    "RegionHit",
    "Segment",
    "replace",
]


class RecordTypeError(FifaError, TypeError):
    """A record field (or a table column) that does not have its column's type."""


class Image(TypedDict):
    """The Hugging Face ``datasets`` Image struct: embedded ``bytes`` or a ``path`` (one of them set)."""

    bytes: bytes | None
    path: str | None


class Message(TypedDict):
    """A conversation turn: ``role`` is ``user`` or ``assistant``."""

    role: str
    content: str


class RegionHit(TypedDict):
    """A FICT node the artifact touches: share of the node covered, share of the artifact inside, its mask."""

    node_id: str
    coverage: float
    share: float
    mask: RLE


class Segment(TypedDict):
    """The mask of the k-th ``[phrase](node_id)`` mark of an explanation."""

    node_id: str
    phrase: str
    mask: RLE


class AnchorMask(TypedDict):
    """The mask of a FICT anchor found in a bench image (``age`` questions)."""

    node_id: str
    mask: RLE


# --------------------------------------------------------------------- type checks
#: a check of one value: why it is not of the type (None: it is)
Check = Callable[[object, str], "str | None"]


def _scalar_check(typ: pa.DataType) -> Check:
    if pa.types.is_string(typ):
        ok: tuple[type, ...] = (str,)
    elif pa.types.is_boolean(typ):
        ok = (bool,)
    elif pa.types.is_integer(typ):
        ok = (int,)
    elif pa.types.is_floating(typ):  # an int is a float here, as for mypy and Arrow
        ok = (int, float)
    elif pa.types.is_binary(typ):
        ok = (bytes,)
    else:  # pragma: no cover - the schemas use only the types above
        raise NotImplementedError(f"no check for Arrow type {typ}")
    no_bool = not pa.types.is_boolean(typ)  # bool is an int to isinstance

    def check(value: object, where: str) -> str | None:
        if value is None or (isinstance(value, ok) and not (no_bool and isinstance(value, bool))):
            return None
        return f"{where}: expected {typ}, got {type(value).__name__} {value!r:.60}"

    return check


def _list_check(typ: pa.ListType) -> Check:
    item = _type_check(typ.value_type)

    def check(value: object, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, list):
            return f"{where}: expected a list, got {type(value).__name__}"
        for i, v in enumerate(value):
            p = item(v, where)
            if p:
                return p.replace(where, f"{where}[{i}]", 1)
        return None

    return check


def _struct_check(typ: pa.StructType) -> Check:
    fields = [(f.name, _type_check(f.type)) for f in typ]
    names = {n for n, _ in fields}

    def check(value: object, where: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            return f"{where}: expected a dict, got {type(value).__name__}"
        if not value.keys() <= names:
            return f"{where}: unknown key(s) {sorted(set(value) - names)}"
        for n, c in fields:
            p = c(value.get(n), f"{where}.{n}")
            if p:
                return p
        return None

    return check


def _type_check(typ: pa.DataType) -> Check:
    """The check that a Python value can be a value of Arrow type ``typ`` (nested nulls are Arrow nulls)."""
    if pa.types.is_list(typ):
        return _list_check(typ)
    if pa.types.is_struct(typ):
        return _struct_check(typ)
    return _scalar_check(typ)


R = TypeVar("R", bound="_Record")
_CHECKS: dict[type, dict[str, Check]] = {}  # per record class, made on first use


def _check_values(cls: type[_Record], values: Mapping[str, object]) -> None:
    """Raise :class:`RecordTypeError` for the first of ``values`` (column -> value) that its column refuses."""
    checks = _CHECKS.get(cls) or _CHECKS.setdefault(cls, {f.name: _type_check(f.type) for f in cls.SCHEMA})
    for name, value in values.items():
        if value is None and name in cls.REQUIRED:
            raise RecordTypeError(f"{cls.__name__}.{name} may not be None")
        problem = checks[name](value, f"{cls.__name__}.{name}")
        if problem:
            raise RecordTypeError(problem)


class _Record:
    """What the three record classes share: the schema's columns, the checks, the conversions."""

    __slots__ = ()
    SCHEMA: ClassVar[pa.Schema]
    #: columns the contract always fills (the others may be null)
    REQUIRED: ClassVar[frozenset[str]]

    def __post_init__(self) -> None:
        _check_values(type(self), self.to_row())

    @classmethod
    def from_row(cls: type[R], row: Mapping[str, Any]) -> R:
        """A record from a dict of columns (a missing column is null; keys that are no column are ignored)."""
        return cls(**{n: row.get(n) for n in cls.SCHEMA.names})

    def to_row(self) -> dict[str, Any]:
        """The record as a dict of columns (the values themselves, not copies)."""
        return {n: getattr(self, n) for n in self.SCHEMA.names}

    @classmethod
    def to_arrow(cls: type[R], records: Sequence[R]) -> pa.Table:
        """A table of ``records`` with the core schema (empty: the schema's empty table)."""
        getters: list[Callable[[R], Any]] = [operator.attrgetter(n) for n in cls.SCHEMA.names]
        cols = {n: [g(r) for r in records] for n, g in zip(cls.SCHEMA.names, getters)}
        return pa.Table.from_pydict(cols, schema=cls.SCHEMA)

    @classmethod
    def from_arrow(cls: type[R], table: pa.Table | pa.RecordBatch) -> list[R]:
        """The rows of ``table`` as records: its schema is checked once (extra columns are ignored; a
        missing column that may be null reads as null), not every value."""
        columns = [_column(table, f, f.name in cls.REQUIRED, cls.__name__) for f in cls.SCHEMA]
        return [_trusted(cls, values) for values in zip(*columns)] if columns else []

    @classmethod
    def iter_arrow(cls: type[R], batches: Iterable[pa.RecordBatch | pa.Table]) -> Iterable[R]:
        """:meth:`from_arrow` over a stream of batches (one batch's rows in memory at a time)."""
        for batch in batches:
            yield from cls.from_arrow(batch)


def _column(table: pa.Table | pa.RecordBatch, field: pa.Field, required: bool, name: str) -> list[Any]:
    """One column of ``table`` as Python values, after checking (or casting) its type to ``field``'s."""
    if field.name not in table.schema.names:
        if required:
            raise RecordTypeError(f"{name}: the table has no column {field.name!r}")
        return [None] * table.num_rows
    col = table.column(field.name)
    if not col.type.equals(field.type):
        try:
            col = col.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise RecordTypeError(f"{name}.{field.name}: column of type {col.type}, expected {field.type}") from e
    values: list[Any] = col.to_pylist()
    if required and col.null_count:
        raise RecordTypeError(f"{name}.{field.name}: {col.null_count} null value(s) in a column that is never null")
    return values


_SETTERS: dict[type, list[Callable[[object, object], None]]] = {}  # per record class: its slots' setters


def _trusted(cls: type[R], values: Iterable[Any]) -> R:
    """A record from values already of the schema's types, in column order (no ``__post_init__``: no checks)."""
    setters = _SETTERS.get(cls) or _SETTERS.setdefault(cls, [getattr(cls, n).__set__ for n in cls.SCHEMA.names])
    rec = object.__new__(cls)
    for set_slot, v in zip(setters, values):  # the slot's own setter: frozen blocks only attribute assignment
        set_slot(rec, v)
    return rec


def replace(record: R, **changes: Any) -> R:
    """``dataclasses.replace`` for records: a copy with ``changes``, of which only the new values are checked
    (the others were when ``record`` was made; a record of 150 region masks is not checked again per step)."""
    cls = type(record)
    unknown = changes.keys() - set(cls.SCHEMA.names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    _check_values(cls, changes)
    return _trusted(cls, (changes[n] if n in changes else getattr(record, n) for n in cls.SCHEMA.names))


# --------------------------------------------------------------------- the records
@dataclass(frozen=True, slots=True)
class AnnotationRecord(_Record):
    """One annotated manifest row (DESIGN.md "Annotation output"); ``status`` ok | failed | skipped."""

    SCHEMA: ClassVar[pa.Schema] = ANNOTATION_SCHEMA
    REQUIRED: ClassVar[frozenset[str]] = frozenset({"sample_id", "status", "artifact_regions", "regions", "segments"})

    sample_id: str
    status: str
    error: str | None
    error_code: str | None
    label: str | None
    method: str | None
    category: str | None
    group: str | None
    identities: str | None
    collection: str | None
    video: str | None
    frame: int | None
    image_path: str | None
    source_path: str | None
    artifact_mask: RLE | None
    artifact_regions: list[str]
    regions: list[RegionHit]
    explanation: str | None
    visible_explanation: str | None
    segments: list[Segment]
    explainer: str | None
    tree_version: str | None
    grounded: bool | None
    image_height: int | None
    image_width: int | None
    mask_area: int | None
    mask_fraction: float | None
    diff_threshold: float | None
    diff_mean_in_mask: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    llm_calls: int | None
    cached: bool | None
    time_cpu_s: float | None
    time_llm_s: float | None
    attempt: int | None
    annotated_at: str | None


@dataclass(frozen=True, slots=True)
class InstructRow(_Record):
    """One training conversation of a build (DESIGN.md "Instruction rows"), with its provenance."""

    SCHEMA: ClassVar[pa.Schema] = INSTRUCT_SCHEMA
    REQUIRED: ClassVar[frozenset[str]] = frozenset(
        {"id", "sample_id", "task", "image", "messages", "masks", "mask_phrases", "mask_node_ids"}
    )

    id: str
    sample_id: str
    task: str
    image: Image
    messages: list[Message]
    masks: list[RLE]
    mask_phrases: list[str]
    mask_node_ids: list[str]
    query_mask: RLE | None
    query_box: list[float] | None  # [x0, y0, x1, y1] in pixels
    label: str | None
    method: str | None
    category: str | None
    group: str | None
    split: str | None
    collection: str | None
    video: str | None
    frame: int | None
    explainer: str | None
    tree_version: str | None
    review: str | None
    reviewers: list[str] | None


@dataclass(frozen=True, slots=True)
class BenchQuestion(_Record):
    """One question of the bench (DESIGN.md "Bench"): ``answer`` is the plain reference text. The build makes
    them (``pipelines/bench_rows.py``, ``bench_anchors.py``); ``fifa-train predict`` reads them
    (``modeling/submit.py`` -> ``modeling/predict.py``)."""

    SCHEMA: ClassVar[pa.Schema] = BENCH_SCHEMA
    REQUIRED: ClassVar[frozenset[str]] = frozenset(
        {"question_id", "sample_id", "task", "image", "question", "masks", "mask_phrases", "history"}
    )

    question_id: str
    sample_id: str
    task: str
    image: Image
    question: str
    answer: str | None
    label: str | None
    method: str | None
    category: str | None
    masks: list[RLE]
    mask_phrases: list[str]
    mask_node_ids: list[str] | None  # null in a bench of an older build (DESIGN.md: the age rows carry it)
    query_mask: RLE | None
    query_box: list[float] | None
    history: list[Message]
    anchor_masks: list[AnchorMask] | None  # null on age rows where the build could not segment (bench_anchors.py)
    collection: str | None
    video: str | None
    frame: int | None
    explainer: str | None
    tree_version: str | None
    review: str | None
    reviewers: list[str] | None
