"""Where a build's images are: the one rule every reader of a build uses (trainer, predictor, viewer, exports).

``fifa-data build`` stores ``image.path`` relative to an image root (the common folder of the annotated
images, or ``--image-root``) and records that root in ``BUILD/build.json`` as a path relative to the
build folder, so a build and its images can move together. A folder without ``build.json`` (a bench or
instruction files written by other tools) keeps paths relative to itself.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path


def build_image_root(build_dir: str | os.PathLike) -> Path:
    """The folder relative ``image.path`` values of the build in ``build_dir`` are relative to."""
    b = Path(build_dir)
    meta = b / "build.json"
    if meta.is_file():
        root = json.loads(meta.read_text("utf-8")).get("image_root")
        if root:
            return (b / root).resolve()
    return b.resolve()


def resolve_image(build_dir: str | os.PathLike, image_path: str) -> Path:
    """Absolute path of a build row's ``image.path``."""
    p = Path(image_path)
    return p if p.is_absolute() else build_image_root(build_dir) / p


MACHINE_PATH = "<path of the building machine: left out>"
_ABS_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")


def without_machine_paths(obj):
    """``obj`` with every absolute path string replaced by :data:`MACHINE_PATH`.

    The annotator settings that ``build.json`` and ``release.json`` carry come from the annotators'
    ``run.json``, which record settings as given: ``fifa-annotate run`` stores the absolute response-cache
    folder (``openai.cache_dir``, under the user's home), ``--data-root`` may be absolute. Builds and releases
    never hold a path of the building machine (DESIGN.md), so those values are left out.
    """
    if isinstance(obj, dict):
        return {k: without_machine_paths(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [without_machine_paths(v) for v in obj]
    if isinstance(obj, str) and _ABS_PATH.match(obj):
        return MACHINE_PATH
    return obj
