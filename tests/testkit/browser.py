"""One headless Chromium per test process (Debian's package, driven by the `playwright` package).

Playwright's sync API allows one active instance per thread (a second `sync_playwright()` in a thread
where one is open raises "using Playwright Sync API inside the asyncio loop"), so the `browser`
fixture is defined once, in tests/conftest.py, for every suite that needs a page (viewer, server).
Without Chromium those tests FAIL with the install instruction: a skipped test would not show that the
feature was never checked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "the browser tests need a headless Chromium: `apt-get install -y chromium` (Debian/Ubuntu; "
    "`make test` and `.ci/run` do it through scripts/install_system_deps.sh), or point FIFA_CHROMIUM "
    "at a Chromium/Chrome binary; and the `playwright` Python package (`make install`). "
    "Playwright's own browser download is not needed."
)


def find_chromium() -> str | None:
    """FIFA_CHROMIUM when set (and only it), else Debian's chromium or one on PATH."""
    env = os.environ.get("FIFA_CHROMIUM")
    cands = (
        [env]
        if env
        else [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
            shutil.which("google-chrome"),
        ]
    )
    for cand in cands:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def launch(fail):
    """A context manager yielding a launched browser; ``fail(message)`` reports what is missing."""
    import contextlib

    @contextlib.contextmanager
    def cm():
        exe = find_chromium()
        if exe is None:
            fail("Chromium not found: " + INSTALL_HINT)
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            fail("the `playwright` package is missing: " + INSTALL_HINT)
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, timeout=60_000)
            try:
                yield b
            finally:
                b.close()

    return cm()
