"""Build inputs beyond annotations: a review file, extra QA pairs, fc conversations from a model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from build_helpers import build_config, conversation_server, run_data

from fifa.core.schemas import EXTRA_QA_SCHEMA
from fifa.pipelines.build import BuildError, build


def rows(b: Path) -> pl.DataFrame:
    parts = [pl.read_parquet(b / "instruct" / f"{s}.parquet") for s in ("train", "validation")]
    return pl.concat(parts)


def ann_ids(annotated) -> list[str]:
    from fifa.annotator.store import read_annotations

    t = read_annotations(annotated["ann"], ["sample_id", "label", "status"]).to_pylist()
    return sorted(r["sample_id"] for r in t if r["status"] == "ok" and r["label"] == "fake")


def test_review_file_leaves_rejected_out_and_is_recorded(annotated, tmp_path):
    fakes = ann_ids(annotated)
    review = {
        "version": 1,
        "reviewer": "ana",
        "decisions": [
            {
                "sample_id": fakes[0],
                "decision": "rejected",
                "note": "mask misses the mouth",
                "at": "2026-11-01T10:00:00Z",
            },
            {"sample_id": fakes[1], "decision": "rejected", "note": "", "at": "2026-11-01T10:01:00Z"},
            {"sample_id": fakes[2], "decision": "rejected", "note": "oops", "at": "2026-11-01T10:02:00Z"},
            {"sample_id": fakes[2], "decision": "accepted", "note": "fine after all", "at": "2026-11-01T10:03:00Z"},
            {"sample_id": "no_such_sample", "decision": "rejected", "note": "", "at": "2026-11-01T10:04:00Z"},
        ],
    }
    rf = tmp_path / "review.json"
    rf.write_text(json.dumps(review))
    s = build([annotated["ann"]], tmp_path / "b", build_config(review=str(rf), tasks=("det", "age")))
    assert s.left_out["rejected_by_review"] == 2
    assert any("no_such_sample" in w for w in s.warnings)
    meta = json.loads((tmp_path / "b" / "build.json").read_text())
    r = meta["review"]
    assert (r["reviewer"], r["accepted"], r["rejected"], r["unknown"]) == ("ana", 1, 2, 1)
    assert r["rejected_notes"][fakes[0]] == "mask misses the mouth"
    assert r["sha256"] == hashlib.sha256(rf.read_bytes()).hexdigest()
    kept = set(pl.read_parquet(sorted((tmp_path / "b" / "annotations").glob("*.parquet")))["sample_id"])
    assert fakes[0] not in kept and fakes[1] not in kept and fakes[2] in kept
    from fifa.pipelines.release import ReleaseConfig, release

    release(tmp_path / "b", tmp_path / "r", ReleaseConfig(version="0.1"))
    card = (tmp_path / "r" / "README.md").read_text()
    assert "Reviewed with `review.json`" in card and "reviewer ana): 1 accepted, 2 rejected" in card


@pytest.mark.parametrize(
    "doc,msg",
    [
        ({"version": 2, "decisions": []}, "version"),
        ({"version": 1, "reviewer": None, "decisions": [{"sample_id": "x", "decision": "maybe"}]}, "decision"),
        ({"version": 1, "reviewer": None, "decisions": [{"decision": "accepted"}]}, "sample_id"),
    ],
)
def test_bad_review_file_is_a_user_error(annotated, tmp_path, doc, msg):
    rf = tmp_path / "review.json"
    rf.write_text(json.dumps(doc))
    with pytest.raises(BuildError, match=msg):
        build([annotated["ann"]], tmp_path / "b", build_config(review=str(rf), tasks=("det",)))
    r = run_data("build", "--annotations", str(annotated["ann"]), "--out", str(tmp_path / "c"), "--review", str(rf))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_extra_qa_pairs_become_rows(annotated, tmp_path):
    fakes = ann_ids(annotated)
    qa = [
        dict(
            sample_id=fakes[0],
            task="rq_name",
            question="Is the mouth manipulated?",
            answer="Yes, it is.",
            node_id="mouth",
            origin="ddvqa:v1#0",
        ),
        dict(
            sample_id=fakes[0],
            task="toe",
            question="What is odd here?",
            answer="The mouth is blurred.",
            node_id=None,
            origin="ddvqa:v1#1",
        ),
        dict(
            sample_id=fakes[0],
            task="toe",
            question="What is odd here?",
            answer="The mouth is blurred.",
            node_id=None,
            origin="ddvqa:v1#1",
        ),  # repeated
        dict(sample_id="fake_broken_missing", task="toe", question="Q?", answer="A.", node_id=None, origin="x"),
        dict(sample_id="unknown_frame", task="toe", question="Q?", answer="A.", node_id=None, origin="y"),
        dict(sample_id=fakes[1], task="det", question="Real?", answer="No.", node_id=None, origin="z"),
    ]
    f = tmp_path / "frames.qa.parquet"
    pq.write_table(pa.Table.from_pylist(qa, schema=EXTRA_QA_SCHEMA), f)
    s = build([annotated["ann"]], tmp_path / "b", build_config(extra_qa=(str(f),)))
    x = json.loads((tmp_path / "b" / "build.json").read_text())["extra_qa"]
    assert (x["pairs"], x["used"], x["unmatched_sample"], x["other_task"], x["repeated"]) == (6, 2, 2, 1, 1)
    all_rows = rows(tmp_path / "b")
    bench = pl.read_parquet(tmp_path / "b" / "bench.parquet")
    got = pl.concat([all_rows.select("id", "task"), bench.select(pl.col("question_id").alias("id"), "task")])
    xr = got.filter(pl.col("id").str.contains("/x"))
    assert sorted(xr["task"].to_list()) == ["rq_name", "toe"]
    assert s.annotations["kept"] > 0


def _fc_config(server, tmp_path, **kw):
    from fifa.core.llm import OpenAIConfig
    from fifa.pipelines.conversation import ConversationConfig

    oa = OpenAIConfig(
        model="test-model",
        base_url=server.url,
        api_key="sk-test",
        cache_dir=str(tmp_path / "cache"),
        retry_initial_wait=0.01,
        retry_max_wait=0.05,
        max_retries=3,
        timeout=10,
    )
    return build_config(tasks=("det", "fc"), fc=ConversationConfig(llm="openai", openai=oa, concurrency=2, **kw))


def test_fc_from_an_openai_compatible_model_cached_and_retried(annotated, tmp_path):
    with conversation_server(script=["500", "malformed", "ok", "marks"]) as srv:
        cfg = _fc_config(srv, tmp_path)
        cfg.fc.concurrency = 1  # the script is played in arrival order
        s = build([annotated["ann"]], tmp_path / "b", cfg)
        n = srv.fc_requests
        fc = rows(tmp_path / "b").filter(pl.col("task") == "fc")
        assert s.complete and fc.height
        kept = s.annotations["kept"]
        assert n == kept + 3  # one request per annotation, + a transport retry and two corrective retries
        texts = fc["messages"].list.get(1).struct.field("content")
        assert texts.str.starts_with("The face looks").all()
        fake = fc.filter(pl.col("label") == "fake")["messages"].list.get(1).struct.field("content")
        assert fake.str.contains("manipulated").all()
        meta = json.loads((tmp_path / "b" / "build.json").read_text())
        assert meta["fc"]["backend"] == "openai/test-model/fc-v1" and meta["fc"]["llm_calls"] == n
        assert "sk-test" not in (tmp_path / "b" / "build.json").read_text()
        # a second build asks nothing: every answer comes from the cache, and the files are the same
        build([annotated["ann"]], tmp_path / "b2", _fc_config(srv, tmp_path))  # concurrent this time
        assert srv.fc_requests == n
        for f in ("instruct/train.parquet", "bench.parquet"):
            assert (tmp_path / "b" / f).read_bytes() == (tmp_path / "b2" / f).read_bytes()


def test_fc_budget_stops_dispatch_and_counts(annotated, tmp_path):
    with conversation_server() as srv:
        cfg = _fc_config(srv, tmp_path, max_cost=0.009)  # estimate 0.0075 USD a request; the first costs 0.00175
        cfg.fc.concurrency = 1
        s = build([annotated["ann"]], tmp_path / "b", cfg)
        assert not s.complete
        assert srv.fc_requests == 1
        notes = json.loads((tmp_path / "b" / "build.json").read_text())["task_notes"]
        assert notes["fc_budget"] == s.annotations["kept"] - 1
        r = run_data(
            "build",
            "--annotations",
            str(annotated["ann"]),
            "--out",
            str(tmp_path / "c"),
            "--tasks",
            "fc",
            "--fc-llm",
            "openai",
            "--base-url",
            srv.url,
            "--model",
            "m",
            "--fc-max-cost",
            "0.0001",
            "--cache-dir",
            str(tmp_path / "cache2"),
            "--no-progress",
        )
        assert r.returncode == 1, r.stderr
        assert "fc conversations left out" in r.stderr
