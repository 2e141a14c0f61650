"""`fifa-tree`: look at and export the Facial Image Concept Tree, and segment faces into its regions.

Commands here: ``show`` and ``export``. ``segment`` lives in ``fifa.concept_tree.segmentation.segment_cli``
and is added when that module imports; if one of its own imports fails, ``show``/``export``
keep working and ``segment`` reports the import error instead of breaking the whole command line.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fifa import __version__
from fifa.cli_utils import command, examples, make_app, run_app
from fifa.core.errors import EXIT_USAGE, UserError

from .tree import ConceptTree, load_tree
from .tree_nodes import Node, TreeError


def _tree() -> ConceptTree:
    try:
        return load_tree()
    except TreeError as e:
        raise UserError(f"the packaged concept tree is invalid: {e}", exit_code=1) from e


def _resolve(tree: ConceptTree, query: str) -> Node:
    try:
        return tree.get(query)
    except KeyError as e:
        raise UserError(str(e.args[0]) if e.args else f"unknown concept '{query}'", EXIT_USAGE) from None


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"fifa-tree {__version__} (FICT {_tree().version})")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Show the toolkit and tree versions and exit."
        ),
    ] = None,
) -> None:
    """The Facial Image Concept Tree (FICT): the hierarchy of face regions used to ground explanations."""


app = make_app(
    "The Facial Image Concept Tree (FICT): the hierarchy of face regions used to ground explanations.",
    epilog=examples(
        "fifa-tree show --depth 2",
        "fifa-tree export --format json --out fict.json",
        "fifa-tree segment photos/ --out regions_out",
    ),
    callback=_root,
)


@command(
    app,
    "fifa-tree show --depth 2",
    "fifa-tree show --root left_eye --descriptions --artifacts",
    "fifa-tree show --root 'bridge of the nose' --plain",
)
def show(
    depth: Annotated[
        int | None, typer.Option(min=0, help="Levels shown below the root (0: the root alone). Default: all.")
    ] = None,
    root_query: Annotated[
        str | None,
        typer.Option(
            "--root",
            metavar="ID",
            help="Show the subtree of this concept (id, name or synonym). Default: the whole tree.",
        ),
    ] = None,
    descriptions: Annotated[bool, typer.Option("--descriptions", help="Add each concept's description.")] = False,
    artifacts: Annotated[bool, typer.Option("--artifacts", help="Add each concept's typical forgery cues.")] = False,
    plain: Annotated[
        bool | None,
        typer.Option("--plain/--rich", help="Indented text (default when not writing to a terminal) or a rich tree."),
    ] = None,
) -> None:
    """Print the concept tree (or a subtree) with its leaf count."""
    tree = _tree()
    start = _resolve(tree, root_query) if root_query else tree.root
    n_leaves = len(tree.leaves(under=start.id))
    n_nodes = 1 + len(tree.descendants(start.id))
    header = f"{tree.name} v{tree.version}: {_plural(n_leaves, 'leaf', 'leaves')}, {_plural(n_nodes, 'node')}"
    if start is not tree.root:
        header += f" under '{start.id}'"
    if plain is None:
        plain = not sys.stdout.isatty()
    if plain:
        typer.echo(header)
        typer.echo(tree.render(root=start.id, depth=depth, with_descriptions=descriptions, with_artifacts=artifacts))
        return
    _print_rich(tree, start, header, depth, descriptions, artifacts)


def _print_rich(
    tree: ConceptTree, start: Node, header: str, depth: int | None, descriptions: bool, artifacts: bool
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    def label(n: Node) -> str:
        text = f"[bold]{n.id}[/bold]: {escape(n.name)}"
        if not n.is_leaf:
            text += f" [dim]({_plural(len(tree.leaves(n.id)), 'leaf', 'leaves')})[/dim]"
        if descriptions:
            text += f"\n[dim]{escape(n.description)}[/dim]"
        if artifacts:
            text += "\n[yellow]artifacts:[/yellow] " + escape("; ".join(n.artifacts))
        return text

    def add(branch: Tree, n: Node, level: int) -> None:
        if depth is not None and level >= depth:
            return
        for c in tree.children(n.id):
            add(branch.add(label(c)), c, level + 1)

    rtree = Tree(label(start))
    add(rtree, start, 0)
    console = Console()
    console.print(escape(header), style="bold")
    console.print(rtree)


class ExportFormat(str, Enum):
    json = "json"
    yaml = "yaml"


@command(app, "fifa-tree export --format json > fict.json", "fifa-tree export --format yaml --out fict.yaml")
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = ExportFormat.json,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write to this file instead of standard output.")
    ] = None,
) -> None:
    """Export the tree as {"version": ..., "nodes": [{"id", "name", "parent", ...}]}."""
    tree = _tree()
    text = tree.to_json() if fmt is ExportFormat.json else tree.to_yaml()
    if not text.endswith("\n"):
        text += "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.parent and not out.parent.exists():
        raise UserError(f"folder does not exist: {out.parent}")
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(tree)} nodes ({len(tree.leaves())} leaves) to {out}", err=True)


def _add_segment() -> None:
    try:
        from fifa.concept_tree.segmentation.segment_cli import SEGMENT_EXAMPLES, segment
    except ImportError as e:
        if e.name == "fifa.concept_tree.segmentation.segment_cli":
            return
        reason = str(e)

        @app.command(
            name="segment",
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
            add_help_option=False,
        )
        def _unavailable(ctx: typer.Context) -> None:
            """(unavailable: a dependency failed to import)"""
            raise UserError(f"'fifa-tree segment' is unavailable: {reason}", exit_code=1)

        return
    command(app, *SEGMENT_EXAMPLES, name="segment")(segment)


_add_segment()


def main(argv: list[str] | None = None) -> None:
    """Console entry point of ``fifa-tree``."""
    run_app(app, argv, prog_name="fifa-tree")


if __name__ == "__main__":
    main()
