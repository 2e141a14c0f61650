"""Durable annotation output: atomic Parquet shards, a ledger, resume and retry.

Layout of ``DIR``::

    annotations/part-000001-<id>.parquet   shards (reading the folder gives the dataset)
    ledger.jsonl                            {"shard": name, "ids": [...]} per committed shard
    run.json                                config (no secrets), counts, cost, timings
    .retry/                                 staging area of `fifa-annotate retry`

Guarantees, under SIGKILL at any moment:

* A shard is written to a hidden temp file, fsync'd, then renamed: it is either complete or
  absent (hidden names are ignored by Arrow/pandas readers).
* The shards are the truth; the ledger is an index written *after* the rename, reconciled on
  open against the shards it does not list. So a row is done exactly when it is in a shard.
* ``retry`` stages new rows in ``.retry/`` (itself resumable), then commits with a journal:
  old rows are filtered out of their shards (atomic rewrite), staged shards are moved in.
  An interrupted commit is finished by the next open. Every sample id stays exactly once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.atomic import fsync_dir, move, write_json_atomic, write_table_atomic
from fifa.core.records import AnnotationRecord
from fifa.core.schemas import ANNOTATION_SCHEMA

log = logging.getLogger(__name__)

ANN_DIR = "annotations"
LEDGER = "ledger.jsonl"
RETRY_DIR = ".retry"
COMMIT = "COMMIT.json"
DAMAGED_DIR = ".damaged"


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Annotation rows given as dicts (a missing column is null; unchecked: test data, hand-made rows)
    as a table; the run's writer stores :class:`~fifa.core.records.AnnotationRecord` s instead."""
    cols = {name: [r.get(name) for r in rows] for name in ANNOTATION_SCHEMA.names}
    return pa.Table.from_pydict(cols, schema=ANNOTATION_SCHEMA)


