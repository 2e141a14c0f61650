"""The Arrow schemas of DESIGN.md ("Files and columns"): one definition of each column contract.

Data shapes (each a ``pyarrow.Schema``; masks are :data:`fifa.core.rle.RLE_TYPE`, images the Hugging
Face ``datasets`` Image struct :data:`IMAGE_TYPE`, messages :data:`MESSAGE_TYPE`):

* :data:`ANNOTATION_SCHEMA`: ``fifa-annotate`` output, ``DIR/annotations/*.parquet`` (one row per sample);
* :data:`INSTRUCT_SCHEMA`: ``BUILD/instruct/{train,validation}*.parquet`` (one row per conversation);
* :data:`BENCH_SCHEMA`: ``BUILD/bench.parquet`` (one row per question, read by the scorer);
* :data:`AGE_RECORD_SCHEMA`: ``BUILD/annotations/{split}*.parquet``, the ``annotations`` config of a build
  and a release: the annotator's columns without machine paths, timings or costs (``image_path`` becomes
  the ``image`` struct with a path relative to the image root), plus ``identities``, ``split`` and the
  provenance columns (:data:`PROVENANCE_FIELDS`);
* :data:`EXTRA_QA_SCHEMA`: question/answer pairs that come with an imported collection (DD-VQA), written
  by an importer next to its manifest as ``<manifest stem>.qa.parquet`` and added to a build with
  ``fifa-data build --extra-qa FILE``;
* :data:`SUBMISSION_SCHEMA`: a model's answers to a bench (``question_id``, ``answer``, ``score``,
  ``masks``), what ``fifa-train predict`` writes and ``fifa-bench score`` reads
  (:data:`PREDICTION_PARTS_SCHEMA`: the same plus ``error``, its parts while it runs).
"""

from __future__ import annotations

import pyarrow as pa

from .rle import RLE_TYPE

#: ``fifa-annotate`` output (DESIGN.md "Annotation rows").
ANNOTATION_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("error_code", pa.string()),
        ("label", pa.string()),
        ("method", pa.string()),
        ("category", pa.string()),
        ("group", pa.string()),
        ("identities", pa.string()),
        ("collection", pa.string()),  # provenance from the manifest: source collection, video, frame index
        ("video", pa.string()),
        ("frame", pa.int64()),
        ("image_path", pa.string()),
        ("source_path", pa.string()),
        ("artifact_mask", RLE_TYPE),
        ("artifact_regions", pa.list_(pa.string())),
        (
            "regions",
            pa.list_(
                pa.struct(
                    [("node_id", pa.string()), ("coverage", pa.float64()), ("share", pa.float64()), ("mask", RLE_TYPE)]
                )
            ),
        ),
        ("explanation", pa.string()),
        ("visible_explanation", pa.string()),  # what the fake alone shows (same marks); answers use it
        ("segments", pa.list_(pa.struct([("node_id", pa.string()), ("phrase", pa.string()), ("mask", RLE_TYPE)]))),
        ("explainer", pa.string()),
        ("tree_version", pa.string()),
        ("grounded", pa.bool_()),
        ("image_height", pa.int32()),
        ("image_width", pa.int32()),
        ("mask_area", pa.int64()),
        ("mask_fraction", pa.float64()),
        ("diff_threshold", pa.float64()),
        ("diff_mean_in_mask", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("llm_calls", pa.int32()),
        ("cached", pa.bool_()),
        ("time_cpu_s", pa.float64()),
        ("time_llm_s", pa.float64()),
        ("attempt", pa.int32()),
        ("annotated_at", pa.string()),
    ]
)

#: Hugging Face `datasets` Image feature as Arrow: bytes (embedded) or a path (by reference).
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
BOX_TYPE = pa.list_(pa.float64())  # [x0, y0, x1, y1] in pixels
#: ``anchor_masks`` of the bench's ``age`` questions: the masks of the FICT anchors found in the image.
ANCHOR_MASKS_TYPE = pa.list_(pa.struct([("node_id", pa.string()), ("mask", RLE_TYPE)]))

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
        ("anchor_masks", ANCHOR_MASKS_TYPE),
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

_KEEP = (
    "artifact_mask",
    "artifact_regions",
    "regions",
    "explanation",
    "segments",
    "explainer",
    "tree_version",
    "grounded",
    "image_height",
    "image_width",
    "mask_area",
    "mask_fraction",
)
_PROVENANCE = [(n, t) for n, t in PROVENANCE_FIELDS if n not in _KEEP]

AGE_RECORD_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("image", IMAGE_TYPE),
        ("label", pa.string()),
        ("method", pa.string()),
        ("category", pa.string()),
        ("group", pa.string()),
        ("identities", pa.string()),
        ("split", pa.string()),
        *[ANNOTATION_SCHEMA.field(c) for c in _KEEP],
        *_PROVENANCE,
    ]
)

#: A submission (DESIGN.md "Submission"): Parquet, or JSONL with the same keys.
SUBMISSION_SCHEMA = pa.schema(
    [("question_id", pa.string()), ("answer", pa.string()), ("score", pa.float64()), ("masks", pa.list_(RLE_TYPE))]
)
#: ``fifa-train predict``'s resumable parts: a submission's columns and the ``error`` of a failed question.
PREDICTION_PARTS_SCHEMA = SUBMISSION_SCHEMA.append(pa.field("error", pa.string()))
