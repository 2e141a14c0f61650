"""Fixtures of the annotator tests: forged pairs (real MediaPipe, real files) and helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def forged(tmp_path_factory) -> Path:
    """A small forged dataset (seed 3): manifest.parquet with truth, images, masks. The strong edit
    kinds only and no JPEG pairs: pipeline tests need fakes whose every edit is found."""
    from fifa.annotator.forge import STRONG, forge

    d = tmp_path_factory.mktemp("forged")
    return forge(d, n=16, seed=3, kinds=STRONG, jpeg_pair_fraction=0.0)


@pytest.fixture()
def forged_copy(forged, tmp_path) -> Path:
    """A private copy of the forged dataset (tests may damage it)."""
    dst = tmp_path / "data"
    shutil.copytree(forged.parent, dst)
    return dst / "manifest.parquet"


def annotate_cmd(*args: str) -> list[str]:
    return [str(BIN / "fifa-annotate"), *args]


def run_cli(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.setdefault("GLOG_minloglevel", "2")
    if env:
        e.update(env)
    return subprocess.run(annotate_cmd(*args), capture_output=True, text=True, env=e, timeout=timeout)


def read_rows(out: Path) -> list[dict]:
    from fifa.annotator.store import read_annotations

    return read_annotations(out).to_pylist()
