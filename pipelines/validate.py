"""``fifa-data validate RELEASE``: checksums, schemas, masks, mark/mask correspondence, split leakage.

Every problem is reported with where it is (file, row, id, column) and what is wrong; the
checks go on after a problem, so one run lists them all (up to ``max_problems`` per kind).
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import yaml

from fifa.core.marks import find as find_marks
from fifa.core.marks import has_mark
from fifa.core.rle import InvalidRLE, check_rle

from .parquet_io import sha256_file
from .release import CONFIGS
from .splits import leaks


@dataclass
class Problem:
    kind: str  # checksum | layout | card | schema | mask | marks | leak | ids | image
    where: str
    what: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.where}: {self.what}"


@dataclass
class ValidationReport:
    release: str
    problems: list[Problem] = field(default_factory=list)
    checked: Counter = field(default_factory=Counter)
    max_problems: int = 50
    _per_kind: Counter = field(default_factory=Counter)
    suppressed: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # not problems: what the release leaves out, and why

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, where: str, what: str) -> None:
        self._per_kind[kind] += 1
        if self._per_kind[kind] > self.max_problems:
            self.suppressed[kind] += 1
            return
        self.problems.append(Problem(kind, where, what))

    def lines(self) -> list[str]:
        out = [str(p) for p in self.problems]
        out += [f"[{k}] ... and {n} more problem(s) of this kind" for k, n in sorted(self.suppressed.items())]
        return out


def _checksums(root: Path, rep: ValidationReport) -> None:
    mp = root / "MANIFEST.json"
    if not mp.is_file():
        rep.add("checksum", "MANIFEST.json", "missing")
        return
    try:
        files = json.loads(mp.read_text("utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as e:
        rep.add("checksum", "MANIFEST.json", f"unreadable: {e}")
        return
    present = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    for rel in sorted(set(files) - present):
        rep.add("checksum", rel, "listed in MANIFEST.json but missing")
    for rel in sorted(present - set(files)):
        rep.add("checksum", rel, "present but not listed in MANIFEST.json")
    for rel in sorted(set(files) & present):
        p = root / rel
        rep.checked["files"] += 1
        if p.stat().st_size != files[rel].get("bytes"):
            rep.add("checksum", rel, f"size {p.stat().st_size} bytes, MANIFEST.json says {files[rel].get('bytes')}")
        elif sha256_file(p) != files[rel].get("sha256"):
            rep.add("checksum", rel, "sha256 differs from MANIFEST.json (the file was changed)")


def _card(root: Path, rep: ValidationReport) -> dict[str, dict[str, list[Path]]]:
    """config -> split -> files, from the card's ``configs:`` header."""
    card = root / "README.md"
    out: dict = {}
    if not card.is_file():
        rep.add("card", "README.md", "missing")
        return out
    text = card.read_text("utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        rep.add("card", "README.md", "no YAML header (--- ... ---) at the top")
        return out
    try:
        head = yaml.safe_load(text[4 : text.index("\n---\n", 4)])
    except yaml.YAMLError as e:
        rep.add("card", "README.md", f"YAML header does not parse: {e}")
        return out
    data = (
        sorted(str(p.relative_to(root)) for p in (root / "data").rglob("*.parquet")) if (root / "data").is_dir() else []
    )
    for c in (head or {}).get("configs") or []:
        name = c.get("config_name")
        for df in c.get("data_files") or []:
            hits = [root / p for p in data if fnmatch.fnmatch(p, df.get("path", ""))]
            if not hits:
                rep.add(
                    "card",
                    "README.md",
                    f"config {name!r} split {df.get('split')!r}: path {df.get('path')!r} matches no file",
                )
            out.setdefault(name, {})[df.get("split")] = hits
    empty = _empty_splits(root)
    for name in CONFIGS:
        if name not in out and not empty.get(name):
            rep.add("card", "README.md", f"config {name!r} missing from the configs: header")
    for name, splits in sorted(empty.items()):
        for split in splits:
            if split in out.get(name, {}):
                rep.add(
                    "card", "README.md", f"config {name!r} registers split {split!r}, which release.json lists as empty"
                )
            rep.notes.append(f"{name}/{split} is left out: the build gave it no row (release.json empty_splits)")
    return out


def _empty_splits(root: Path) -> dict[str, list[str]]:
    """config -> splits the release left out for having no row (``release.json``; none when unreadable)."""
    try:
        return dict(json.loads((root / "release.json").read_text("utf-8")).get("empty_splits") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def _masks(where: str, masks, rep: ValidationReport, size=None) -> list | None:
    good = []
    for k, m in enumerate(masks or []):
        try:
            good.append(check_rle(m, size))
        except InvalidRLE as e:
            rep.add("mask", where, f"mask {k} does not decode: {e}")
            return None
        rep.checked["masks"] += 1
    return good


def _marks(text: str) -> list[tuple[str, str]]:
    return [(m.phrase, m.node_id) for m in find_marks(text)]


def _check_instruct(rel: str, row: dict, i: int, rep: ValidationReport) -> None:
    where = f"{rel} row {i} (id {row.get('id')})"
    masks = _masks(where, row["masks"], rep)
    msgs = row["messages"] or []
    roles = [m["role"] for m in msgs]
    if not msgs or roles != ["user", "assistant"] * (len(msgs) // 2) or len(msgs) % 2:
        rep.add("schema", where, f"messages must alternate user/assistant starting with user, got {roles}")
    if msgs and msgs[0]["content"].count("<image>") != 1:
        rep.add("schema", where, "the first user turn must hold <image> exactly once")
    marks = [mk for m in msgs if m["role"] == "assistant" for mk in _marks(m["content"])]
    n = len(row["masks"] or [])
    if len(marks) != n or len(row["mask_phrases"] or []) != n or len(row["mask_node_ids"] or []) != n:
        rep.add(
            "marks",
            where,
            f"{len(marks)} mark(s) in the assistant turns, {n} mask(s), "
            f"{len(row['mask_phrases'] or [])} phrase(s), {len(row['mask_node_ids'] or [])} node id(s)",
        )
    elif [p for p, _ in marks] != list(row["mask_phrases"]) or [n for _, n in marks] != list(row["mask_node_ids"]):
        rep.add("marks", where, "mask_phrases / mask_node_ids differ from the marks of the text, in order")
    if masks is not None and len({tuple(m["size"]) for m in masks}) > 1:
        rep.add("mask", where, "the masks of one row differ in size")
    if row.get("query_mask") is not None:
        _masks(where + " query_mask", [row["query_mask"]], rep)


def _check_bench(rel: str, row: dict, i: int, rep: ValidationReport) -> None:
    where = f"{rel} row {i} (question_id {row.get('question_id')})"
    _masks(where, row["masks"], rep)
    if row["task"] == "age" and len(row["masks"] or []) != len(row["mask_phrases"] or []):
        rep.add("marks", where, f"{len(row['masks'] or [])} mask(s) but {len(row['mask_phrases'] or [])} phrase(s)")
    if has_mark(row.get("answer")):
        rep.add("marks", where, "answer must be plain text (it holds a [phrase](id) mark)")
    if row.get("query_mask") is not None:
        _masks(where + " query_mask", [row["query_mask"]], rep)


def _check_record(rel: str, row: dict, i: int, rep: ValidationReport) -> None:
    where = f"{rel} row {i} (sample_id {row.get('sample_id')})"
    if row.get("artifact_mask") is not None:
        _masks(where + " artifact_mask", [row["artifact_mask"]], rep)
    segs = row.get("segments") or []
    _masks(where + " segments", [s["mask"] for s in segs], rep)
    _masks(where + " regions", [r["mask"] for r in row.get("regions") or []], rep)
    marks = _marks(row.get("explanation") or "")
    if [(s["phrase"], s["node_id"]) for s in segs] != marks and row.get("label") == "fake":
        rep.add(
            "marks",
            where,
            f"explanation has {len(marks)} mark(s), segments has {len(segs)} (k-th mark must match the k-th segment)",
        )


CHECKS = {"instruct": _check_instruct, "bench": _check_bench, "annotations": _check_record}


def _image(rel: str, row: dict, i: int, rep: ValidationReport) -> None:
    img = row.get("image") or {}
    if img.get("path") and (img["path"].startswith("/") or ".." in Path(img["path"]).parts):
        rep.add("image", f"{rel} row {i}", f"image.path {img['path']!r} is not relative to the image root")
    if img.get("bytes") is not None:
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(img["bytes"])) as im:
                im.verify()
            rep.checked["images"] += 1
        except Exception as e:  # noqa: BLE001 - any decoder error is a problem to report
            rep.add("image", f"{rel} row {i}", f"embedded image does not decode: {e}")


def _file_rows(
    name: str, rel: str, f: Path, split: str, schema, ids: Counter, frames: list, rep: ValidationReport
) -> None:
    i = 0
    key = "question_id" if name == "bench" else ("sample_id" if name == "annotations" else "id")
    cols = [c for c in ("sample_id", "group", "identities", "split") if c in schema.names]
    for batch in pq.ParquetFile(f).iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            CHECKS[name](rel, row, i, rep)
            _image(rel, row, i, rep)
            ids[row[key]] += 1
            if "split" in row and row["split"] != split:
                rep.add(
                    "leak",
                    f"{rel} row {i} ({key} {row[key]})",
                    f"split column says {row['split']!r}, file is {split!r}",
                )
            i += 1
        frames.append(pl.from_arrow(batch.select(cols)).with_columns(pl.lit(split).alias("file_split")))
    rep.checked[f"{name} rows"] += i
    if i == 0:
        rep.add("layout", rel, f"registered for {name}/{split} but holds no row (datasets refuses an empty split)")


def _rows(root: Path, layout: dict, rep: ValidationReport) -> dict[str, pl.DataFrame]:
    """Row checks; returns per config a frame (sample_id, split, ...) for the leakage check."""
    seen: dict[str, pl.DataFrame] = {}
    for name, (_splits, schema) in CONFIGS.items():
        ids: Counter = Counter()
        frames = []
        for split, files in sorted((layout.get(name) or {}).items()):
            for f in files:
                rel = str(f.relative_to(root))
                try:
                    got = pq.read_schema(f).remove_metadata()
                except Exception as e:  # noqa: BLE001
                    rep.add("schema", rel, f"not a readable Parquet file: {e}")
                    continue
                if not got.equals(schema):
                    diff = [
                        f"{x.name}: {x.type}"
                        for x in got
                        if x.name not in schema.names or schema.field(x.name).type != x.type
                    ]
                    miss = [x for x in schema.names if x not in got.names]
                    rep.add(
                        "schema",
                        rel,
                        f"schema differs from {name}'s: unexpected {diff or 'none'}, missing {miss or 'none'}",
                    )
                    continue
                try:
                    _file_rows(name, rel, f, split, schema, ids, frames, rep)
                except (OSError, ValueError) as e:  # pyarrow: a damaged file
                    rep.add("schema", rel, f"rows cannot be read: {e}")
        for k, n in ids.items():
            if n > 1:
                rep.add("ids", name, f"id {k!r} occurs {n} times")
        if frames:
            seen[name] = pl.concat(frames, how="diagonal_relaxed")
    return seen


def _leakage(seen: dict[str, pl.DataFrame], rep: ValidationReport) -> None:
    ann = seen.get("annotations")
    if ann is None:
        rep.add("leak", "annotations", "no annotation records: the splits cannot be checked")
        return
    f = ann.rename({"file_split": "split"}) if "split" not in ann.columns else ann.drop("file_split")
    lk = leaks(f)
    for g in lk["group"][:20]:
        rep.add("leak", "annotations", f"group {g!r} is in more than one split")
    for i in lk["identity"][:20]:
        rep.add("leak", "annotations", f"identity {i!r} is in more than one split")
    split_of = f.select("sample_id", pl.col("split").alias("ann_split")).unique("sample_id")
    for name in ("instruct", "bench"):
        fr = seen.get(name)
        if fr is None:
            continue
        j = fr.join(split_of, on="sample_id", how="left")
        missing = j.filter(pl.col("ann_split").is_null())
        if missing.height:
            rep.add(
                "leak",
                name,
                f"{missing.height} row(s) whose sample has no annotation record, e.g. {missing['sample_id'][0]}",
            )
        bad = j.filter(pl.col("ann_split").is_not_null() & (pl.col("ann_split") != pl.col("file_split")))
        for r in bad.head(20).iter_rows(named=True):
            rep.add(
                "leak",
                name,
                f"sample {r['sample_id']} is in {r['file_split']} here but in {r['ann_split']} in the annotations",
            )


def validate(release: str | Path, max_problems: int = 50) -> ValidationReport:
    root = Path(release)
    rep = ValidationReport(str(root), max_problems=max_problems)
    if not root.is_dir():
        rep.add("layout", str(root), "not a folder")
        return rep
    _checksums(root, rep)
    layout = _card(root, rep)
    seen = _rows(root, layout, rep)
    _leakage(seen, rep)
    return rep
