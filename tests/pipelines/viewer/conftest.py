"""Viewer test set-up: real input folders (an annotation run from the real chain, a build, a
release). The real headless Chromium is the session's `browser` fixture (tests/conftest.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_here = str(Path(__file__).parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

import viewer_data  # noqa: E402


@pytest.fixture(scope="session")
def face_images(astronaut_rgb, grace_hopper_rgb):
    return viewer_data.faces(astronaut_rgb, grace_hopper_rgb)


@pytest.fixture(scope="session")
def ann_run(tmp_path_factory) -> Path:
    """A real annotation run: forged pairs annotated offline by the real chain."""
    from fifa.annotator.forge import forge
    from fifa.annotator.run import AnnotateConfig, run_annotation

    d = tmp_path_factory.mktemp("viewer_ann")
    manifest = forge(d / "forged", n=5, seed=1)
    run_annotation(manifest, d / "run", AnnotateConfig(progress=False, workers=1))
    return d / "run"


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory, face_images) -> Path:
    return viewer_data.write_build(tmp_path_factory.mktemp("viewer_build") / "build", face_images)


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory, face_images) -> Path:
    return viewer_data.write_release(tmp_path_factory.mktemp("viewer_release") / "release", face_images)


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory, ann_run) -> Path:
    return viewer_data.hostile_annotations(ann_run, tmp_path_factory.mktemp("viewer_hostile") / "run")
