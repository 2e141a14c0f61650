"""`fifa-tree`: look at and export the Facial Image Concept Tree.

Commands here: ``show`` and ``export``. The ``segment`` command lives in
``fifa.concept_tree.segment_cli`` and is added to the group when that module is importable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fifa import __version__
from fifa.cli_utils import EXIT_USAGE, UserError, handle_errors

from .tree import ConceptTree, Node, TreeError, load_tree


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


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"fifa-tree {__version__} (FICT {_tree().version})")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Example:\n\n  fifa-tree show --depth 2\n\n  fifa-tree export --format json --out fict.json")  # fmt: skip
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the toolkit and tree versions and exit.")  # fmt: skip
def cli() -> None:
    """The Facial Image Concept Tree (FICT): the hierarchy of face regions used to ground explanations."""


@cli.command(epilog="Examples:\n\n  fifa-tree show --depth 2\n\n"
                    "  fifa-tree show --root left_eye --descriptions --artifacts\n\n"
                    "  fifa-tree show --root 'bridge of the nose' --plain")  # fmt: skip
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Levels shown below the root (0: the root alone). Default: all.")  # fmt: skip
@click.option("--root", "root_query", default=None, metavar="ID",
              help="Show the subtree of this concept (id, name or synonym). Default: the whole tree.")  # fmt: skip
@click.option("--descriptions", is_flag=True, help="Add each concept's description.")
@click.option("--artifacts", is_flag=True, help="Add each concept's typical forgery cues.")
@click.option("--plain/--rich", "plain", default=None,
              help="Indented text (default when not writing to a terminal) or a rich tree.")  # fmt: skip
@handle_errors
def show(depth: int | None, root_query: str | None, descriptions: bool, artifacts: bool,
         plain: bool | None) -> None:  # fmt: skip
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
        click.echo(header)
        click.echo(tree.render(root=start.id, depth=depth, with_descriptions=descriptions,
                               with_artifacts=artifacts))  # fmt: skip
        return
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


@cli.command(epilog="Examples:\n\n  fifa-tree export --format json > fict.json\n\n"
                    "  fifa-tree export --format yaml --out fict.yaml")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), default="json", show_default=True,
              help="Output format.")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")  # fmt: skip
@handle_errors
def export(fmt: str, out: Path | None) -> None:
    """Export the tree as {"version": ..., "nodes": [{"id", "name", "parent", ...}]}."""
    tree = _tree()
    text = tree.to_json() if fmt == "json" else tree.to_yaml()
    if not text.endswith("\n"):
        text += "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    if out.parent and not out.parent.exists():
        raise UserError(f"folder does not exist: {out.parent}")
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(tree)} nodes ({len(tree.leaves())} leaves) to {out}", err=True)


def _add_segment() -> None:
    """Add ``segment`` (written in ``segment_cli``) when present.

    If the module exists but one of its own imports fails, ``show``/``export`` keep working and
    ``segment`` reports the import error instead of breaking the whole command line.
    """
    try:
        from fifa.concept_tree.segment_cli import segment
    except ImportError as e:
        if e.name == "fifa.concept_tree.segment_cli":
            return
        reason = str(e)

        @cli.command(name="segment", context_settings={"ignore_unknown_options": True},
                     add_help_option=False)  # fmt: skip
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        @handle_errors
        def _unavailable(args: tuple[str, ...]) -> None:
            """(unavailable: a dependency failed to import)"""
            raise UserError(f"'fifa-tree segment' is unavailable: {reason}", exit_code=1)

        return
    cli.add_command(segment)


_add_segment()


def main() -> None:
    """Console entry point of ``fifa-tree``."""
    cli()


if __name__ == "__main__":
    main()
