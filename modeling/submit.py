"""``fifa-train predict``: a checkpoint and a bench -> a submission file, resumable.

Predictions are written in shards under ``OUT.parts/`` (atomic writes); a rerun skips the question
ids already there, so a large bench survives interruptions. The submission, a
:class:`fifa.core.submission.Submission` (validated like any other before it is written: Parquet, or JSONL
when ``OUT`` ends in ``.jsonl``), is assembled at the end and the shards removed.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fifa.core.atomic import write_table_atomic
from fifa.core.errors import UserError
from fifa.core.records import BenchQuestion, RecordTypeError
from fifa.core.schemas import PREDICTION_PARTS_SCHEMA
from fifa.core.submission import Submission

from .data import ParquetRows
from .loading import device_for, from_checkpoint, precision_for
from .predict import Predictor, bench_resolver, predict_rows

log = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    total: int
    done_before: int
    predicted: int
    failed: int  # rows whose image could not be used (answered with null, reason in the parts' error column)
    out: Path


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _done_ids(parts: Path) -> set[str]:
    done: set[str] = set()
    for f in sorted(parts.glob("part-*.parquet")):
        done.update(pq.read_table(f, columns=["question_id"]).column("question_id").to_pylist())
    return done


def _write(out: Path, parts: Path) -> int:
    """Assemble the parts into the submission ``out``; returns how many questions failed."""
    files = sorted(parts.glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else PREDICTION_PARTS_SCHEMA.empty_table()
    Submission.from_arrow(table.drop_columns(["error"]), str(out)).write(out)
    return sum(1 for e in table.column("error").to_pylist() if e)


def _predictor(checkpoint: str | Path, batch_size: int | None) -> tuple[Predictor, int, int]:
    """The checkpoint's predictor on its device, the batch size and the rows per shard."""
    loaded = from_checkpoint(checkpoint)
    cfg = loaded.cfg
    bs = batch_size or cfg.predict.batch_size
    device = device_for(cfg)
    model = loaded.model.to(device).eval()
    pred = Predictor(
        model,
        loaded.tokenizer,
        loaded.fam,
        device,
        cfg.predict.max_new_tokens,
        cfg.heads.det_score,
        cfg.predict.verdicts,
        precision_for(loaded, device),
        cfg.predict.region_masks,
        cfg.predict.mark_source,
    )
    return pred, bs, max(bs, cfg.predict.shard_rows // bs * bs)


def _predict_shards(
    pred: Predictor, rows: ParquetRows, todo: list[int], parts: Path, shard: int, bs: int, resolve, bar
) -> int:
    """Predict the ``todo`` rows, ``shard`` at a time, each shard written as the next part; returns the count."""
    import torch

    n_part = len(list(parts.glob("part-*.parquet")))
    predicted = 0
    for s in range(0, len(todo), shard):
        chunk = _questions(rows, todo[s : s + shard])
        with torch.no_grad():
            res = predict_rows(pred, chunk, resolve, bs)
        table = pa.Table.from_pylist(res, schema=PREDICTION_PARTS_SCHEMA)
        write_table_atomic(table, parts / f"part-{n_part:05d}.parquet")
        n_part += 1
        predicted += len(res)
        for _ in res:
            bar.advance({})
    return predicted


def _questions(rows: ParquetRows, indices: list[int]) -> list[BenchQuestion]:
    """The bench's questions at ``indices``, typed; a malformed bench is the user's (named field, no traceback)."""
    try:
        return rows.records(BenchQuestion, indices)
    except RecordTypeError as e:
        raise UserError(f"bench {rows.files[0]} is not a DESIGN.md bench: {e}") from None


def _questions_schema(bench: Path) -> None:
    """Refuse, before any prediction, a bench whose columns are not :class:`BenchQuestion`'s (null values are
    found shard by shard, by :func:`_questions`)."""
    try:
        BenchQuestion.from_arrow(pq.read_schema(bench).empty_table())
    except RecordTypeError as e:
        raise UserError(f"bench {bench} is not a DESIGN.md bench: {e}") from None


def predict_bench(
    checkpoint: str | Path,
    bench: str | Path,
    out: str | Path,
    batch_size: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    image_root: str | Path | None = None,
) -> PredictSummary:
    """Predict every question of ``bench`` (or the first ``limit``) with ``checkpoint`` into ``out``.

    Relative image paths are resolved against ``image_root`` (default: the image root of the build the
    bench lies in, or the bench's folder)."""
    bench, out = Path(bench), Path(out)
    if not bench.is_file():
        raise UserError(f"bench not found: {bench}")
    if image_root is not None and not Path(image_root).is_dir():
        raise UserError(f"image root not found: {image_root}")
    pred, bs, shard = _predictor(checkpoint, batch_size)
    try:
        rows = ParquetRows([bench])
    except (OSError, pa.ArrowInvalid) as e:
        raise UserError(f"cannot read bench {bench}: {e}") from None
    _questions_schema(bench)
    qids = [str(q) for q in rows.column("question_id")]
    total = len(qids) if limit is None else min(limit, len(qids))
    parts = _parts_dir(out)
    parts.mkdir(parents=True, exist_ok=True)
    done = _done_ids(parts)
    todo = [i for i in range(total) if qids[i] not in done]
    resolve = bench_resolver(bench, Path(image_root) if image_root is not None else None)
    from .logs import progress_bar

    bar = progress_bar(total, total - len(todo), enabled=progress, label="predict")
    try:
        predicted = _predict_shards(pred, rows, todo, parts, shard, bs, resolve, bar)
    finally:
        bar.close()
    failed = _write(out, parts)
    if total == len(qids):  # the whole bench is done; a --limit run keeps its shards for the next run
        shutil.rmtree(parts, ignore_errors=True)
    return PredictSummary(total, total - len(todo), predicted, failed, out)
