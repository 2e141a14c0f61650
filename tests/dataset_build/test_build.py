"""fifa-data build on real annotations: tasks, schemas, answers, splits, bench, determinism, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from build_helpers import build_config, run_data

from fifa.core.marks import MARK_RE
from fifa.core.schemas import BENCH_SCHEMA, INSTRUCT_SCHEMA
from fifa.core.tasks import TASKS
from fifa.pipelines.build import BuildError, build, resolve_image


def instruct(b: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(b / "instruct" / f"{s}.parquet") for s in ("train", "validation")])


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_all_tasks_with_exact_schemas(built):
    for s in ("train", "validation"):
        assert pq.read_schema(built / "instruct" / f"{s}.parquet").remove_metadata().equals(INSTRUCT_SCHEMA)
    assert pq.read_schema(built / "bench.parquet").remove_metadata().equals(BENCH_SCHEMA)
    df = instruct(built)
    assert set(df["task"]) == set(TASKS)
    assert df["id"].n_unique() == df.height
    bench = pl.read_parquet(built / "bench.parquet")
    assert set(bench["task"]) == set(TASKS)
    assert bench["question_id"].n_unique() == bench.height


def test_messages_alternate_and_hold_one_image_token(built):
    for r in instruct(built).select("messages").to_dicts():
        m = r["messages"]
        assert [x["role"] for x in m] == ["user", "assistant"] * (len(m) // 2)
        assert m[0]["content"].startswith("<image>\n")
        assert sum(x["content"].count("<image>") for x in m) == 1


def test_kth_mark_is_kth_mask(built):
    df = instruct(built).filter(pl.col("task").is_in(["age", "loc"]))
    n_masks = 0
    for r in df.to_dicts():
        marks = [
            (m.group(1), m.group(2))
            for x in r["messages"]
            if x["role"] == "assistant"
            for m in MARK_RE.finditer(x["content"])
        ]
        assert [p for p, _ in marks] == r["mask_phrases"]
        assert [n for _, n in marks] == r["mask_node_ids"]
        assert len(r["masks"]) == len(marks)
        n_masks += len(marks)
    assert n_masks > 20
    age = df.filter((pl.col("task") == "age") & (pl.col("label") == "fake"))
    assert age.height and all(len(m) > 0 for m in age["masks"].to_list())


def test_answers_follow_the_published_style(built, annotated):
    df = instruct(built)
    det = df.filter(pl.col("task") == "det")
    for r in det.to_dicts():
        a = r["messages"][1]["content"]
        assert a.startswith("Yes. " if r["label"] == "fake" else "No. ")
        assert len(a) > 20  # a reason follows
    cls = df.filter((pl.col("task") == "cls") & (pl.col("label") == "fake")).to_dicts()
    from fifa.pipelines.methods import load_methods

    table = load_methods()
    for r in cls:
        a = r["messages"][1]["content"]
        assert r["method"] in a and (table.definition(r["method"])[1:40] in a or "(" in a)
    toe = df.filter((pl.col("task") == "toe") & (pl.col("label") == "fake"))["messages"].to_list()
    assert any("\n1. **" in m[1]["content"] for m in toe)
    for m in toe:
        assert not MARK_RE.search(m[1]["content"])  # toe is text only


def test_at_least_30_question_phrasings_used_deterministically(built):
    from fifa.pipelines.templates import MIN_PHRASINGS, REQUIRED_SETS, load_templates

    t = load_templates()
    for name in REQUIRED_SETS:
        assert len(set(t.q(name))) >= MIN_PHRASINGS, name
    q = instruct(built).filter(pl.col("task") == "det")["messages"].list.get(0).struct.field("content")
    assert q.n_unique() > 10  # many phrasings in use even on 40-odd rows


def test_region_queries_positive_and_negative(built):
    df = instruct(built)
    for task in ("rq_name", "rq_mask", "rq_box"):
        t = df.filter(pl.col("task") == task)
        yes = t.filter(pl.col("messages").list.get(1).struct.field("content").str.starts_with("Yes"))
        no = t.filter(pl.col("messages").list.get(1).struct.field("content").str.starts_with("No"))
        assert yes.height and no.height and yes.height + no.height == t.height, task
        assert not yes.filter(pl.col("label") == "real").height
    qm = df.filter(pl.col("task") == "rq_mask")
    assert qm["query_mask"].null_count() == 0
    qb = df.filter(pl.col("task") == "rq_box")
    for r in qb.to_dicts():
        x0, y0, x1, y1 = r["query_box"]
        assert x1 > x0 and y1 > y0
        assert f"[{int(round(x0))}, {int(round(y0))}" in r["messages"][0]["content"]


def test_negative_boxes_miss_the_artifact(built, annotated):
    """A negative rq_box / rq_mask query never touches the artifact mask of its image."""
    from fifa.annotator.store import read_annotations
    from fifa.core import rle

    art = {r["sample_id"]: r["artifact_mask"] for r in read_annotations(annotated["ann"]).to_pylist()}
    df = instruct(built).filter((pl.col("task") == "rq_mask") & (pl.col("label") == "fake"))
    n = 0
    for r in df.to_dicts():
        inter = rle.area(rle.merge([r["query_mask"], art[r["sample_id"]]], intersect=True))
        if r["messages"][1]["content"].startswith("No"):
            assert inter == 0
            n += 1
        else:
            assert inter > 0
    assert n


def test_failed_rows_left_out_and_counted(built):
    meta = json.loads((built / "build.json").read_text())
    assert meta["left_out"]["failed"] == 1
    assert meta["left_out"]["error_codes"] == {"missing_file": 1}
    assert meta["annotations"]["read"] == meta["annotations"]["kept"] + 1
    assert "fake_broken_missing" not in set(instruct(built)["sample_id"])


def test_stats_counts_match_the_files(built):
    st = json.loads((built / "stats.json").read_text())
    df = instruct(built)
    for task, by in st["rows"]["by_task_split"].items():
        for split in ("train", "validation"):
            assert by.get(split, 0) == df.filter((pl.col("task") == task) & (pl.col("split") == split)).height
    bench = pl.read_parquet(built / "bench.parquet")
    assert st["bench"]["total"] == bench.height
    assert set(st["rows"]["by_split_method"]["train"]) >= {"(none)"} | set(
        df.filter(pl.col("label") == "fake")["method"]
    )


def test_no_machine_paths_and_images_resolve(built, annotated):
    text = "".join(p.read_text("utf-8") for p in built.glob("*.json"))
    assert str(annotated["root"]) not in text
    df = instruct(built)
    paths = df["image"].struct.field("path")
    assert not paths.str.starts_with("/").any()
    for p in paths.unique().to_list()[:5]:
        assert resolve_image(built, p).is_file()


def test_splits_never_share_a_group_or_identity(built, annotated):
    ann = pl.read_parquet(sorted((built / "annotations").glob("*.parquet")))
    groups = ann.group_by("group").agg(pl.col("split").n_unique().alias("k"))
    assert groups["k"].max() == 1
    ids = ann.select(pl.col("identities").str.split("|").alias("i"), "split").explode("i").drop_nulls()
    assert ids.group_by("i").agg(pl.col("split").n_unique().alias("k"))["k"].max() == 1
    # the fixture links groups through identities: linked groups share a split
    linked = ann.filter(pl.col("identities").is_not_null())
    assert linked.height
    split_of_group = dict(zip(ann["group"], ann["split"]))
    for r in linked.to_dicts():
        for ident in r["identities"].split("|"):
            if ident in split_of_group:
                assert split_of_group[ident] == r["split"]
    rows = instruct(built).select("sample_id", "split").unique()
    joined = rows.join(ann.select("sample_id", pl.col("split").alias("a")), on="sample_id")
    assert (joined["split"] == joined["a"]).all() and joined.height == rows.height
    bench = pl.read_parquet(built / "bench.parquet").select("sample_id").unique()
    assert set(bench["sample_id"]) <= set(ann.filter(pl.col("split") == "test")["sample_id"])


def test_bench_balanced_per_task_and_class(built):
    st = json.loads((built / "stats.json").read_text())["bench"]["by_task_class"]
    for task, classes in st.items():
        assert len(set(classes.values())) == 1, (task, classes)
    assert set(st["det"]) == {"real", "fake"}


def test_perfect_submission_scores_one(built):
    from fifa.benchmarks.scoring import score

    bench = pq.read_table(built / "bench.parquet").to_pylist()
    sub = [{"question_id": r["question_id"], "answer": r["answer"], "masks": r["masks"]} for r in bench]
    rep = score(built / "bench.parquet", sub, bootstrap=0, use_java=False, meteor=False)
    assert rep.tasks["det"]["acc"] == 1.0
    assert rep.tasks["cls"]["acc"] == 1.0
    for t in ("loc", "age"):
        assert rep.tasks[t]["giou"] == pytest.approx(1.0) and rep.tasks[t]["ciou"] == pytest.approx(1.0)
    assert rep.tasks["age"]["miou"] == pytest.approx(1.0)
    # and a wrong one does not
    wrong = [
        dict(s, answer="No." if r["task"] == "det" and r["label"] == "fake" else s["answer"], masks=[])
        for s, r in zip(sub, bench)
    ]
    rep2 = score(built / "bench.parquet", wrong, bootstrap=0, use_java=False, meteor=False)
    assert rep2.tasks["det"]["acc"] < 1.0 and rep2.tasks["loc"]["giou"] < 1.0


def test_same_inputs_and_seed_same_bytes(built, annotated, tmp_path):
    again = tmp_path / "again"
    build([annotated["ann"]], again, build_config())
    assert file_hashes(again) == file_hashes(built)
    other = tmp_path / "other"
    build([annotated["ann"]], other, build_config(seed=4))
    assert file_hashes(other)["instruct/train.parquet"] != file_hashes(built)["instruct/train.parquet"]


def test_duplicate_sample_ids_across_runs(annotated, tmp_path):
    copy = tmp_path / "ann_copy"
    shutil.copytree(annotated["ann"], copy)
    out = tmp_path / "b"
    s = build([annotated["ann"], copy], out, build_config(tasks=("det", "cls")))
    kept = s.annotations["kept"]
    assert s.left_out["duplicate_sample_id"] == kept
    assert any("more than once" in w for w in s.warnings)
    df = instruct(out)
    assert df["id"].n_unique() == df.height
    assert (
        df.filter(pl.col("task") == "det").height
        + json.loads((out / "stats.json").read_text())["rows"]["by_task_split"]["det"].get("test", 0)
        == kept
    )


def test_task_the_annotations_cannot_supply(annotated, tmp_path):
    import pyarrow.compute as pc

    only_real = tmp_path / "real_only"
    (only_real / "annotations").mkdir(parents=True)
    for shard in sorted((annotated["ann"] / "annotations").glob("*.parquet")):
        t = pq.read_table(shard)
        pq.write_table(t.filter(pc.equal(t["label"], "real")), only_real / "annotations" / shard.name)
    with pytest.raises(BuildError, match="cannot supply task.*age"):
        build([only_real], tmp_path / "b", build_config(tasks=("det", "age")))
    s = build([only_real], tmp_path / "b2", build_config(tasks=("det",)))
    assert s.annotations["kept"] > 0
    r = run_data(
        "build", "--annotations", str(only_real), "--out", str(tmp_path / "b3"), "--tasks", "loc", "--no-progress"
    )
    assert r.returncode == 2 and "cannot supply" in r.stderr and "Traceback" not in r.stderr
    r = run_data("build", "--annotations", str(only_real), "--out", str(tmp_path / "b3"), "--tasks", "nope")
    assert r.returncode == 2 and "unknown task" in r.stderr


def test_image_root(annotated, tmp_path):
    with pytest.raises(BuildError, match="outside the image root"):
        build([annotated["ann"]], tmp_path / "b", build_config(tasks=("det",), image_root=str(tmp_path)))
    build([annotated["ann"]], tmp_path / "b", build_config(tasks=("det",), image_root=str(annotated["root"])))
    paths = instruct(tmp_path / "b")["image"].struct.field("path")
    assert paths.str.starts_with("forged/images/").all()
    assert all(resolve_image(tmp_path / "b", p).is_file() for p in paths.unique().to_list())


def test_annotations_without_identities_column(annotated, tmp_path):
    old = tmp_path / "old"
    (old / "annotations").mkdir(parents=True)
    for shard in sorted((annotated["ann"] / "annotations").glob("*.parquet")):
        t = pq.read_table(shard)
        pq.write_table(t.drop(["identities"]), old / "annotations" / shard.name)
    s = build([old], tmp_path / "b", build_config(tasks=("det",)))
    assert s.annotations["kept"] > 0
    ann = pl.read_parquet(sorted((tmp_path / "b" / "annotations").glob("*.parquet")))
    assert ann["identities"].null_count() == ann.height
    assert ann.group_by("group").agg(pl.col("split").n_unique())["split"].max() == 1


def test_cli_build_exit_codes(annotated, tmp_path):
    r = run_data(
        "build",
        "--annotations",
        str(annotated["ann"]),
        "--out",
        str(tmp_path / "b"),
        "--tasks",
        "det,cls",
        "--seed",
        "3",
        "--split-ratios",
        "0.6,0.2,0.2",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    assert "left out" in r.stdout and "failed" in r.stdout
    r = run_data("build", "--annotations", str(annotated["ann"]), "--out", str(tmp_path / "b"), "--split-ratios", "1,2")
    assert r.returncode == 2 and "split ratios" in r.stderr
    (tmp_path / "notabuild").mkdir()
    (tmp_path / "notabuild" / "precious.txt").write_text("x")
    r = run_data("build", "--annotations", str(annotated["ann"]), "--out", str(tmp_path / "notabuild"))
    assert r.returncode == 2 and "not a build folder" in r.stderr
    assert (tmp_path / "notabuild" / "precious.txt").is_file()
