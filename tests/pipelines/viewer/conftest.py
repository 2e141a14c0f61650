"""Viewer test set-up: real input folders (an annotation run from the real chain, a build, a
release) and a real headless Chromium (Debian's package, driven by the `playwright` package).

Without Chromium the browser tests FAIL with the install instruction: the viewer is a feature,
and a skipped test would not show that it was never checked.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

_here = str(Path(__file__).parent)
if _here not in sys.path:
    sys.path.insert(0, _here)

import viewer_data  # noqa: E402

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("the viewer tests need a headless Chromium: `apt-get install -y chromium` (Debian/Ubuntu; "
                "`.ci/run` does it), or point FIFA_CHROMIUM at a Chromium/Chrome binary; and the `playwright` "
                "Python package (`make install`). Playwright's own browser download is not needed.")


def find_chromium() -> str | None:
    """FIFA_CHROMIUM when set (and only it), else Debian's chromium or one on PATH."""
    env = os.environ.get("FIFA_CHROMIUM")
    cands = [env] if env else ["/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium"),
                               shutil.which("chromium-browser"), shutil.which("google-chrome")]
    for cand in cands:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.fail("Chromium not found: " + INSTALL_HINT, pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the `playwright` package is missing: " + INSTALL_HINT, pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, timeout=60_000)
        yield b
        b.close()


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
