"""DD-VQA importer: its question/answer pairs attached to imported FF++ frames.

DD-VQA (Zhang et al., "Common Sense Reasoning for Deepfake Detection", ECCV 2024;
github.com/Reality-Defender/Research-DD-VQA, folder ``DQ_FF++``) ships JSON only, keyed by
*video*::

    {"<manipulation id>_<FF++ video id>": {"<question id>": {"question": "...", "answer": ["...", ...]}}}

e.g. ``"0_114_102"`` (Deepfakes fake 114_102) or ``"5_044"`` (original video 044).
Manipulation ids: 0 Deepfakes, 1 Face2Face, 2 FaceShifter, 3 FaceSwap, 5 original,
6 NeuralTextures (4 appears in ``total_fake.json`` but is undocumented: recorded as a failure
unless ``id_map`` names it). Files are ``train_set/<Method>/<Method>.json``,
``test_set/...``, ``total_fake.json``, ``total_real.json`` (overlapping: pairs are
de-duplicated); ``split/*.json`` (FF++ id pairs) are skipped.

Frames come from a manifest made by ``fifa-data import ffpp`` (or ``deepfakebench``), matched
on its ``video`` column and the method. Frame-to-question mapping (``attach``):

* ``middle`` (default): the sampled frame nearest the middle of the video gets the video's
  pairs. DD-VQA's annotators judged one image per video; copying its text onto every sampled
  frame would repeat each answer ``--frames`` times in the instruction data and attach it to
  frames where the described artifact may not show.
* ``all``: every sampled frame of the video gets them; ``first``: the first sampled frame.

Each answer becomes one row of ``<manifest stem>.qa.parquet`` (:data:`EXTRA_QA_SCHEMA`): a
question naming a face region ("Do the person's eyes look real/fake?") is ``rq_name`` with the
FICT node of that region (``skin`` -> ``face``); the others ("Does the image look real/fake?")
are ``toe``. The manifest written holds the frames that received questions.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from fifa.core.atomic import write_table_atomic
from fifa.core.schemas import EXTRA_QA_SCHEMA
from fifa.pipelines.manifest import ManifestError, read_table
from fifa.pipelines.methods import load_methods

from .report import Failure, ImportLayoutError, ImportReport, finish, rel_path

DDVQA_IDS = {0: "Deepfakes", 1: "Face2Face", 2: "FaceShifter", 3: "FaceSwap", 5: None, 6: "NeuralTextures"}
ATTACH = ("middle", "all", "first")
_KEY = re.compile(r"^(\d+)_(.+)$")
_REGION = re.compile(r"person'?s\s+([a-z ]+?)\s+looks?\b", re.IGNORECASE)
#: DD-VQA region words the tree has under another name
REGION_FALLBACK = {
    "skin": "face",
    "eye": "eyes",
    "eyebrow": "eyebrows",
    "cheek": "cheeks",
    "lip": "mouth",
    "lips": "mouth",
    "ear": "ears",
    "tooth": "inner_mouth",
    "teeth": "inner_mouth",
}


@dataclass(frozen=True)
class DDVQAConfig:
    attach: str = "middle"  # middle | all | first (see the module docstring)
    answers: str = "all"  # all: one QA row per answer; first: the first answer only
    id_map: Mapping[int, str | None] = field(default_factory=dict)  # extra/overriding manipulation ids
    methods_file: Path | None = None

    def __post_init__(self) -> None:
        if self.attach not in ATTACH:
            raise ValueError(f"attach {self.attach!r} not in {ATTACH}")
        if self.answers not in ("all", "first"):
            raise ValueError(f"answers {self.answers!r}: use all or first")


def region_node(question: str, tree=None) -> str | None:
    """The FICT node a DD-VQA question names, or None when it names no region (the image)."""
    from fifa.concept_tree.tree import load_tree
    from fifa.concept_tree.tree_nodes import TreeError

    m = _REGION.search(question)
    if not m:
        return None
    tree = tree or load_tree()
    word = m.group(1).strip().lower()
    for cand in (word, REGION_FALLBACK.get(word)):
        if cand:
            try:
                return tree.get(cand).id
            except (TreeError, KeyError):
                continue
    return None


def json_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.json") if "split" not in q.relative_to(p).parts)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(p)
    if not out:
        raise ImportLayoutError(
            f"no DD-VQA JSON files under {', '.join(map(str, paths))} "
            "(expected DQ_FF++/train_set/<Method>/<Method>.json, total_fake.json, ...)"
        )
    return out


def read_qa(files: list[Path]) -> tuple[dict[str, list[tuple[str, str, str]]], list[Failure], list[str]]:
    """``{video key: [(question id, question, answer), ...]}`` de-duplicated across files."""
    qa: dict[str, list[tuple[str, str, str]]] = {}
    seen: set[tuple[str, str, str]] = set()
    failures: list[Failure] = []
    notes: list[str] = []
    for f in files:
        try:
            doc = json.loads(f.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ImportLayoutError(f"{f} is not valid JSON: {e}") from None
        if isinstance(doc, list):  # split/*.json: lists of FF++ id pairs
            notes.append(f"{f}: a list (a split file), skipped")
            continue
        if (
            not isinstance(doc, dict)
            or not doc
            or not all(_KEY.match(str(k)) and isinstance(v, dict) for k, v in doc.items())
        ):
            raise ImportLayoutError(
                f"{f} is not a DD-VQA JSON: expected "
                '{"<id>_<video>": {"0": {"question": "...", "answer": ["..."]}}}'
            )
        for key, pairs in doc.items():
            for qid, item in pairs.items():
                q = item.get("question") if isinstance(item, dict) else None
                ans = item.get("answer") if isinstance(item, dict) else None
                ans = [ans] if isinstance(ans, str) else ans
                if not isinstance(q, str) or not isinstance(ans, list) or not all(isinstance(a, str) for a in ans):
                    failures.append(
                        Failure(
                            f"{key}#{qid}", f"{f.name}: needs a question string and a list of answer strings", "format"
                        )
                    )
                    continue
                for a in ans:
                    if (key, q, a) not in seen and a.strip():
                        seen.add((key, q, a))
                        qa.setdefault(key, []).append((str(qid), q.strip(), a.strip()))
    if len(notes) == len(files):
        raise ImportLayoutError(
            f"only split lists given ({', '.join(f.name for f in files)}): pass the DD-VQA "
            "question files (train_set/, test_set/, total_*.json)"
        )
    return qa, failures, notes


def _frames_index(frames_manifest: Path) -> tuple[dict[tuple[str | None, str], list[dict]], Path]:
    try:
        table = read_table(frames_manifest)
    except ManifestError as e:
        raise ImportLayoutError(str(e)) from None
    missing = [c for c in ("sample_id", "image_path", "label", "method", "video") if c not in table.column_names]
    if missing:
        raise ImportLayoutError(
            f"{frames_manifest} lacks column(s) {', '.join(missing)}: use a manifest made by "
            "`fifa-data import ffpp` (or deepfakebench) of FaceForensics++"
        )
    index: dict[tuple[str | None, str], list[dict]] = {}
    for r in table.to_pylist():
        method = r.get("method") if r.get("label") == "fake" else None
        index.setdefault((method, str(r["video"])), []).append(r)
    return index, frames_manifest.resolve().parent


def _pick(rows: list[dict], attach: str) -> list[dict]:
    rows = sorted(rows, key=lambda r: (r.get("frame") if r.get("frame") is not None else -1, r["sample_id"]))
    if attach == "all":
        return rows
    return [rows[0] if attach == "first" else rows[(len(rows) - 1) // 2]]


def import_ddvqa(
    paths: Iterable[str | Path], frames_manifest: str | Path, out: str | Path, config: DDVQAConfig = DDVQAConfig()
) -> ImportReport:
    """Attach DD-VQA pairs to the frames of ``frames_manifest``; writes ``out`` and ``<stem>.qa.parquet``."""
    from fifa.concept_tree.tree import load_tree

    started = time.perf_counter()
    out = Path(out)
    files = json_files(list(paths))
    table = load_methods(config.methods_file)
    ids = {**DDVQA_IDS, **{int(k): (table.canonical(v) if v else None) for k, v in config.id_map.items()}}
    qa, failures, notes = read_qa(files)
    index, fbase = _frames_index(Path(frames_manifest))
    tree = load_tree()
    nodes: dict[str, str | None] = {}
    rows: dict[str, dict] = {}
    qa_rows: list[dict] = []
    for key in sorted(qa):
        mid, video = _KEY.match(key).groups()
        if int(mid) not in ids:
            failures.append(
                Failure(
                    key,
                    f"DD-VQA manipulation id {mid} is not documented: map it with "
                    f"--id-map {mid}=METHOD (or {mid}=real)",
                    "method",
                )
            )
            continue
        method = ids[int(mid)]
        frames = index.get((method, video))
        if not frames:
            failures.append(
                Failure(
                    key,
                    f"no frames of {'real' if method is None else method} video {video} in {frames_manifest}",
                    "match",
                )
            )
            continue
        for r in _pick(frames, config.attach):
            rows.setdefault(r["sample_id"], _rebase(r, fbase, out.parent))
            qa_rows += _frame_qa(r["sample_id"], key, qa[key], config.answers, nodes, tree)
    files_out = _write_qa(out, qa_rows) if rows else {}
    rep = finish(
        "ddvqa",
        list(rows.values()),
        failures,
        out,
        started=started,
        files=files_out,
        notes=notes,
        stats={"qa_pairs": len(qa_rows), "videos": len(qa)},
    )
    return rep


def _frame_qa(sample_id: str, key: str, pairs: list, answers: str, nodes: dict, tree) -> list[dict]:
    """The extra-QA rows of one frame: every (question id, question, answer) of its video (with
    ``answers="first"``, a question's first answer only); a question naming a region becomes rq_name, any
    other toe. ``nodes`` caches the question -> region node lookups."""
    out: list[dict] = []
    done: set[str] = set()
    for qid, q, a in pairs:
        if answers == "first" and qid in done:
            continue
        done.add(qid)
        node = nodes[q] if q in nodes else nodes.setdefault(q, region_node(q, tree))
        out.append(
            {
                "sample_id": sample_id,
                "task": "rq_name" if node else "toe",
                "question": q,
                "answer": a,
                "node_id": node,
                "origin": f"ddvqa:{key}#{qid}",
            }
        )
    return out


def _write_qa(out: Path, qa_rows: list[dict]) -> dict:
    """Writes ``<stem>.qa.parquet`` beside ``out``; the report's ``files`` entry for it."""
    qa_path = out.with_name(out.stem + ".qa.parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table_atomic(pa.Table.from_pylist(qa_rows, schema=EXTRA_QA_SCHEMA), qa_path)
    return {"qa": str(qa_path)}


def _rebase(row: dict, old: Path, new: Path) -> dict:
    r = dict(row)
    for k in ("image_path", "source_path"):
        if r.get(k) and not Path(r[k]).is_absolute():
            r[k] = rel_path(old / r[k], new)
    return r
