"""Imports only go down the chain core <- concept_tree <- annotator <- pipelines <- benchmarks <- modeling.

Every ``import``/``from`` statement of every module (top level or inside a function, static or
through ``importlib.import_module("...")``) is checked against its stage's rank.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ["core", "concept_tree", "annotator", "pipelines", "benchmarks", "modeling"]
#: folder of each stage (the core layer lives in fifa/core; the stages are top-level folders)
FOLDER = {"core": "fifa/core"}


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append((node.lineno, node.args[0].value))
    return out


def _stage(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "fifa" and parts[1] in CHAIN:
        return CHAIN.index(parts[1])
    return None


def upward_imports() -> list[str]:
    bad = []
    for rank, folder in enumerate(CHAIN):
        for path in sorted((ROOT / FOLDER.get(folder, folder)).rglob("*.py")):
            for line, mod in _imported(ast.parse(path.read_text("utf-8"), str(path))):
                target = _stage(mod)
                if target is not None and target > rank:
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    return bad


def test_no_stage_imports_a_later_stage():
    assert upward_imports() == []


def test_checker_sees_function_level_and_importlib_imports():
    src = "def f():\n    from fifa.pipelines.cli import x\n    importlib.import_module('fifa.modeling.a')\n"
    found = [m for _, m in _imported(ast.parse(src))]
    assert sorted(found) == ["fifa.modeling.a", "fifa.pipelines.cli"]
    assert _stage("fifa.pipelines.cli") == 3 and _stage("fifa.core.rle") == 0 and _stage("fifa.cli_utils") is None