class AnnotationStore:
    """Append-only writer of annotation shards under ``root`` with a ledger of finished ids."""

    def __init__(self, root: str | os.PathLike, shard_rows: int = 500, flush_seconds: float = 20.0):
        self.root = Path(root)
        self.ann = self.root / ANN_DIR
        self.ann.mkdir(parents=True, exist_ok=True)
        self.shard_rows = max(1, int(shard_rows))
        self.flush_seconds = flush_seconds
        self._buf: list[AnnotationRecord] = []
        self._last_flush = time.monotonic()
        self._token = uuid.uuid4().hex[:8]
        self._seq = self._max_seq()
        self.written = 0
        self.recover()
        self._done = self._load_done()

    # ---------------------------------------------------------------- recovery
    def _max_seq(self) -> int:
        best = 0
        for p in self.ann.glob("part-*.parquet"):
            with contextlib.suppress(IndexError, ValueError):
                best = max(best, int(p.name.split("-")[1]))
        return best

    def shards(self) -> list[Path]:
        return sorted(p for p in self.ann.glob("part-*.parquet"))

    def recover(self) -> None:
        """Remove temp files of a killed writer, set damaged shards aside, finish an interrupted retry commit."""
        for p in list(self.ann.glob(".tmp-*")) + list(self.root.glob(".tmp-*")):
            with contextlib.suppress(OSError):
                p.unlink()
        self.damaged = self._quarantine_damaged()
        if (self.root / RETRY_DIR / COMMIT).is_file():
            self._finish_commit()

    def _quarantine_damaged(self) -> list[str]:
        """Move shards that cannot be read (half-written by a copy, truncated by a crash of the disk
        or the machine) to ``annotations/.damaged/``: their rows are no longer done, so this run redoes
        them. Our own writes never leave one (temp file + rename), but a folder may be copied."""
        damaged = []
        for p in self.shards():
            try:
                meta = pq.read_metadata(p)
                if "sample_id" not in meta.schema.names:
                    raise ValueError("no sample_id column")
            except Exception as e:  # noqa: BLE001 - whatever the damage, the shard is unusable
                dest = self.ann / DAMAGED_DIR
                dest.mkdir(exist_ok=True)
                move(p, dest / p.name)
                log.warning(
                    "annotation shard %s is damaged (%s): set aside in %s, its rows will be redone", p.name, e, dest
                )
                damaged.append(p.name)
        return damaged

    def _load_done(self) -> set[str]:
        done: set[str] = set()
        listed: set[str] = set()
        ledger = self.root / LEDGER
        existing = {p.name for p in self.shards()}
        if ledger.is_file():
            with ledger.open("r", encoding="utf-8") as f:
                for line in f:
                    try:
                        ent = json.loads(line)
                    except ValueError:
                        continue  # a torn last line of a killed writer
                    if ent.get("shard") in existing:
                        listed.add(ent["shard"])
                        done.update(ent.get("ids", []))
        missing = [p for p in self.shards() if p.name not in listed]
        for p in missing:
            ids = pq.read_table(p, columns=["sample_id"]).column("sample_id").to_pylist()
            done.update(ids)
            self._append_ledger(p.name, ids)
        return done

    def _append_ledger(self, shard: str, ids: list[str]) -> None:
        with open(self.root / LEDGER, "a", encoding="utf-8") as f:
            f.write(json.dumps({"shard": shard, "ids": ids}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ---------------------------------------------------------------- writing
    @property
    def done_ids(self) -> set[str]:
        return self._done

    def add(self, row: AnnotationRecord) -> None:
        self._buf.append(row)
        if len(self._buf) >= self.shard_rows or (time.monotonic() - self._last_flush) >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one shard. On failure (a full disk) they stay buffered: the
        caller may retry, and nothing already on disk is touched."""
        self._last_flush = time.monotonic()
        if not self._buf:
            return
        rows = self._buf
        name = f"part-{self._seq + 1:06d}-{self._token}.parquet"
        write_table_atomic(AnnotationRecord.to_arrow(rows), self.ann / name)
        self._seq += 1
        self._buf = []
        ids = [r.sample_id for r in rows]
        self._done.update(ids)
        self.written += len(rows)
        self._append_ledger(name, ids)  # an index only: a shard missing from it is found on the next open

    def close(self) -> None:
        self.flush()

    @property
    def buffered(self) -> int:
        """Finished rows not yet in a shard."""
        return len(self._buf)

    # ---------------------------------------------------------------- reading
    def read(self, columns: Iterable[str] | None = None) -> pa.Table:
        return read_annotations(self.root, columns)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.shards():
            for s in pq.read_table(p, columns=["status"]).column("status").to_pylist():
                counts[s] = counts.get(s, 0) + 1
        return counts

    def failed_ids(self) -> set[str]:
        out: set[str] = set()
        for p in self.shards():
            t = pq.read_table(p, columns=["sample_id", "status"])
            for sid, st in zip(t.column("sample_id").to_pylist(), t.column("status").to_pylist()):
                if st == "failed":
                    out.add(sid)
        return out

    # ---------------------------------------------------------------- retry
    def retry_store(self, shard_rows: int = 500) -> AnnotationStore:
        """A staging store under ``.retry/`` (resumable) for re-attempted rows."""
        return AnnotationStore(self.root / RETRY_DIR, shard_rows=shard_rows, flush_seconds=self.flush_seconds)

    def commit_retry(self) -> int:
        """Swap the staged rows in for the failed ones they re-attempt; returns the number swapped."""
        staging = self.root / RETRY_DIR
        if not (staging / ANN_DIR).is_dir():
            return 0
        names = sorted(p.name for p in (staging / ANN_DIR).glob("part-*.parquet"))
        # Give staged shards names that cannot clash with ours.
        write_json_atomic({"staged": names, "prefix": f"r{uuid.uuid4().hex[:6]}"}, staging / COMMIT)
        return self._finish_commit()

    def _finish_commit(self) -> int:
        """Apply the journal: drop the replaced rows from the old shards, then adopt the staged
        shards. Each step is idempotent, so a commit killed anywhere is finished by the next open."""
        staging = self.root / RETRY_DIR
        journal = json.loads((staging / COMMIT).read_text("utf-8"))
        moves = [
            (
                staging / ANN_DIR / n,
                self.ann / f"part-{self._max_seq_for_commit(n)}-{journal['prefix']}-{n.split('-')[-1]}",
            )
            for n in journal["staged"]
        ]
        new_ids: set[str] = set()
        for src, dst in moves:  # the sample ids being replaced: read from wherever each staged shard now is
            loc = src if src.is_file() else dst
            if loc.is_file():
                new_ids.update(pq.read_table(loc, columns=["sample_id"]).column("sample_id").to_pylist())
        self._drop_rows(new_ids, keep={dst.name for _, dst in moves})
        for src, dst in moves:
            if src.is_file():
                self._adopt(src, dst)
        fsync_dir(self.ann)
        shutil.rmtree(staging, ignore_errors=True)
        return len(new_ids)

    def _drop_rows(self, ids: set[str], keep: set[str]) -> None:
        """Rewrite (atomically) every shard but ``keep`` without the rows of ``ids``."""
        for p in self.shards():
            if p.name in keep:
                continue
            t = pq.read_table(p)
            sids = t.column("sample_id").to_pylist()
            rows = [i for i, s in enumerate(sids) if s not in ids]
            if len(rows) != len(sids):
                write_table_atomic(t.take(pa.array(rows, pa.int64())), p)

    def _adopt(self, src: Path, dst: Path) -> None:
        move(src, dst, durable=False)  # the commit fsyncs the folder once, after every move
        self._append_ledger(dst.name, pq.read_table(dst, columns=["sample_id"]).column("sample_id").to_pylist())

    @staticmethod
    def _max_seq_for_commit(name: str) -> str:
        # staged names are part-<seq>-<token>.parquet; keep the seq for ordering
        try:
            return name.split("-")[1]
        except IndexError:  # pragma: no cover
            return "000000"


def read_annotations(root: str | os.PathLike, columns: Iterable[str] | None = None) -> pa.Table:
    """All annotation rows of an output folder (one table, the explicit schema)."""
    ann = Path(root) / ANN_DIR
    parts = sorted(ann.glob("part-*.parquet")) if ann.is_dir() else []
    cols = list(columns) if columns is not None else None
    if not parts:
        schema = ANNOTATION_SCHEMA if cols is None else pa.schema([ANNOTATION_SCHEMA.field(c) for c in cols])
        return schema.empty_table()
    # shards of an older run may lack a later column (visible_explanation): it reads as null
    return pa.concat_tables(
        [
            pq.read_table(p, columns=[c for c in cols if c in pq.read_schema(p).names])
            if cols is not None
            else pq.read_table(p)
            for p in parts
        ],
        promote_options="default",
    )
