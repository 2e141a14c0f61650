"""Worker tasks keep the fakes of one source together (each source segmented once per run)."""

from __future__ import annotations

from fifa.annotator.manifest import ManifestRow
from fifa.annotator.run import source_batches


def _row(i: int, source: str | None, label: str = "fake") -> ManifestRow:
    return ManifestRow(sample_id=f"s{i:03d}", image_path=f"/d/f{i}.png", source_path=source, label=label)


def test_fakes_of_one_source_share_a_task_even_when_far_apart():
    # FF++ order: method by method, so the fakes of one source are 50 rows apart
    rows = [_row(m * 50 + v, f"/src/{v}.png") for m in range(4) for v in range(50)]
    batches = source_batches(rows, 8)
    assert sorted(r.sample_id for b in batches for r in b) == sorted(r.sample_id for r in rows)
    assert all(1 <= len(b) <= 8 for b in batches)
    where = {}
    for k, b in enumerate(batches):
        for r in b:
            where.setdefault(r.source_path, set()).add(k)
    assert all(len(ks) == 1 for ks in where.values())  # each source in exactly one task
    assert len(batches) == 25  # 4 fakes per source, two sources per task of 8


def test_large_groups_are_split_and_rows_without_source_are_packed():
    rows = [_row(i, "/src/a.png") for i in range(19)] + [_row(100 + i, None, "real") for i in range(5)]
    batches = source_batches(rows, 8)
    assert [len(b) for b in batches] == [8, 8, 8]  # 8 + 8 + (3 of the source and the 5 reals)
    assert [r.sample_id for b in batches for r in b][:19] == [f"s{i:03d}" for i in range(19)]
    assert source_batches([], 8) == []
    assert [len(b) for b in source_batches(rows[:3], 0)] == [1, 1, 1]  # size < 1 means one row per task
