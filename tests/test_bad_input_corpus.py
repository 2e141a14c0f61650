"""The bad-input corpus: every kind of broken input a user can hand the toolkit, generated here, and
what the user sees for it (docs/bad-input.md lists the same ids). Each kind gives a clear error (exit
2, no traceback) or a recorded per-row failure while every valid row is still done.

Cases run through the real command lines, the way a user meets them.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

BIN = Path(sys.executable).parent
DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-input.md"


def cli(tool: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


# ---------------------------------------------------------------------------------------- images
def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's signature)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@dataclass
class RowCase:
    """A manifest row that must fail alone with ``code`` (the run goes on)."""

    id: str
    code: str
    make: Callable[[Path, dict], dict]  # (data folder, a valid fake row) -> the bad row


def _write(data: Path, name: str, content: bytes) -> str:
    (data / name).write_bytes(content)
    return name


ROW_CASES = [
    RowCase("image-missing", "missing_file", lambda d, r: dict(r, image_path="nope.png")),
    RowCase("image-empty", "empty_file", lambda d, r: dict(r, image_path=_write(d, "empty.png", b""))),
    RowCase(
        "image-not-an-image",
        "not_an_image",
        lambda d, r: dict(r, image_path=_write(d, "text.png", b"hello, I am text\n" * 50)),
    ),
    RowCase(
        "image-truncated",
        "truncated",
        lambda d, r: dict(r, image_path=_write(d, "half.png", (d / r["image_path"]).read_bytes()[:3000])),
    ),
    RowCase(
        "image-png-bomb",
        "decompression_bomb",
        lambda d, r: dict(r, image_path=_write(d, "bomb.png", png_claiming(50_000, 50_000))),
    ),
    RowCase(
        "image-strip-1x100000",
        "too_small",
        lambda d, r: dict(r, image_path=_save(d, "strip.png", np.zeros((1, 100_000, 3), np.uint8))),
    ),
    RowCase(
        "image-no-face",
        "no_face",
        lambda d, r: dict(
            r,
            image_path=_save(d, "grey.png", np.full((256, 256, 3), 128, np.uint8)),
            source_path=_save(d, "grey_src.png", np.full((256, 256, 3), 127, np.uint8)),
        ),
    ),
    RowCase(
        "pair-aspect-mismatch",
        "aspect_mismatch",
        lambda d, r: dict(r, source_path=_save(d, "wide.png", np.zeros((100, 400, 3), np.uint8))),
    ),
    RowCase("path-outside-root", "path_outside_root", lambda d, r: dict(r, image_path="../elsewhere.png")),
]


def _save(data: Path, name: str, arr: np.ndarray) -> str:
    Image.fromarray(arr).save(data / name)
    return name


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    """One annotator run over the valid forged rows plus one row of every bad kind."""
    from fifa.annotator.forge import forge

    data = tmp_path_factory.mktemp("corpus") / "data"
    man = forge(data, n=6, seed=5)
    valid = pq.read_table(man).to_pylist()
    fake = next(r for r in valid if r["label"] == "fake")
    (data.parent / "elsewhere.png").write_bytes((data / fake["image_path"]).read_bytes())
    bad = []
    for case in ROW_CASES:
        row = case.make(data, dict(fake))
        row["sample_id"] = case.id
        bad.append(row)
    cols = ["sample_id", "image_path", "source_path", "label", "method", "category", "group"]
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in valid + bad]), data / "all.parquet")
    out = data.parent / "out"
    p = cli("fifa-annotate", "run", "--manifest", data / "all.parquet", "--out", out, "--workers", "2", "--no-progress")
    from fifa.annotator.store import read_annotations

    return p, {r["sample_id"]: r for r in read_annotations(out).to_pylist()}, {r["sample_id"] for r in valid}


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.id)
def test_bad_row_fails_alone_with_its_code(annotated, case):
    p, rows, _ = annotated
    assert p.returncode == 0, p.stderr[-2000:]
    assert rows[case.id]["status"] == "failed" and rows[case.id]["error_code"] == case.code, rows[case.id]["error"]


def test_every_valid_row_is_done_beside_the_bad_ones(annotated):
    _, rows, valid = annotated
    assert all(rows[s]["status"] == "ok" for s in valid)
    assert len(rows) == len(valid) + len(ROW_CASES)


# ---------------------------------------------------------------------------------------- files
@dataclass
class FileCase:
    """A file a command refuses as a whole: exit 2 and a message containing ``needle``."""

    id: str
    tool: str
    needle: str
    make: Callable[[Path], list]  # (tmp folder) -> command line arguments


def _manifest(tmp: Path, name: str, text: str | bytes) -> Path:
    p = tmp / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def _annotate(man: Path) -> list:
    return ["run", "--manifest", man, "--out", man.parent / "out", "--no-progress"]


def _parquet(tmp: Path, table: pa.Table) -> Path:
    pq.write_table(table, tmp / "m.parquet")
    return tmp / "m.parquet"


MANIFEST_CASES = [
    FileCase("manifest-missing-file", "fifa-annotate", "manifest not found", lambda t: _annotate(t / "absent.csv")),
    FileCase(
        "manifest-missing-column",
        "fifa-annotate",
        "lacks required column(s): label",
        lambda t: _annotate(_manifest(t, "m.csv", "sample_id,image_path\na,x.png\n")),
    ),
    FileCase(
        "manifest-duplicate-id",
        "fifa-annotate",
        "duplicate sample_id 'a'",
        lambda t: _annotate(_manifest(t, "m.csv", "sample_id,image_path,label\na,x.png,real\na,y.png,real\n")),
    ),
    FileCase(
        "manifest-bad-label",
        "fifa-annotate",
        "label 'maybe'",
        lambda t: _annotate(_manifest(t, "m.csv", "sample_id,image_path,label\na,x.png,maybe\n")),
    ),
    FileCase(
        "manifest-bad-category",
        "fifa-annotate",
        "category 'XX'",
        lambda t: _annotate(_manifest(t, "m.csv", "sample_id,image_path,label,category\na,x.png,fake,XX\n")),
    ),
    FileCase(
        "manifest-not-utf8",
        "fifa-annotate",
        "cannot read manifest",
        lambda t: _annotate(_manifest(t, "m.csv", b"sample_id,image_path,label\n\xff\xfe\xe9t\xe9,x.png,real\n")),
    ),
    FileCase(
        "manifest-csv-unbalanced-quotes",
        "fifa-annotate",
        "cannot read manifest",
        lambda t: _annotate(_manifest(t, "m.csv", 'sample_id,image_path,label\n"a,x.png,real\nb,"y.png,real\n')),
    ),
    FileCase(
        "manifest-jsonl-not-json",
        "fifa-annotate",
        ":2: not valid JSON",
        lambda t: _annotate(_manifest(t, "m.jsonl", '{"sample_id": "a", "image_path": "x", "label": "real"}\n{oops\n')),
    ),
    FileCase(
        "manifest-parquet-wrong-types",
        "fifa-annotate",
        "has label 1",
        lambda t: _annotate(_parquet(t, pa.table({"sample_id": ["a"], "image_path": ["x.png"], "label": [1]}))),
    ),
    FileCase(
        "manifest-10mb-cell",
        "fifa-annotate",
        "holds 10485760 characters",
        lambda t: _annotate(
            _parquet(t, pa.table({"sample_id": ["a"], "image_path": ["x" * (10 << 20)], "label": ["real"]}))
        ),
    ),
    FileCase(
        "manifest-unsupported-format",
        "fifa-annotate",
        "unsupported manifest format",
        lambda t: _annotate(_manifest(t, "m.xlsx", b"PK\x03\x04")),
    ),
    FileCase("annotate-folder-in-use", "fifa-annotate", "in use by another run", lambda t: _locked(t)),
]


def _locked(tmp: Path) -> list:
    """A folder whose lock is held by a live process (this test's child)."""
    import fcntl

    out = tmp / "out"
    out.mkdir()
    man = _manifest(tmp, "m.csv", "sample_id,image_path,label\na,x.png,real\n")
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": "here", "command": "test", "started": "now"}).encode())
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD.append(fd)
    return ["run", "--manifest", man, "--out", out, "--no-progress"]


_HELD: list[int] = []


def _rle(side: int) -> dict:
    from fifa.core.rle import encode

    m = np.zeros((side, side), bool)
    m[1:3, 1:3] = True
    return encode(m)


def _bench(tmp: Path) -> Path:
    rows = [
        {"question_id": "q1", "task": "det", "answer": "yes", "label": "fake", "masks": []},
        {"question_id": "q2", "task": "loc", "answer": "", "label": "fake", "masks": [_rle(4)]},
    ]
    t = pa.Table.from_pylist(rows)
    pq.write_table(t, tmp / "bench.parquet")
    return tmp / "bench.parquet"


def _score(tmp: Path, lines: list | bytes, name: str = "s.jsonl") -> list:
    p = tmp / name
    p.write_bytes(lines if isinstance(lines, bytes) else "".join(json.dumps(x) + "\n" for x in lines).encode())
    return [
        "score",
        "--bench",
        _bench(tmp),
        "--submission",
        p,
        "--out",
        tmp / "o",
        "--bootstrap",
        "0",
        "--no-plots",
        "--no-meteor",
    ]


SUBMISSION_CASES = [
    FileCase(
        "submission-missing-file",
        "fifa-bench",
        "does not exist",
        lambda t: ["score", "--bench", _bench(t), "--submission", t / "absent.jsonl", "--out", t / "o"],
    ),
    FileCase("submission-garbage", "fifa-bench", "are not JSON objects", lambda t: _score(t, b"\x00\x01garbage\n")),
    FileCase(
        "submission-bad-parquet",
        "fifa-bench",
        "not a valid Parquet file",
        lambda t: _score(t, b"PAR1 truncated", "s.parquet"),
    ),
    FileCase(
        "submission-missing-question-id",
        "fifa-bench",
        "missing column 'question_id'",
        lambda t: _score(t, [{"answer": "yes"}]),
    ),
    FileCase(
        "submission-duplicate-id",
        "fifa-bench",
        "1 duplicate question_id(s)",
        lambda t: _score(t, [{"question_id": "q1", "answer": "yes"}] * 2),
    ),
    FileCase("submission-unknown-id", "fifa-bench", "not in the bench", lambda t: _score(t, [{"question_id": "zz"}])),
    FileCase(
        "submission-wrong-types", "fifa-bench", "wrong type", lambda t: _score(t, [{"question_id": "q1", "answer": 7}])
    ),
    FileCase(
        "submission-nan-score",
        "fifa-bench",
        "are NaN",
        lambda t: _score(t, b'{"question_id": "q1", "answer": "yes", "score": NaN}\n'),
    ),
    FileCase(
        "submission-score-out-of-range",
        "fifa-bench",
        "outside [0, 1]",
        lambda t: _score(t, [{"question_id": "q1", "answer": "yes", "score": 1.5}]),
    ),
    FileCase(
        "submission-malformed-rle",
        "fifa-bench",
        "do not decode",
        lambda t: _score(t, [{"question_id": "q2", "answer": "", "masks": [{"size": [4, 4], "counts": "0"}]}]),
    ),
    FileCase(
        "submission-mask-wrong-size",
        "fifa-bench",
        "do not decode or do not fit",
        lambda t: _score(t, [{"question_id": "q2", "answer": "", "masks": [_rle(5)]}]),
    ),
    FileCase(
        "submission-answer-too-long",
        "fifa-bench",
        "longer than 200000 characters",
        lambda t: _score(t, [{"question_id": "q1", "answer": "x" * 250_000}]),
    ),
    FileCase("bench-invalid-reference-mask", "fifa-bench", "invalid reference mask", lambda t: _bad_bench(t)),
]


def _bad_bench(tmp: Path) -> list:
    args = _score(tmp, [{"question_id": "q1", "answer": "yes"}])
    t = pq.read_table(tmp / "bench.parquet").to_pylist()
    t[1]["masks"] = [{"size": [4, 4], "counts": "garbage"}]
    pq.write_table(pa.Table.from_pylist(t), tmp / "bench.parquet")
    return args


OTHER_CASES = [
    FileCase(
        "import-wrong-folder",
        "fifa-data",
        "not a FaceForensics++ folder",
        lambda t: ["import", "ffpp", t, "--out", t / "m.parquet"],
    ),
    FileCase("import-unknown-method", "fifa-data", "unknown forgery method 'MyNewSwap'", lambda t: _unknown_method(t)),
    FileCase("methods-file-invalid", "fifa-data", "not in ('FS', 'FR', 'FE', 'EFS')", lambda t: _bad_methods(t)),
]


def _unknown_method(tmp: Path) -> list:
    (tmp / "real").mkdir()
    (tmp / "fake" / "MyNewSwap").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp / "real" / "a.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp / "fake" / "MyNewSwap" / "a.png")
    return ["import", "folders", tmp, "--out", tmp / "m.parquet"]


def _bad_methods(tmp: Path) -> list:
    (tmp / "m.yaml").write_text("methods:\n  X: {category: XX}\n")
    return [*_unknown_method(tmp), "--methods", tmp / "m.yaml"]


FILE_CASES = MANIFEST_CASES + SUBMISSION_CASES + OTHER_CASES


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.id)
def test_bad_file_is_a_clear_error(tmp_path, case):
    p = cli(case.tool, *case.make(tmp_path))
    for fd in _HELD:
        os.close(fd)
    _HELD.clear()
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert case.needle in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr


def test_the_corpus_has_thirty_kinds_and_docs_list_every_one():
    ids = [c.id for c in ROW_CASES + FILE_CASES]
    assert len(ids) == len(set(ids)) >= 30
    doc = DOC.read_text("utf-8")
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, f"docs/bad-input.md lacks {missing}"
