"""COCO run-length encoding (RLE): the mask type every stage stores, its Arrow type, its validator.

Data shapes:

* :class:`RLE` ``{"size": [h, w], "counts": str}``: pycocotools' compressed counts string, column-major
  order (``counts`` may be ``bytes`` or a list of run lengths only on the way in, to :func:`check_rle`);
* :data:`RLE_TYPE`: the same as an Arrow struct (``size: list<int64>, counts: string``), the type of
  every mask column of DESIGN.md (annotations, instruction rows, bench, submissions);
* a mask: a 2-D boolean ``numpy`` array (``encode`` / ``decode``); a label map: a 2-D integer array.

pycocotools trusts its input: a malformed counts string decodes into uninitialised memory or aborts
the process. Every RLE that comes from outside (submissions, imported data) must pass
:func:`check_rle` before pycocotools sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pycocotools import mask as mask_utils

from .errors import FifaError


class RLE(TypedDict):
    """A COCO RLE mask (see the module docstring)."""

    size: list[int]  # [height, width]
    counts: str


#: The Arrow type of an :class:`RLE` column.
RLE_TYPE = pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])


class InvalidRLE(FifaError, ValueError):
    """An RLE that is not a well-formed COCO mask."""


# --------------------------------------------------------------------- parsing
def parse_counts(counts: str) -> list[int]:
    """Decode a COCO compressed counts string into run lengths, without pycocotools.

    Mirrors ``rleFrString`` of the COCO API, but refuses what it would misread:
    characters outside the alphabet, a value cut off mid-way, negative runs.
    """
    if not isinstance(counts, str):
        raise InvalidRLE(f"counts must be a string, got {type(counts).__name__}")
    out: list[int] = []
    i, n = 0, len(counts)
    while i < n:
        x, k, more = 0, 0, True
        while more:
            if i >= n:
                raise InvalidRLE("counts string ends inside a value")
            c = ord(counts[i]) - 48
            if c < 0 or c > 63:
                raise InvalidRLE(f"invalid character {counts[i]!r} in counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            i += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
            if k > 13:
                raise InvalidRLE("counts value too long")
        if len(out) > 2:
            x += out[-2]
        if x < 0:
            raise InvalidRLE(f"negative run length {x} at position {len(out)}")
        out.append(x)
    return out


def runs_ok(counts: str, total: int) -> bool:
    """Vectorised fast path of :func:`check_rle`: True when ``counts`` parses to non-negative
    runs summing to ``total``.

    Handles the common case (ASCII, values of at most 6 characters); ``False`` means "not
    proven valid here" and :func:`parse_counts` decides (and explains). It never accepts
    what :func:`parse_counts` refuses (tested).
    """
    if not counts or not counts.isascii():
        return False
    c = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    if c.min() < 0 or c.max() > 63:
        return False
    more = (c & 0x20) != 0
    if more[-1]:
        return False
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lens = ends - starts + 1
    if lens.max() > 6:
        return False
    pos = np.arange(c.size) - np.repeat(starts, lens)
    vals = np.add.reduceat((c & 0x1F) << (5 * pos), starts)
    vals = vals - ((c[ends] & 0x10) != 0) * (np.int64(1) << (5 * lens))
    out = vals.copy()
    out[1::2] = np.cumsum(vals[1::2])  # values past the second are deltas of the one two back
    out[2::2] = np.cumsum(vals[2::2])
    return bool(out.min() >= 0) and int(out.sum()) == total


def check_rle(obj: object, expect_size: Sequence[int] | None = None) -> RLE:
    """Validate an RLE from outside and return it normalised (``counts`` as str).

    Accepts compressed (str / bytes) or uncompressed (list of ints) counts.
    Raises :class:`InvalidRLE` with a short reason otherwise.
    """
    if not isinstance(obj, Mapping):
        raise InvalidRLE(f"mask must be an object with size and counts, got {type(obj).__name__}")
    size, counts = obj.get("size"), obj.get("counts")
    if size is None or counts is None:
        raise InvalidRLE("mask needs both 'size' and 'counts'")
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidRLE(f"size must be [height, width], got {size!r}") from None
    if h < 0 or w < 0 or any(float(v) != int(v) for v in size):
        raise InvalidRLE(f"size must be two non-negative integers, got {size!r}")
    if expect_size is not None and [h, w] != [int(v) for v in expect_size]:
        raise InvalidRLE(f"mask size {[h, w]} differs from image size {list(expect_size)}")
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRLE("counts bytes are not ASCII") from None
    if isinstance(counts, str) and runs_ok(counts, h * w):
        return {"size": [h, w], "counts": counts}
    if isinstance(counts, str):
        runs = parse_counts(counts)
        compressed = counts
    elif isinstance(counts, (list, tuple, np.ndarray)):
        try:
            runs = [int(v) for v in counts]
        except (TypeError, ValueError):
            raise InvalidRLE("uncompressed counts must be integers") from None
        if any(v < 0 for v in runs):
            raise InvalidRLE("uncompressed counts must be non-negative")
        compressed = None
    else:
        raise InvalidRLE(f"counts must be a string or a list, got {type(counts).__name__}")
    total = sum(runs)
    if total != h * w:
        raise InvalidRLE(f"counts sum to {total}, expected height*width = {h * w}")
    if compressed is None:
        compressed = _compress_runs(runs, h, w)
    return {"size": [h, w], "counts": compressed}


def _compress_runs(runs: Sequence[int], h: int, w: int) -> str:
    rle = mask_utils.frPyObjects({"counts": list(runs), "size": [h, w]}, h, w)
    return _as_str(rle)["counts"]


def _as_str(rle: Mapping[str, Any]) -> RLE:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def _as_coco(rle: Mapping[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


# -------------------------------------------------------------------- encoding
def encode(mask: NDArray[Any]) -> RLE:
    """Encode a 2-D boolean mask."""
    m = np.asfortranarray(np.asarray(mask, dtype=np.uint8))
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {m.shape}")
    return _as_str(mask_utils.encode(m))


def decode(rle: Mapping[str, Any]) -> NDArray[Any]:
    """Decode a (trusted) RLE into a boolean HxW array."""
    h, w = int(rle["size"][0]), int(rle["size"][1])
    if h * w == 0:
        return np.zeros((h, w), dtype=bool)
    out: NDArray[np.bool_] = mask_utils.decode(_as_coco(rle)).astype(bool)
    return out


def empty(height: int, width: int) -> RLE:
    """An all-zero mask of the given size."""
    return {"size": [height, width], "counts": _compress_runs([height * width], height, width)}


def area(rle: Mapping[str, Any]) -> int:
    return int(mask_utils.area(_as_coco(rle)))


def merge(rles: Iterable[Mapping[str, Any]], intersect: bool = False, size: Sequence[int] | None = None) -> RLE:
    """Union (or intersection) of RLEs; ``size`` gives the result for an empty list."""
    items = [_as_coco(r) for r in rles]
    if not items:
        if size is None:
            raise ValueError("merge of no masks needs a size")
        return empty(int(size[0]), int(size[1]))
    if len(items) == 1:
        return _as_str(items[0])
    return _as_str(mask_utils.merge(items, intersect=intersect))


def iou(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """IoU of two masks; two empty masks have IoU 1."""
    ua = area(merge([a, b]))
    if ua == 0:
        return 1.0
    return area(merge([a, b], intersect=True)) / ua


def label_runs(labels: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], int]:
    """Runs of the column-major (COCO) flattening of a 2-D label map: the first pixel and the
    label of every run, and the number of pixels."""
    flat = np.asarray(labels).ravel(order="F")
    start = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    if flat.size:
        start = np.concatenate(([0], start))
    return start, flat[start], flat.size


def encode_runs(
    runs: tuple[NDArray[Any], NDArray[Any], int], h: int, w: int, ids: Iterable[int] | None = None
) -> dict[int, dict[str, Any]]:
    """pycocotools RLE objects (``counts`` as bytes, ready for :func:`pycocotools.mask.merge`) of
    every label of ``runs`` (:func:`label_runs`), or of those in ``ids``.

    The runs are grouped by label with array arithmetic and every label's counts (zeros, ones,
    zeros, ...) handed to pycocotools as one slice of a single array: no per-run Python work,
    and one C call compresses them all."""
    start, lab, n = runs
    if n == 0:
        return {}
    order = np.argsort(lab, kind="stable")  # by label; a label's runs stay in order of position
    if ids is not None:
        order = order[np.isin(lab[order], np.fromiter(ids, np.int64))]
        if order.size == 0:
            return {}
    end = np.append(start[1:], n)
    s, e, key = start[order], end[order], lab[order]
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    prev_end = np.concatenate(([0], e[:-1]))
    prev_end[first] = 0
    values = np.stack([s - prev_end, e - s], axis=1).ravel()
    last = np.append(first[1:], s.size) - 1
    tail = n - e[last]
    has_tail = tail > 0  # pycocotools' canonical form has no trailing zero-length run
    values = np.insert(values, 2 * (last[has_tail] + 1), tail[has_tail]).astype(np.uint32)
    bounds = np.concatenate(([0], np.cumsum(2 * np.diff(np.append(first, s.size)) + has_tail))).tolist()
    objs = [{"counts": values[a:b], "size": [h, w]} for a, b in zip(bounds[:-1], bounds[1:])]
    return dict(zip(key[first].tolist(), mask_utils.frPyObjects(objs, h, w)))


def encode_label_map(labels: NDArray[Any], ids: Iterable[int] | None = None) -> dict[int, RLE]:
    """RLE of every label of an integer label map, in one pass.

    Runs are taken from the column-major flattening once and grouped by label with
    vectorised arithmetic, so the cost barely grows with the number of labels (unlike
    encoding one binary mask per label). Labels absent from the map are omitted unless
    listed in ``ids`` (then they get an empty mask).
    """
    h, w = labels.shape
    wanted = {int(i) for i in ids} if ids is not None else None
    enc = encode_runs(label_runs(labels), h, w, wanted)
    out: dict[int, RLE] = {k: {"size": [h, w], "counts": r["counts"].decode("ascii")} for k, r in enc.items()}
    if wanted is not None:
        for key in wanted - out.keys():
            out[key] = empty(h, w)
    return out
