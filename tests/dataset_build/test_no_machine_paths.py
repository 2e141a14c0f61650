"""Security (#11): builds, releases and exports never hold a path of the building machine: every string
of every file (Parquet cells included, decoded) is searched for the machine's folders."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fifa.pipelines.export import export
from fifa.pipelines.release import ReleaseConfig, release


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def _leaks(folder: Path, machine: list[str]) -> list[str]:
    found = []
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        if f.suffix == ".parquet":
            strings = _strings(pq.read_table(f).to_pylist())
        elif f.suffix in (".json", ".jsonl", ".md", ".yaml", ".txt", ".csv"):
            strings = [f.read_text("utf-8")]
        else:
            continue
        for s in strings:
            hit = next((m for m in machine if m in s), None)
            if hit:
                found.append(f"{f.relative_to(folder)}: {s[:120]!r}")
                break
    return found


@pytest.mark.parametrize("images", ["reference", "embed"])
def test_release_and_exports_hold_no_machine_path(built, annotated, tmp_path, images):
    machine = [str(annotated["root"].resolve()), str(Path.home()), "/tmp/"]
    assert _leaks(built, machine) == [], "the build"
    rel = tmp_path / "release"
    release(built, rel, ReleaseConfig(version="1.0.0", images=images, date="2026-11-27"))
    assert _leaks(rel, machine) == []
    for fmt in ("llava", "llamafactory", "swift", "glamm"):
        out = tmp_path / fmt
        export(built, fmt, out)
        assert _leaks(out, machine) == [], fmt
    card = (rel / "README.md").read_text()
    assert "/tmp/" not in card and json.loads((rel / "MANIFEST.json").read_text())


def test_build_json_holds_no_machine_path_of_the_annotator_settings(annotated, tmp_path):
    """``fifa-annotate run`` (the CLI) records its response cache folder absolute and ``--data-root`` as given;
    ``build.json`` copies the annotator settings without them (a real chain's build held
    ``/root/.cache/fifa-toolkit/llm``)."""
    import shutil

    from fifa.core.llm_cache import default_cache_dir
    from fifa.pipelines.build import build
    from fifa.pipelines.buildinfo import MACHINE_PATH

    ann = annotated["root"] / "ann-with-cli-settings"  # beside the run: the image paths still resolve
    if not ann.exists():
        shutil.copytree(annotated["ann"], ann)
    run = json.loads((ann / "run.json").read_text())
    cache, data_root = str(default_cache_dir()), str(Path.home() / "faces")
    run["config"].setdefault("openai", {})["cache_dir"] = cache
    run["config"]["data_root"] = data_root
    (ann / "run.json").write_text(json.dumps(run))
    build([ann], tmp_path / "b")
    text = (tmp_path / "b" / "build.json").read_text()
    assert cache not in text and data_root not in text
    got = json.loads(text)["inputs"][0]["annotator"]["config"]
    assert got["openai"]["cache_dir"] == got["data_root"] == MACHINE_PATH
    assert got["diff"] == run["config"]["diff"]  # the other settings are kept
