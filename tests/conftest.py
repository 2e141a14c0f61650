"""Shared fixtures: the public-domain sample faces shipped inside scikit-image and matplotlib."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _grace_hopper_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper_path() -> Path:
    return _grace_hopper_path()


@pytest.fixture(scope="session")
def grace_hopper_rgb(grace_hopper_path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(grace_hopper_path).convert("RGB"))


@pytest.fixture(scope="session")
def sample_faces_dir(tmp_path_factory, astronaut_rgb, grace_hopper_rgb) -> Path:
    """A folder with astronaut.png and grace_hopper.jpg."""
    from PIL import Image

    d = tmp_path_factory.mktemp("faces")
    Image.fromarray(astronaut_rgb).save(d / "astronaut.png")
    Image.fromarray(grace_hopper_rgb).save(d / "grace_hopper.jpg", quality=95)
    return d


@pytest.fixture(scope="session")
def browser():
    """The process's one headless Chromium (tests/testkit/browser.py: one sync Playwright per thread)."""
    from testkit.browser import launch

    with launch(lambda msg: pytest.fail(msg, pytrace=False)) as b:
        yield b


@pytest.fixture(autouse=True)
def _sigint_kept():
    """A test that runs a worker's initializer in this process (a pool worker ignores Ctrl-C, as it should) must
    not leave the test process ignoring SIGINT: every command a later test starts would inherit that, and
    Python installs no KeyboardInterrupt handler in a process that starts with SIGINT ignored."""
    import signal

    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)
