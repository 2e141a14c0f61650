"""Arrow schemas of the data `fifa-data` writes (DESIGN.md "Files and columns").

One place for the column contracts that the builder, the exporters, the release writer, the
viewer and the trainer share:

* :data:`INSTRUCT_SCHEMA`: ``BUILD/instruct/{train,validation}*.parquet`` (one row per conversation);
* :data:`BENCH_SCHEMA`: ``BUILD/bench.parquet`` (one row per question, read by the scorer);
* :data:`EXTRA_QA_SCHEMA`: question/answer pairs that come with an imported collection (DD-VQA),
  written by an importer next to its manifest as ``<manifest stem>.qa.parquet`` and added to a
  build with ``fifa-data build --extra-qa FILE``.
"""

from __future__ import annotations

import pyarrow as pa

from fifa.core.rle import RLE_TYPE

SPLITS = ("train", "validation", "test")

#: Hugging Face `datasets` Image feature as Arrow: bytes (embedded) or a path (by reference).
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
BOX_TYPE = pa.list_(pa.float64())  # [x0, y0, x1, y1] in pixels

#: Provenance of every instruction, bench and annotation row (the card explains them): the source collection;
#: the video and frame index where the image was imported from a video; the annotator (backend/model/prompt
#: version) and concept-tree version that made the annotation; the review decision and who reviewed it.
PROVENANCE_FIELDS = [
    ("collection", pa.string()),
    ("video", pa.string()),
    ("frame", pa.int64()),
    ("explainer", pa.string()),
    ("tree_version", pa.string()),
    ("review", pa.string()),  # accepted | null (not reviewed); rejected annotations are left out of a build
    ("reviewers", pa.list_(pa.string())),
]
PROVENANCE = tuple(n for n, _ in PROVENANCE_FIELDS)

INSTRUCT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("sample_id", pa.string()),
        ("task", pa.string()),
        ("image", IMAGE_TYPE),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("masks", pa.list_(RLE_TYPE)),
        ("mask_phrases", pa.list_(pa.string())),
        ("mask_node_ids", pa.list_(pa.string())),
        ("query_mask", RLE_TYPE),
        ("query_box", BOX_TYPE),
        ("label", pa.string()),
        ("method", pa.string()),
        ("category", pa.string()),
        ("group", pa.string()),
        ("split", pa.string()),
        *PROVENANCE_FIELDS,
    ]
)

BENCH_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("sample_id", pa.string()),
        ("task", pa.string()),
        ("image", IMAGE_TYPE),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("label", pa.string()),
        ("method", pa.string()),
        ("category", pa.string()),
        ("masks", pa.list_(RLE_TYPE)),
        ("mask_phrases", pa.list_(pa.string())),
        ("mask_node_ids", pa.list_(pa.string())),  # age: the FICT id of each reference mask
        ("query_mask", RLE_TYPE),
        ("query_box", BOX_TYPE),
        ("history", pa.list_(MESSAGE_TYPE)),
        # age: the masks of the anchors found in the image (pipelines/bench_anchors.py)
        ("anchor_masks", pa.list_(pa.struct([("node_id", pa.string()), ("mask", RLE_TYPE)]))),
        *PROVENANCE_FIELDS,
    ]
)

#: QA pairs shipped with an imported collection (e.g. DD-VQA), keyed by the manifest's sample_id.
EXTRA_QA_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),  # the manifest row (frame) the question is attached to
        ("task", pa.string()),  # rq_name | toe (DESIGN tasks)
        ("question", pa.string()),
        ("answer", pa.string()),
        ("node_id", pa.string()),  # rq_name: the FICT node the question names; null otherwise
        ("origin", pa.string()),  # e.g. "ddvqa:<video key>#<qa index>": where the pair came from
    ]
)
