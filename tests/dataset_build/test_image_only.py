"""Instruction and bench answers describe the image (DESIGN.md "Answers describe the image"): over every template,
the offline and the OpenAI explainer, the annotation records keeping the measurements, and the build's refusal."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from build_helpers import build_config, fake_llm_server_class, run_data

from fifa.annotator.visible import source_mention

SAMPLE = {
    "reason": "The face shows an unnatural tint.",
    "method": "Deepfakes",
    "definition": "A face swap.",
    "category": "face swap",
    "Category": "Face swap",
    "code": "FS",
    "category_definition": "A swap.",
    "mark": "[the manipulated region](artifact)",
    "region": "the left eye",
    "Region": "The left eye",
    "extent": "most of it",
    "sentence": "The left eye looks smoothed.",
    "elsewhere": "the mouth",
    "regions": "the mouth and the nose",
    "cues": "blur; seams",
}


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def test_every_packaged_template_describes_the_image():
    from fifa.pipelines.templates import load_templates

    t = load_templates()
    n = 0
    for text in [*_strings(t.answers), *_strings(t.questions)]:
        filled = re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"), text)
        assert source_mention(filled) is None, text
        n += 1
    assert n > 300
    assert not any("{pct}" in a for a in _strings(t.answers))


def answers(build: Path) -> pl.DataFrame:
    """Every answer of a build: assistant turns of the instruction rows, bench answers (task, id, text)."""
    inst = pl.concat([pl.read_parquet(p) for p in sorted((build / "instruct").glob("*.parquet"))])
    turns = (
        inst.select("id", "task", "messages")
        .explode("messages")
        .unnest("messages")
        .filter(pl.col("role") == "assistant")
        .select("id", "task", pl.col("content").alias("text"))
    )
    bench = pl.read_parquet(build / "bench.parquet").select(
        pl.col("question_id").alias("id"), "task", pl.col("answer").alias("text")
    )
    return pl.concat([turns, bench])


def assert_image_only(build: Path) -> pl.DataFrame:
    a = answers(build)
    bad = [
        (r["task"], r["id"], source_mention(r["text"])) for r in a.iter_rows(named=True) if source_mention(r["text"])
    ]
    assert bad == []
    assert set(a["task"]) >= {"det", "toe", "age", "rq_name", "rq_mask", "rq_box", "fc"}
    return a


def test_offline_build_answers_describe_the_image_and_records_keep_the_measurements(built):
    a = assert_image_only(built)
    assert a.filter(pl.col("text").str.contains("unnatural|smoothed|grain|warped|displaced|out of place")).height
    rec = pl.concat([pl.read_parquet(p) for p in sorted((built / "annotations").glob("*.parquet"))])
    fakes = rec.filter(pl.col("label") == "fake")["explanation"].drop_nulls().to_list()
    assert sum(source_mention(x) is not None for x in fakes) > len(fakes) // 2  # "mean ΔE ...": kept there


@pytest.fixture(scope="module")
def openai_build(annotated, tmp_path_factory) -> Path:
    """A few annotations written by the OpenAI explainer (the scripted server on 127.0.0.1), then built."""
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.core.llm import OpenAIConfig
    from fifa.pipelines.build import build

    d = tmp_path_factory.mktemp("openai")
    man = annotated["manifest"]
    t = pq.read_table(man).to_pylist()
    keep = [r for r in t if r["sample_id"] != "fake_broken_missing"]
    fakes = [r for r in keep if r["label"] == "fake"][:14]
    reals = [r for r in keep if r["label"] == "real"][:6]
    sub = man.with_name("manifest_openai.parquet")
    pq.write_table(pa.Table.from_pylist(fakes + reals, schema=pq.read_schema(man)), sub)
    with fake_llm_server_class()() as srv:
        cfg = AnnotateConfig(
            progress=False,
            workers=1,
            llm="openai",
            openai=OpenAIConfig(model="test-vlm", base_url=srv.url, api_key="sk-test", cache_dir=str(d / "cache")),
        )
        run_annotation(sub, d / "ann", cfg)
    out = d / "build"
    build([d / "ann"], out, build_config(tasks=("det", "toe", "age", "loc", "rq_name", "rq_mask", "rq_box", "fc")))
    return out


def test_openai_build_answers_describe_the_image(openai_build):
    a = assert_image_only(openai_build)
    age = a.filter(pl.col("task") == "age")["text"].to_list()
    assert any("looks smoothed, with an unnatural tint" in x for x in age)  # the server's visible sentences
    rec = pl.concat([pl.read_parquet(p) for p in sorted((openai_build / "annotations").glob("*.parquet"))])
    assert any("compared with the source" in (x or "") for x in rec["explanation"].to_list())


def _without_visible(ann: Path, out: Path) -> Path:
    """An annotation folder as written before visible descriptions existed."""
    shutil.copytree(ann, out, ignore=shutil.ignore_patterns("*.lock", ".lock*"))
    for s in sorted((out / "annotations").glob("part-*.parquet")):
        t = pq.read_table(s)
        if "visible_explanation" in t.column_names:
            t = t.drop_columns(["visible_explanation"])
        pq.write_table(t, s)
    return out


def test_build_refuses_answers_that_mention_the_source(annotated, tmp_path):
    from fifa.pipelines.build import BuildError, build

    old = _without_visible(annotated["ann"], tmp_path / "old")
    with pytest.raises(BuildError, match="mention the source image.*visible_explanation"):
        build([old], tmp_path / "b1", build_config())
    assert not list(tmp_path.glob(".b1.tmp-*")) and not (tmp_path / "b1").exists()
    r = run_data("build", "--annotations", str(old), "--out", str(tmp_path / "b2"), "--no-progress")
    assert r.returncode == 2 and "mention the source image" in r.stderr and "Traceback" not in r.stderr
    # a custom answer template that states a figure measured against the source
    from fifa.pipelines.templates import load_templates

    answers = dict(load_templates().answers)
    answers["det_fake"] = ["Yes. Traces cover {regions}, {pct} of the image."]
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(answers, allow_unicode=True))
    with pytest.raises(BuildError, match=r"det .*% of the image"):
        build([annotated["ann"]], tmp_path / "b3", build_config(answers=str(path)))
