"""The package data folders are declared so that setuptools installs them without warnings, and the wheel holds
every data file the code reads (the tree, atlas, prompts, templates, method/source tables, viewer assets, configs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("fifa", "concept_tree", "annotator", "pipelines", "benchmarks", "modeling")
DATA = {  # folder in the repository -> where the wheel must hold its files
    "concept_tree/data": "fifa/concept_tree/data",
    "annotator/prompts": "fifa/annotator/prompts",
    "benchmarks/prompts": "fifa/benchmarks/prompts",
    "pipelines/data": "fifa/pipelines/data",
    "pipelines/viewer/static": "fifa/pipelines/viewer/static",
    "pipelines/templates": "fifa/pipelines/templates",
    "modeling/configs": "fifa/modeling/configs",
}


def test_wheel_builds_without_setuptools_warnings_and_holds_the_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for d in PACKAGE_DIRS:
        shutil.copytree(ROOT / d, src / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(tmp_path / "wheel"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "absent from the `packages` configuration" not in out and "as data is deprecated" not in out
    names = set(zipfile.ZipFile(next((tmp_path / "wheel").glob("*.whl"))).namelist())
    for folder, dest in DATA.items():
        files = [p.name for p in (ROOT / folder).iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")]
        assert files and all(f"{dest}/{f}" in names for f in files), (folder, sorted(files))
