"""``fifa-train predict`` reads the bench as :class:`fifa.core.records.BenchQuestion` records: the Parquet reader
hands typed questions (in order, across row groups) to the predictor, and a bench that is not a DESIGN.md bench
is the user's mistake, named by its field (exit 2, no traceback), before or instead of a ``KeyError``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from micro_config import MICRO

from fifa.core.errors import UserError
from fifa.core.records import BenchQuestion
from fifa.modeling.config import load_config
from fifa.modeling.data import ParquetRows
from fifa.modeling.predict import Predictor
from fifa.modeling.submit import predict_bench

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def checkpoint(small_build, tmp_path_factory) -> Path:
    from fifa.modeling.train import train

    out = tmp_path_factory.mktemp("records") / "ck"
    cfg = load_config(None, [*MICRO, "train.max_steps=2", "train.save_every=2", "predict.max_new_tokens=4"])
    train(cfg, small_build, out, progress=False)
    return out


def _bench(tmp_path: Path, table: pa.Table, name: str = "bench.parquet") -> Path:
    """``table`` as a bench file of row groups of 5 (no image is read: the bench is refused first)."""
    path = tmp_path / name
    pq.write_table(table, path, row_group_size=5)
    return path


def test_parquet_rows_hand_typed_questions_in_order_across_row_groups(small_build, tmp_path):
    table = pq.read_table(small_build / "bench.parquet")
    path = tmp_path / "b.parquet"
    pq.write_table(table, path, row_group_size=5)
    every = BenchQuestion.from_arrow(table)
    picked = [13, 2, 7, 3, len(every) - 1]
    got = ParquetRows([path]).records(BenchQuestion, picked)
    assert all(type(q) is BenchQuestion for q in got)
    assert got == [every[i] for i in picked]


def test_predict_hands_the_predictor_bench_questions(checkpoint, small_build, tmp_path, monkeypatch):
    seen: list = []
    call = Predictor.__call__

    def spy(self, rows, resolve):
        seen.extend(rows)
        return call(self, rows, resolve)

    monkeypatch.setattr(Predictor, "__call__", spy)
    s = predict_bench(checkpoint, small_build / "bench.parquet", tmp_path / "p.parquet", limit=6, progress=False)
    assert s.predicted == 6 and len(seen) == 6 and all(type(q) is BenchQuestion for q in seen)
    want = BenchQuestion.from_arrow(pq.read_table(small_build / "bench.parquet").slice(0, 6))
    assert sorted(seen, key=lambda q: q.question_id) == sorted(want, key=lambda q: q.question_id)


def _with_null(table: pa.Table, column: str, row: int) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = None
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))


def test_a_malformed_bench_is_a_user_error_naming_the_field(checkpoint, small_build, tmp_path):
    table = pq.read_table(small_build / "bench.parquet").slice(0, 12)
    cases = [
        (_with_null(table, "history", 3), r"BenchQuestion\.history: 1 null value"),
        (table.drop_columns(["question"]), r"BenchQuestion: the table has no column 'question'"),
        (
            table.set_column(table.schema.get_field_index("task"), "task", pa.array([[1]] * table.num_rows)),
            r"BenchQuestion\.task: column of type list<.*int64>, expected string",
        ),
    ]
    for n, (bad, message) in enumerate(cases):
        bench = _bench(tmp_path, bad, f"bad{n}.parquet")
        out = tmp_path / f"p{n}.parquet"
        with pytest.raises(UserError, match=message) as e:
            predict_bench(checkpoint, bench, out, progress=False)
        assert str(bench) in str(e.value) and not out.exists()


def test_the_command_says_which_field_without_a_traceback(checkpoint, small_build, tmp_path):
    bench = _bench(tmp_path, _with_null(pq.read_table(small_build / "bench.parquet"), "history", 0))
    args = ["predict", "--checkpoint", str(checkpoint), "--bench", str(bench), "--out", str(tmp_path / "p.parquet")]
    p = subprocess.run([str(BIN / "fifa-train"), *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "error:" in p.stderr and "BenchQuestion.history" in p.stderr and "Traceback" not in p.stderr
