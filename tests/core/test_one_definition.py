"""Each shared idea is defined once (issue #21): the grounded-mark grammar in fifa/core/marks.py, the task list in
fifa/core/tasks.py. Scans the product source (not tests/; not modeling/ yet: its owner moves it separately)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("fifa", "concept_tree", "annotator", "pipelines", "benchmarks", "scripts")
TASK_IDS = {"det", "cls", "toe", "age", "loc", "rq_name", "rq_mask", "rq_box", "fc"}
#: texts that hold each form of grounding markup, and the part of each a markup regex must cover
SAMPLES = tuple(
    (pre + text, part)
    for pre in ("", "see ")
    for text, part in (
        ("[left eye](left_eye) here", "]("),
        ("<p>left eye</p> [SEG] here", "<p>"),
        ("<p>left eye</p> [SEG] here", "[SEG]"),
    )
)
#: the same texts without markup: a markup regex finds nothing in them
PLAIN = ("see left eye here", "left eye here", "a/b c/d e", "see [x] y. (z)")


def _sources():
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text("utf-8"), str(path))


def _not_patterns(tree: ast.AST) -> set[int]:
    """Docstrings and the literal pieces of f-strings (text being written, not a pattern)."""
    out = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    return out | {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}


def is_markup_regex(s: str) -> bool:
    """Whether ``s``, read as a regex, matches grounding markup: a match that covers ``](``, ``<p>`` or
    ``[SEG]`` of a marked text (a plain word or a character class never does), and nothing in plain text."""
    try:
        rx = re.compile(s, re.IGNORECASE)
    except re.error:
        return False
    if any(m.group(0) for text in PLAIN for m in rx.finditer(text)):
        return False
    for text, part in SAMPLES:
        at = text.index(part)
        for m in rx.finditer(text):
            if m.start() <= at and at + len(part) <= m.end():
                return True
    return False


def markup_regexes() -> list[str]:
    out = []
    for rel, tree in _sources():
        if rel == "fifa/core/marks.py":
            continue
        docs = _not_patterns(tree)
        for n in ast.walk(tree):
            text = n.value if isinstance(n, ast.Constant) and id(n) not in docs else None
            if isinstance(text, str) and len(text) < 300 and is_markup_regex(text):
                out.append(f"{rel}:{n.lineno}: {text!r}")
    return out


def task_lists() -> list[str]:
    """Tuple, list, set or dict literals that name three task ids or more."""
    out = []
    for rel, tree in _sources():
        if rel == "fifa/core/tasks.py":
            continue
        for n in ast.walk(tree):
            elts = (
                n.keys if isinstance(n, ast.Dict) else n.elts if isinstance(n, (ast.Tuple, ast.List, ast.Set)) else []
            )
            ids = [e.value for e in elts if isinstance(e, ast.Constant) and e.value in TASK_IDS]
            if len(ids) >= 3:
                out.append(f"{rel}:{n.lineno}: {ids}")
    return out


def test_one_mark_grammar():
    assert markup_regexes() == []


def test_one_task_list():
    assert task_lists() == []


def test_the_scanners_see_what_they_look_for():
    for rx in (
        r"\[([^\[\]\n]+?)\]\(([a-z][a-z0-9_]*)\)",
        r"</?p>|\[SEG\]",
        r"\s*\[SEG\]",
        r"^\[(.*)\]\(",
        r"<p>(?P<g>.*?)</p>\s*\[SEG\]",
    ):
        assert is_markup_regex(rx), rx
    for s in (
        "[SEG]",
        "<image>",
        "the left eye",
        r"\w+|[^\w\s]",
        "${1}",
        r"\(([a-z0-9_]+)\)$",
        "](",
        "[x](y)",
        ".*",
        r"[^.!?]+[.!?]",
    ):
        assert not is_markup_regex(s), s
    tree = ast.parse('A = ("det", "loc", "fc")\nB = {"toe": 1, "age": 2, "cls": 3}\nC = ("det", "loc")\n')
    found = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, (ast.Tuple, ast.Dict))
        and sum(
            isinstance(e, ast.Constant) and e.value in TASK_IDS for e in (n.keys if isinstance(n, ast.Dict) else n.elts)
        )
        >= 3
    ]
    assert found == [1, 2]
