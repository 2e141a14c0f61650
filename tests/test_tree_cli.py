"""`fifa-tree show` and `fifa-tree export`, run as the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

FIFA_TREE = Path(sys.executable).parent / "fifa-tree"


def run(*args: str) -> subprocess.CompletedProcess:
    if not FIFA_TREE.exists():
        pytest.fail(f"console script not installed: {FIFA_TREE}")
    return subprocess.run([str(FIFA_TREE), *args], capture_output=True, text=True, timeout=120)


def _leaf_count(nodes: list[dict]) -> int:
    parents = {n["parent"] for n in nodes}
    return sum(1 for n in nodes if n["id"] not in parents)


def test_export_json_contract():
    r = run("export", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["version"] == "2.0.0"
    nodes = data["nodes"]
    assert _leaf_count(nodes) == 114
    assert sum(1 for n in nodes if not n["children"]) == 114
    for n in nodes:
        assert {"id", "name", "parent", "description", "artifacts"} <= set(n)
    by_id = {n["id"]: n for n in nodes}
    assert by_id["left_iris"]["parent"] == "left_eyeball"
    assert by_id["left_iris"]["mask"]["source"] == "iris"
    assert by_id["face_image"]["parent"] is None


def test_export_yaml_to_file(tmp_path):
    out = tmp_path / "fict.yaml"
    r = run("export", "--format", "yaml", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert str(data["version"]) == "2.0.0"
    assert _leaf_count(data["nodes"]) == 114


def test_export_to_missing_folder_is_a_usage_error(tmp_path):
    r = run("export", "--out", str(tmp_path / "nope" / "fict.json"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "folder does not exist" in r.stderr


def test_show_depth_2():
    r = run("show", "--depth", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "114 leaves" in lines[0]
    body = lines[1:]
    assert body[0] == "face_image: Face image"
    assert "  face: Face" in body and "    eyes: Eyes" in body and "    left_ear: Left ear" in body
    assert not any(line.startswith("      ") for line in body)  # nothing deeper than depth 2
    assert not any("left_eye:" in line for line in body)  # left_eye is at depth 3


def test_show_subtree_by_synonym_with_details():
    r = run("show", "--root", "colored part of the left eye", "--descriptions", "--artifacts")
    assert r.returncode == 0, r.stderr
    assert "1 leaf" in r.stdout and "under 'left_iris'" in r.stdout
    assert "left_iris: Left iris" in r.stdout
    assert "catch-lights" in r.stdout and "coloured ring" in r.stdout


def test_show_rich_tree():
    r = run("show", "--rich", "--root", "left_eyeball")
    assert r.returncode == 0, r.stderr
    assert "left_pupil" in r.stdout and "└──" in r.stdout


@pytest.mark.parametrize("args", [("show", "--root", "left_irsi"), ("show", "--root", "not a region at all")])
def test_unknown_id_is_exit_2_without_traceback(args):
    r = run(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    assert "unknown concept" in r.stderr
    if args[-1] == "left_irsi":
        assert "left_iris" in r.stderr  # suggestion


def test_help_has_examples_and_version():
    for cmd in ((), ("show",), ("export",)):
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "Example" in r.stdout, cmd
    r = run("--version")
    assert r.returncode == 0 and "FICT 2.0.0" in r.stdout
