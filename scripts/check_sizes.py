#!/usr/bin/env python
"""Product functions over 60 lines and modules over 400 lines (`make lint` runs it).

Product: the five stage folders and ``fifa/`` (``fifa.core``, the CLI helpers, the demo). A function's length
is from its ``def`` line to its last line (decorators not counted, nested functions counted in their parent
too); a module's is its number of lines. Every offender is printed; the check fails only on offenders that the
allow-list (``scripts/size_allowlist.txt``: today's, being split) does not name, so the list can only shrink.
Entries that no longer exceed their limit are printed too: delete them.

    python scripts/check_sizes.py                 # exit 1 on a new offender
    python scripts/check_sizes.py --write-allowlist   # rewrite the list from the current offenders
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("fifa", "concept_tree", "annotator", "pipelines", "benchmarks", "modeling")
MAX_FUNCTION = 60
MAX_MODULE = 400
ALLOWLIST = Path(__file__).with_name("size_allowlist.txt")


@dataclass(frozen=True)
class Offender:
    kind: str  # "function" or "module"
    name: str  # "annotator/forge.py:forge", "annotator/forge.py:Forger.run", "pipelines/build.py"
    lines: int

    def __str__(self) -> str:
        limit = MAX_FUNCTION if self.kind == "function" else MAX_MODULE
        return f"{self.kind:8} {self.name}  {self.lines} lines (limit {limit})"


def _functions(tree: ast.Module) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function and method of a module, nested ones included."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                out.append((name, (child.end_lineno or child.lineno) - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def offenders(root: Path = ROOT, folders: tuple[str, ...] = PRODUCT) -> list[Offender]:
    """Every function over :data:`MAX_FUNCTION` lines and module over :data:`MAX_MODULE` lines under ``folders``."""
    found: list[Offender] = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            text = path.read_text("utf-8")
            n = len(text.splitlines())
            if n > MAX_MODULE:
                found.append(Offender("module", rel, n))
            for name, length in _functions(ast.parse(text, rel)):
                if length > MAX_FUNCTION:
                    found.append(Offender("function", f"{rel}:{name}", length))
    return found


def read_allowlist(path: Path = ALLOWLIST) -> set[str]:
    """The names of the allow-list (``kind name`` per line; ``#`` comments, blank lines and a trailing size
    ignored)."""
    if not path.is_file():
        return set()
    names = set()
    for line in path.read_text("utf-8").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2:
            names.add(f"{parts[0]} {parts[1]}")
    return names


def check(found: list[Offender], allowed: set[str]) -> tuple[list[Offender], list[str]]:
    """(offenders the list does not name, list entries that are no longer offenders)."""
    keys = {f"{o.kind} {o.name}" for o in found}
    new = [o for o in found if f"{o.kind} {o.name}" not in allowed]
    return new, sorted(allowed - keys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    ap.add_argument("--write-allowlist", action="store_true", help="rewrite the allow-list from today's offenders")
    a = ap.parse_args(argv)
    found = offenders(a.root)
    if a.write_allowlist:
        head = "# scripts/check_sizes.py: today's oversized product functions and modules, to be split (then deleted)\n"
        a.allowlist.write_text(head + "".join(f"{o.kind} {o.name}  # {o.lines} lines\n" for o in found), "utf-8")
        print(f"wrote {len(found)} entries to {a.allowlist}")
        return 0
    new, stale = check(found, read_allowlist(a.allowlist))
    n_fun = sum(o.kind == "function" for o in found)
    print(f"sizes: {n_fun} functions over {MAX_FUNCTION} lines, {len(found) - n_fun} modules over {MAX_MODULE} lines")
    for o in found:
        print(("NEW      " if o in new else "allowed  ") + str(o))
    for s in stale:
        print(f"no longer over the limit (delete it from {a.allowlist.name}): {s}")
    if new:
        print(f"{len(new)} new offender(s): split them (or, for a reason, add them to {a.allowlist})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
