#!/usr/bin/env python
"""Compare two `make demo` outputs (``python -m fifa.demo --out DIR``) by content, not by bytes.

Two runs of the same code differ in bytes only: shard names carry a random suffix, run files carry times, two
workers finish rows in either order, and the output folder's own path is written into some columns. This
compares what the outputs *say*:

- Parquet tables as data: the same schema, the same rows, sorted by their id column (``question_id``, ``id``,
  ``sample_id``; a table without one by whole rows), without the columns of :data:`VOLATILE_COLUMNS`;
- JSON / JSON Lines without the keys of :data:`VOLATILE_KEYS` (the lists of :data:`ORDER_FREE_KEYS` as sets);
- images and every other file byte for byte (text after the output folder's path is replaced);
- in every string, the output folder's path reads ``<out>`` and ``part-000001-1a2b3c4d`` reads ``part-000001-*``.

The training outputs (:data:`NOT_COMPARED`: weights, optimizer and RNG state, loss curve, predictions, report)
are listed, not compared: the build's rows now come in sample_id order, so two demo runs train on the same data in
the same order and score the same (report.json equal but for its paths and creation time, 2026-12-06), but
multi-threaded CPU kernels sum in varying order: the weights differ by about 4e-6, the logged losses in their last
digits.

    python scripts/compare_demo.py /tmp/demo_before /tmp/demo_after     # exit 0: identical content; 1: not
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

ID_COLUMNS = ("question_id", "id", "sample_id")
VOLATILE_COLUMNS = {
    "time_cpu_s": "CPU seconds the annotator spent on the row",
    "seconds": "segmentation time per image",
}
VOLATILE_KEYS = {
    "started": "time a run started",
    "at": "time of a run's last state",
    "created": "time a report was written",
    "elapsed_s": "duration",
    "rows_per_s": "speed",
    "machine": "the machine the run was on",
}
ORDER_FREE_KEYS = {"ids": "the ids a shard holds, in the order the workers finished them"}
# MANIFEST.json entries of Parquet files: sizes and hashes of bytes whose row order varies (tables compared as data)
BYTE_HASH_KEYS = ("bytes", "sha256")
NOT_COMPARED = {  # fnmatch patterns ("*" also matches "/"); the base model and the configs are compared
    "train/ckpt/*adapter/adapter_model.safetensors": "trained weights",
    "train/ckpt/*heads.safetensors": "trained weights",
    "train/ckpt/*/state/optimizer.pt": "optimizer state of the training",
    "train/ckpt/*/state/rng_rank*.pt": "RNG state after the training",
    "train/ckpt/metrics.jsonl": "loss curve",
    "train/ckpt/plots/*": "loss curve",
    "train/predictions.parquet": "answers of the trained model",
    "train/report/*": "scores of the trained model",
}
TEXT_SUFFIXES = {".md", ".txt", ".js", ".html", ".css", ".svg", ".yaml", ".yml", ".jinja", ".csv"}
_PART = re.compile(r"(part-\d+)-[0-9a-f]{8}\b")
_SHOWN = 5  # differences shown per file


@dataclass
class Comparison:
    """What was compared (count per kind), what was left out (path -> reason) and the differences found."""

    compared: Counter[str] = field(default_factory=Counter)
    skipped: dict[str, str] = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differences


# ------------------------------------------------------------------------------------ normalising
def _name(rel: str) -> str:
    return _PART.sub(r"\1-*", rel)


def _files(root: Path) -> dict[str, Path]:
    return {_name(p.relative_to(root).as_posix()): p for p in sorted(root.rglob("*")) if p.is_file()}


def _not_compared(rel: str) -> str | None:
    return next((why for pattern, why in NOT_COMPARED.items() if fnmatch.fnmatch(rel, pattern)), None)


def normalise(value: Any, root: Path) -> Any:
    """``value`` with the output folder's path replaced by ``<out>``, shard suffixes by ``*``, the keys of
    :data:`VOLATILE_KEYS` dropped and the lists of :data:`ORDER_FREE_KEYS` sorted (recursively)."""
    if isinstance(value, str):
        return _PART.sub(r"\1-*", value.replace(str(root), "<out>"))
    if isinstance(value, list):
        return [normalise(v, root) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE_KEYS:
                continue
            v = normalise(v, root)
            out[k] = sorted(v, key=repr) if k in ORDER_FREE_KEYS and isinstance(v, list) else v
        return out
    return value


# ------------------------------------------------------------------------------------ per kind
def _rows(path: Path, root: Path) -> tuple[list[str], list[dict[str, Any]]]:
    table = pq.read_table(path)
    table = table.drop_columns([c for c in table.column_names if c in VOLATILE_COLUMNS])
    schema = [f"{f.name}: {f.type}" for f in table.schema]
    rows = [normalise(r, root) for r in table.to_pylist()]
    key = next((c for c in ID_COLUMNS if c in table.column_names), None)
    rows.sort(key=lambda r: (str(r[key]) if key else "", json.dumps(r, sort_keys=True, default=str)))
    return schema, rows


def compare_parquet(a: Path, b: Path, ra: Path, rb: Path) -> list[str]:
    """Differences between two Parquet tables as data (schema, row count, then rows in id order)."""
    (sa, rows_a), (sb, rows_b) = _rows(a, ra), _rows(b, rb)
    if sa != sb:
        return [f"schema differs: {sorted(set(sa) ^ set(sb))}"]
    if len(rows_a) != len(rows_b):
        return [f"{len(rows_a)} rows against {len(rows_b)}"]
    out = []
    for x, y in zip(rows_a, rows_b):
        if x != y:
            cols = [c for c in x if x[c] != y[c]]
            rid = next((f"{c}={x[c]!r}" for c in ID_COLUMNS if c in x), "a row")
            out.append(f"{rid}: {', '.join(f'{c}: {str(x[c])[:80]} != {str(y[c])[:80]}' for c in cols)}")
    return out


def _json_docs(path: Path, root: Path) -> list[Any]:
    text = path.read_text("utf-8")
    docs = (
        [json.loads(line) for line in text.splitlines() if line.strip()]
        if path.suffix == ".jsonl"
        else [json.loads(text)]
    )
    if path.name == "MANIFEST.json":  # hashes of Parquet bytes: the tables themselves are compared as data
        for name, entry in docs[0].get("files", {}).items():
            if name.endswith(".parquet"):
                for k in BYTE_HASH_KEYS:
                    entry.pop(k, None)
    return [normalise(d, root) for d in docs]


def compare_json(a: Path, b: Path, ra: Path, rb: Path) -> list[str]:
    """Differences between two JSON (or JSON Lines) files without their volatile keys."""
    da, db = _json_docs(a, ra), _json_docs(b, rb)
    if len(da) != len(db):
        return [f"{len(da)} records against {len(db)}"]
    return [f"record {i}: {_first_difference(x, y)}" for i, (x, y) in enumerate(zip(da, db)) if x != y]


def _first_difference(x: Any, y: Any, where: str = "") -> str:
    if isinstance(x, dict) and isinstance(y, dict):
        for k in sorted(set(x) | set(y)):
            if x.get(k, "<missing>") != y.get(k, "<missing>"):
                return _first_difference(x.get(k, "<missing>"), y.get(k, "<missing>"), f"{where}.{k}")
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        i = next(i for i, (u, v) in enumerate(zip(x, y)) if u != v)
        return _first_difference(x[i], y[i], f"{where}[{i}]")
    return f"{where or '.'}: {str(x)[:80]} != {str(y)[:80]}"


def compare_text(a: Path, b: Path, ra: Path, rb: Path) -> list[str]:
    la = normalise(a.read_text("utf-8"), ra).splitlines()
    lb = normalise(b.read_text("utf-8"), rb).splitlines()
    return [f"line {i + 1}: {x[:80]!r} != {y[:80]!r}" for i, (x, y) in enumerate(zip(la, lb)) if x != y] or (
        [f"{len(la)} lines against {len(lb)}"] if len(la) != len(lb) else []
    )


def compare_bytes(a: Path, b: Path, ra: Path, rb: Path) -> list[str]:
    return [] if a.read_bytes() == b.read_bytes() else [f"bytes differ ({a.stat().st_size} against {b.stat().st_size})"]


def _kind(rel: str) -> str:
    suffix = Path(rel).suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".json", ".jsonl"):
        return "json"
    return "text" if suffix in TEXT_SUFFIXES else "bytes"


COMPARE = {"parquet": compare_parquet, "json": compare_json, "text": compare_text, "bytes": compare_bytes}


# ------------------------------------------------------------------------------------ the two folders
def compare(a: Path, b: Path, written_a: Path | None = None, written_b: Path | None = None) -> Comparison:
    """Compare the demo outputs ``a`` and ``b`` file by file (see the module doc). ``written_a`` / ``written_b``:
    the folders the demos were written to, where they were moved since (the paths inside read ``<out>``)."""
    fa, fb = _files(a), _files(b)
    wa, wb = written_a or a, written_b or b
    res = Comparison()
    for rel in sorted(set(fa) ^ set(fb)):
        res.differences.append(f"{rel}: only in {a if rel in fa else b}")
    for rel in sorted(set(fa) & set(fb)):
        why = _not_compared(rel)
        if why:
            res.skipped[rel] = why
            continue
        kind = _kind(rel)
        found = COMPARE[kind](fa[rel], fb[rel], wa, wb)
        res.compared[kind] += 1
        res.differences += [f"{rel}: {d}" for d in found[:_SHOWN]]
        if len(found) > _SHOWN:
            res.differences.append(f"{rel}: ... {len(found) - _SHOWN} more")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", type=Path, help="one demo output folder")
    ap.add_argument("b", type=Path, help="the other")
    ap.add_argument("--quiet", action="store_true", help="no list of the files left out")
    ap.add_argument("--written-a", type=Path, help="the folder A was written to, if it was moved since")
    ap.add_argument("--written-b", type=Path, help="the folder B was written to, if it was moved since")
    args = ap.parse_args(argv)
    for d in (args.a, args.b):
        if not d.is_dir():
            ap.error(f"not a folder: {d}")
    res = compare(args.a.resolve(), args.b.resolve(), args.written_a, args.written_b)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(res.compared.items()))
    if not args.quiet:
        for rel, why in res.skipped.items():
            print(f"not compared: {rel} ({why})")
    for d in res.differences:
        print(f"DIFFERENT {d}")
    verdict = "identical content" if res.identical else f"{len(res.differences)} difference(s)"
    print(f"{verdict}: {counts} files compared, {len(res.skipped)} left out (training outputs)")
    return 0 if res.identical else 1


if __name__ == "__main__":
    sys.exit(main())
