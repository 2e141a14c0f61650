"""`build_site` / `fifa-data view` without a browser: what the site files hold."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from viewer_data import HOSTILE_ID, MASK_A, MASK_B, read_js, site_samples

from fifa.annotator.store import read_annotations
from fifa.core.rle import decode, encode
from fifa.pipelines.viewer import SiteError, SourceError, ViewerConfig, build_site, detect

CFG = ViewerConfig(page_size=4, progress=False)
BIN = Path(sys.executable).parent


def _marks(tokens):
    return [t for t in tokens if isinstance(t, list)]


def test_detects_the_three_kinds(ann_run, build_dir, release_dir, tmp_path):
    assert detect(ann_run).kind == "annotations"
    assert detect(build_dir).kind == "build"
    assert detect(release_dir).kind == "release"
    with pytest.raises(SourceError, match="neither an annotation run"):
        detect(tmp_path)


def test_annotation_run_site_links_every_phrase_to_its_segment_mask(ann_run, tmp_path):
    s = build_site(ann_run, tmp_path / "site", CFG)
    rows = {r["sample_id"]: r for r in read_annotations(ann_run).to_pylist()}
    assert (s.kind, s.samples, s.pages) == ("annotations", len(rows), -(-len(rows) // 4))
    assert s.missing_images == 0 and s.samples_with_warnings == 0
    samples = site_samples(tmp_path / "site")
    assert set(samples) == set(rows)
    fakes = [sid for sid, r in rows.items() if r["label"] == "fake" and r["segments"]]
    assert fakes
    for sid in fakes:
        page, row = samples[sid], rows[sid]
        marks = _marks(page["text"])
        assert [m[0] for m in marks] == [seg["phrase"] for seg in row["segments"]]
        for m, seg in zip(marks, row["segments"]):
            assert page["masks"][m[1]]["counts"] == seg["mask"]["counts"]
            assert m[2] == seg["node_id"]
        art = page["masks"][page["ann"]["artifact"]]
        assert (art["kind"], art["counts"]) == ("artifact", row["artifact_mask"]["counts"])
        assert page["source"] is not None and page["img"]["w"] == row["image_width"]
        assert page["status"] == "ok" and page["text_from"] == "annotation"
    # each image once, content-addressed: fakes and their sources share files
    imgs = sorted(p.name for p in (tmp_path / "site" / "img").iterdir())
    assert s.images == len(imgs) < 2 * len(rows)
    assert all(re.fullmatch(r"[0-9a-f]{20}\.jpg", n) for n in imgs)
    used = {x["img"]["src"] for x in samples.values()} | {x["source"]["src"] for x in samples.values() if x["source"]}
    assert used == {f"img/{n}" for n in imgs}


def test_build_site_rows_tasks_splits_and_a_missing_image(build_dir, tmp_path):
    s = build_site(build_dir, tmp_path / "site", CFG)
    index = read_js(tmp_path / "site" / "data" / "index.js")
    assert s.kind == "build" and s.samples == 11
    assert set(index["facets"]["task"]) == {"det", "age", "rq_box", "loc"}
    assert set(index["facets"]["split"]) == {"train", "validation", "test"}
    assert index["meta"]["seed"] == 0 and index["meta"]["stats.samples"] == 10
    samples = site_samples(tmp_path / "site")
    # s03 names a file that does not exist: shown without an image, with the reason
    assert samples["s03"]["img"] is None and s.missing_images == 1
    assert samples["s03"]["warnings"] == ["image file not found: missing/s03.png"]
    assert samples["s01"]["img"] is not None  # path relative to the image root build.json names
    # instruction row: the k-th mark takes the k-th mask
    s0 = samples["s00"]
    age = next(q for q in s0["qa"] if q["task"] == "age")
    marks = _marks(age["turns"][1]["t"])
    assert [(m[0], m[2]) for m in marks] == [("left cheek", "left_cheek"), ("lower lip", "lower_lip")]
    assert np.array_equal(decode(s0["masks"][marks[0][1]]), MASK_A)
    assert np.array_equal(decode(s0["masks"][marks[1][1]]), MASK_B)
    assert s0["text"] == age["turns"][1]["t"] and s0["splits"] == ["train"]
    box = next(q for q in s0["qa"] if q["task"] == "rq_box")
    assert box["query"] == {"box": [50.0, 70.0, 92.0, 90.0]}
    # bench rows: phrases found in the plain answer; loc's single mask as a chip
    s4 = samples["s04"]
    assert s4["splits"] == ["test"] and {q["from"] for q in s4["qa"]} == {"bench"}
    bage = next(q for q in s4["qa"] if q["task"] == "age")
    assert [m[0] for m in _marks(bage["turns"][-1]["t"])] == ["left cheek", "lower lip"]
    loc = next(q for q in s4["qa"] if q["task"] == "loc")
    assert loc["extra"] and np.array_equal(decode(s4["masks"][loc["extra"][0]]), MASK_A | MASK_B)
    assert samples[HOSTILE_ID]["method"] == "<b>Method</b>"


def test_release_site(release_dir, tmp_path):
    s = build_site(release_dir, tmp_path / "site", CFG)
    samples = site_samples(tmp_path / "site")
    assert s.kind == "release" and s.samples == 6
    assert samples["s00"]["splits"] == ["train"] and samples["s00"]["ann"]["status"] == "ok"
    assert samples["s04"]["splits"] == ["test"]
    assert samples["s01"]["img"] is not None  # embedded in the release
    assert samples["s03"]["img"] is None
    assert read_js(tmp_path / "site" / "data" / "index.js")["meta"] == {"version": "0.0.1"}  # no file list


def test_no_path_of_the_building_machine_in_any_site_file(ann_run, build_dir, release_dir, tmp_path):
    for src in (ann_run, build_dir, release_dir):
        site = tmp_path / src.name
        build_site(src, site, CFG)
        for f in site.rglob("*"):
            if f.is_file():
                text = f.read_bytes()
                for secret in {str(src.parent), str(src.parent.resolve()), str(tmp_path), "/tmp/"}:
                    assert secret.encode() not in text, (f, secret)
    assert "annotations" in (build_dir / "build.json").read_text()  # the build.json path really was there


def _rewrite_image_paths(release_dir: Path, tmp_path: Path, path: str) -> Path:
    rel = tmp_path / "rel"
    import shutil

    shutil.copytree(release_dir, rel)
    f = rel / "data" / "bench" / "test-00000-of-00001.parquet"
    t = pq.read_table(f)
    images = [{"bytes": None, "path": path} for _ in range(t.num_rows)]
    t = t.set_column(t.column_names.index("image"), "image", pa.array(images, t.schema.field("image").type))
    pq.write_table(t, f)
    return rel


@pytest.mark.parametrize("kind", ["absolute", "escaping"])
def test_release_image_paths_cannot_reach_outside_files(release_dir, tmp_path, grace_hopper_path, kind):
    """A release must not make the viewer copy the viewer's own files into a site."""
    path = str(grace_hopper_path) if kind == "absolute" else "../" * 12 + str(grace_hopper_path).lstrip("/")
    rel = _rewrite_image_paths(release_dir, tmp_path, path)
    build_site(rel, tmp_path / "site", CFG)
    s4 = site_samples(tmp_path / "site")["s04"]
    assert s4["img"] is None
    assert s4["warnings"] == [
        "absolute image path refused in a release" if kind == "absolute" else f"image path leaves its root: {path}"
    ]


