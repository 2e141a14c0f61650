"""Arrow columns from Python values without ``pa.array``.

``pa.array`` imports pandas on first use (to recognise pandas objects): about 0.25 s of CPU in
every process that writes a table, which is a tenth of what a whole ``fifa-tree segment`` run over
300 faces spends on FaceMesh. The few column types the segmentation writes are built here from
buffers instead (same arrays: ``Array.equals`` holds, tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

_NUMERIC = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def column(values: Sequence, type_: pa.DataType) -> pa.Array:
    """An Arrow array of ``values`` (None = null) for string, int32, int64 and float64 types."""
    n = len(values)
    nulls = [v is None for v in values]
    validity = None
    if any(nulls):
        validity = pa.py_buffer(np.packbits(~np.array(nulls, bool), bitorder="little"))
    if type_ == pa.string():
        texts = ["" if v is None else v for v in values] if validity is not None else values
        joined = "".join(texts)
        if joined.isascii():  # one encode for all (node ids, RLE counts): characters = bytes
            data, lengths = joined.encode("ascii"), map(len, texts)
        else:
            encoded = [t.encode("utf-8") for t in texts]
            data, lengths = b"".join(encoded), map(len, encoded)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(lengths, np.int64, count=n), out=offsets[1:])
        if offsets[-1] >= 2**31:  # past int32 offsets: let pyarrow choose (and import pandas)
            return pa.array(values, type=type_)
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])
    if type_ in _NUMERIC:
        arr = np.array([0 if v is None else v for v in values], dtype=_NUMERIC[type_])
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(arr)])
    return pa.array(values, type=type_)


def int_list_column(rows: Sequence[Sequence[int]], width: int) -> pa.Array:
    """``list<int64>`` of rows that all hold ``width`` ints (mask sizes), from one flat array."""
    flat = np.array(rows, dtype=np.int64).reshape(-1)
    offsets = np.arange(0, flat.size + 1, width, dtype=np.int32)
    values = pa.Array.from_buffers(pa.int64(), flat.size, [None, pa.py_buffer(flat)])
    return pa.ListArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), offsets.size, [None, pa.py_buffer(offsets)]), values
    )


def table(records: Sequence[dict], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(records, schema=schema)`` for flat schemas of :func:`column` types."""
    return pa.Table.from_arrays([column([r.get(f.name) for r in records], f.type) for f in schema], schema=schema)
