"""Each shared idea of the core layer is defined once: read from the source tree itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("fifa", "concept_tree", "annotator", "pipelines", "benchmarks", "modeling", "scripts")


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text("utf-8") for f in FOLDERS for p in sorted((ROOT / f).rglob("*.py"))}


def _where(pattern: str) -> list[str]:
    rx = re.compile(pattern, re.M)
    return sorted(path for path, text in _sources().items() if rx.search(text))


def test_the_rle_arrow_type_is_defined_once():
    assert _where(r"^RLE_TYPE\s*=") == ["fifa/core/rle.py"]
    assert _where(r"pa\.struct\(\[\(\"size\", pa\.list_\(pa\.int64\(\)\)\), \(\"counts\"") == ["fifa/core/rle.py"]
    assert _where(r"^(class InvalidRLE|def check_rle|def parse_counts)\b") == ["fifa/core/rle.py"]


def test_one_atomic_rename_implementation():
    """Only fifa/core/atomic.py renames files into place (the writers, the folder swap)."""
    assert _where(r"\bos\.(replace|rename)\(") == ["fifa/core/atomic.py"]
    assert _where(r"\bdef (\w*_atomic|atomic_\w+|swap_folder|_?fsync_dir)\(") == ["fifa/core/atomic.py"]


@pytest.mark.parametrize(
    "name",
    [
        "ANNOTATION_SCHEMA",
        "INSTRUCT_SCHEMA",
        "BENCH_SCHEMA",
        "AGE_RECORD_SCHEMA",
        "EXTRA_QA_SCHEMA",
        "SUBMISSION_SCHEMA",
        "IMAGE_TYPE",
        "MESSAGE_TYPE",
        "BOX_TYPE",
        "ANCHOR_MASKS_TYPE",
        "PROVENANCE_FIELDS",
    ],
)
def test_each_schema_is_defined_once(name):
    assert _where(rf"^{name}\s*=") == ["fifa/core/schemas.py"]


def test_the_error_base_and_the_exit_codes_are_defined_once():
    assert _where(r"^class (FifaError|UserError)\b") == ["fifa/core/errors.py"]
    assert _where(r"^EXIT_(OK|FAILED|USAGE|INTERRUPTED)\s*=") == ["fifa/core/errors.py"]