def test_invalid_masks_are_dropped_with_a_warning_not_a_crash(build_dir, tmp_path):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(build_dir, b)
    f = b / "instruct" / "train.parquet"
    rows = pq.read_table(f).to_pylist()
    age = next(r for r in rows if r["id"] == "s00-age")
    age["masks"][0] = {"size": [96, 96], "counts": "garbage!!"}
    age["masks"][1] = {"size": [96, 96], "counts": encode(MASK_B)["counts"][:-3]}
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(f)), f)
    build_site(b, tmp_path / "site", CFG)
    s0 = site_samples(tmp_path / "site")["s00"]
    assert len([w for w in s0["warnings"] if w.startswith("invalid mask")]) == 2
    age_q = next(q for q in s0["qa"] if q["task"] == "age")
    assert [m[1] for m in _marks(age_q["turns"][1]["t"])] == [-1, -1]


def test_rebuild_replaces_a_site_and_refuses_other_folders(ann_run, build_dir, tmp_path):
    site = tmp_path / "site"
    a = build_site(ann_run, site, CFG)
    b = build_site(build_dir, site, ViewerConfig(page_size=50, progress=False))
    assert a.pages > 1 and b.pages == 1
    assert sorted(p.name for p in (site / "data").iterdir()) == ["index.js", "p00000.js"]
    assert len(list((site / "img").iterdir())) == b.images  # images of the earlier build are gone
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SiteError, match="not a viewer site"):
        build_site(build_dir, other, CFG)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


def test_static_page_never_writes_markup_and_has_a_strict_csp(tmp_path, build_dir):
    build_site(build_dir, tmp_path / "site", CFG)
    js = (tmp_path / "site" / "viewer.js").read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setAttribute('on",
        'setAttribute("on',
    ):
        assert sink not in js, sink
    html = (tmp_path / "site" / "index.html").read_text()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert re.findall(r"<script[^>]*>", html) == ['<script src="viewer.js" defer>']
    data = "".join(p.read_text("ascii") for p in (tmp_path / "site" / "data").glob("*.js"))  # ASCII: no U+2028
    assert "\\u003cscript\\u003e" in data  # the hostile build rows are in there, escaped
    assert not {"<", ">", "&"} & set(data)  # could not end a <script> even if inlined in HTML


def _cli(*args):
    return subprocess.run([str(BIN / "fifa-data"), *args], capture_output=True, text=True, timeout=120)


def test_cli(build_dir, tmp_path):
    r = _cli("view", str(build_dir), "--out", str(tmp_path / "site"), "--page-size", "3", "--max-side", "64")
    assert r.returncode == 0, r.stderr
    warnings = {k: s["warnings"] for k, s in site_samples(tmp_path / "site").items() if s["warnings"]}
    assert "11 samples (build) on 4 pages" in r.stdout and "1 without an image" in r.stdout, (r.stdout, warnings)
    from PIL import Image

    assert max(Image.open(next((tmp_path / "site" / "img").iterdir())).size) == 64
    r = _cli("view", str(tmp_path / "site"), "--out", str(tmp_path / "s2"))
    assert r.returncode == 2 and "error:" in r.stderr and "neither an annotation run" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli("view", str(build_dir), "--out", str(build_dir))
    assert r.returncode == 2 and "not a viewer site" in r.stderr
    r = _cli("view", "--help")
    assert r.returncode == 0 and "fifa-data view annotated/ --out site/" in r.stdout
    empty = tmp_path / "empty_run"
    (empty / "annotations").mkdir(parents=True)
    pq.write_table(read_annotations(empty), empty / "annotations" / "part-000001-x.parquet")
    r = _cli("view", str(empty), "--out", str(tmp_path / "s3"))
    assert r.returncode == 1 and "0 samples" in r.stdout
    assert json.loads(json.dumps(read_js(tmp_path / "s3" / "data" / "index.js")))["pages"] == 0
