"""The landmark backends: one registry, one protocol, and every backend reachable through them."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image

from fifa.concept_tree.segmentation import backends as be
from fifa.concept_tree.segmentation.dlib_backend import Dlib68Landmarks
from fifa.concept_tree.segmentation.face_alignment_backend import FaceAlignmentLandmarks
from fifa.concept_tree.segmentation.landmarks import BackendUnavailable
from fifa.concept_tree.segmentation.segment import MediaPipeBackend, SegmentConfig, Segmenter

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("fifa", "concept_tree", "annotator", "pipelines", "benchmarks", "modeling", "scripts")


def _choices(app: typer.Typer, command: str, option: str) -> tuple[str, ...]:
    """The choices of ``option`` as the real command line offers them (click's view of the typer app)."""
    group = typer.main.get_command(app)
    (param,) = [p for p in group.commands[command].params if option in p.opts]
    return tuple(getattr(c, "value", c) for c in param.type_descriptor.choices)


def test_command_line_choices_are_the_registry():
    from fifa.annotator.cli import app as annotate_app
    from fifa.concept_tree.cli import app as tree_app

    image = tuple(name for name, spec in be.REGISTRY.items() if spec.source == "image")
    assert be.BACKENDS == image == ("mediapipe", "dlib68", "face_alignment")
    assert tuple(c.value for c in be.BackendChoice) == be.BACKENDS
    assert _choices(tree_app, "segment", "--backend") == be.BACKENDS
    assert _choices(annotate_app, "run", "--segmenter") == be.BACKENDS
    assert _choices(annotate_app, "retry", "--segmenter") == be.BACKENDS
    assert set(be.REGISTRY) == {"mediapipe", "ibug68", "dlib68", "face_alignment"}


def _names(node: ast.AST) -> set[str]:
    """String constants a module-level definition lists: the items of its collections, a class's
    assigned constants (an Enum's members)."""
    if isinstance(node, ast.ClassDef):
        return {n.value.value for n in node.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)}
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.Tuple, ast.List, ast.Set)):
            out |= {e.value for e in n.elts if isinstance(e, ast.Constant)}
        elif isinstance(n, ast.Dict):
            out |= {k.value for k in n.keys if isinstance(k, ast.Constant)}
    return out


def test_the_registry_is_the_only_list_of_backends():
    """No module defines a second list of backends (a constant, or an Enum of them, as the segment
    and annotate command lines each did): two backend names in one module-level definition."""
    found = []
    for folder in SOURCE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            body = ast.parse(path.read_text(encoding="utf-8")).body
            found += [
                f"{path.relative_to(ROOT)}:{n.lineno}"
                for n in body
                if isinstance(n, (ast.Assign, ast.AnnAssign, ast.ClassDef)) and len(_names(n) & set(be.BACKENDS)) >= 2
            ]
    assert found == [], f"backends listed outside the REGISTRY of concept_tree/segmentation/backends.py: {found}"


@pytest.mark.parametrize("cls", [MediaPipeBackend, Dlib68Landmarks, FaceAlignmentLandmarks])
def test_every_image_backend_provides_the_protocol(cls):
    for name, member in inspect.getmembers(be.LandmarkBackend, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = list(inspect.signature(member).parameters)
        got = list(inspect.signature(getattr(cls, name)).parameters)
        assert got[: len(wanted)] == wanted, (cls.__name__, name, got)


def test_registry_loads_and_checks():
    with Segmenter(SegmentConfig(backend="dlib68", outside_face=False)) as seg:
        assert isinstance(seg._models, Dlib68Landmarks)
    with pytest.raises(
        ValueError, match="unknown segmentation backend 'dlib5'; choose from mediapipe, dlib68, face_alignment"
    ):
        be.check_backend("dlib5")
    with pytest.raises(ValueError, match="68 given points.*regions_from_ibug68"):
        Segmenter(SegmentConfig(backend="ibug68"))
    with pytest.raises(ValueError, match="for the mediapipe backend only"):
        Segmenter(SegmentConfig(backend="dlib68", pose=True))


def test_face_alignment_without_its_package_raises_backend_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_alignment", None)  # importing it fails, as when not installed
    with pytest.raises(BackendUnavailable, match=r"pip install 'fifa-toolkit\[facealign\]'"):
        Segmenter(SegmentConfig(backend="face_alignment"))


def test_fifa_tree_segment_face_alignment_missing_is_a_user_error(tmp_path):
    site = tmp_path / "hide"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['face_alignment'] = None\n")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "face.png")
    env = dict(os.environ, PYTHONPATH=str(site))
    p = subprocess.run([sys.executable, "-m", "fifa.concept_tree.cli", "segment", str(tmp_path / "face.png"),
                        "--out", str(tmp_path / "out"), "--backend", "face_alignment", "--quiet"],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert p.returncode == 2, p.stderr[-2000:]
    assert "pip install 'fifa-toolkit[facealign]'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "out" / "regions.parquet").exists()
