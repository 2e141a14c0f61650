"""fifa.core.rle's types: the RLE TypedDict, its Arrow type, and the mask columns of every schema that use it."""

from __future__ import annotations

import typing

import numpy as np
import pyarrow as pa
import pytest

from fifa.core.rle import RLE, RLE_TYPE, InvalidRLE, check_rle, decode, encode


def test_typed_dict_and_arrow_type_name_the_same_fields():
    assert typing.get_type_hints(RLE) == {"size": list[int], "counts": str}
    assert [f.name for f in RLE_TYPE] == list(typing.get_type_hints(RLE))
    assert pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())]) == RLE_TYPE


def test_an_encoded_mask_round_trips_through_an_arrow_column():
    m = np.zeros((5, 7), bool)
    m[1:4, 2:6] = True
    r: RLE = encode(m)
    col = pa.array([r, None], type=RLE_TYPE)
    back = col.to_pylist()[0]
    assert check_rle(back, expect_size=[5, 7]) == r
    assert (decode(back) == m).all()


@pytest.mark.parametrize(
    "bad",
    [
        {"size": [2, 2], "counts": "4!"},
        {"size": [2, 2], "counts": "5"},
        {"size": [2], "counts": "4"},
        {"counts": "4"},
        "4",
    ],
)
def test_the_validator_refuses_what_pycocotools_would_misread(bad):
    with pytest.raises(InvalidRLE):
        check_rle(bad)


def _rle_like(t: pa.DataType, where: str) -> list[tuple[str, pa.DataType]]:
    """Every struct with fields size and counts inside ``t`` (lists and structs walked)."""
    if pa.types.is_struct(t):
        names = [f.name for f in t]
        if {"size", "counts"} <= set(names):
            return [(where, t)]
        return [x for f in t for x in _rle_like(f.type, f"{where}.{f.name}")]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _rle_like(t.value_type, f"{where}[]")
    return []


def test_every_mask_column_of_the_stage_schemas_is_the_one_rle_type():
    from fifa.concept_tree.segmentation.batch import REGIONS_SCHEMA
    from fifa.core.schemas import ANNOTATION_SCHEMA, BENCH_SCHEMA, INSTRUCT_SCHEMA

    found = [
        x
        for name, schema in [
            ("annotation", ANNOTATION_SCHEMA),
            ("regions", REGIONS_SCHEMA),
            ("instruct", INSTRUCT_SCHEMA),
            ("bench", BENCH_SCHEMA),
        ]
        for f in schema
        for x in _rle_like(f.type, f"{name}.{f.name}")
    ]
    assert len(found) >= 8, found
    assert [w for w, t in found if t != RLE_TYPE] == []
