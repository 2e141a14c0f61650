"""Shared CLI glue for the four `fifa-*` commands (typer over the typed library API).

One style and one error handler everywhere:

* ``make_app`` builds a typer app with ``-h/--help``, no shell-completion noise and no rich
  tracebacks (a user never sees a traceback for their own mistake);
* ``run_app`` runs it: a :class:`~fifa.core.errors.FifaError` prints ``error: ...`` and exits with its
  ``exit_code`` (2 for a :class:`~fifa.core.errors.UserError`), a missing file exits 2, usage errors exit 2
  (click's own message), Ctrl-C exits 130, a command's ``sys.exit`` passes through. Unexpected exceptions
  still raise: they are bugs and deserve a traceback.
* ``examples`` formats the "Example:" block every command shows under ``--help``.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import click
import typer

from fifa.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, FifaError

try:  # typer >= 0.22 vendors click: its exceptions are not the click package's
    from typer._click import exceptions as _tclick
except ImportError:  # pragma: no cover - older typer runs on the click package itself
    _tclick = click.exceptions

_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort, KeyboardInterrupt)
_USAGE = (click.ClickException, _tclick.ClickException)

F = TypeVar("F", bound=Callable)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def setup_logging(verbose: bool = False) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=_stderr_console())],
        force=True,
    )


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def examples(*lines: str) -> str:
    """An ``--help`` epilog listing example command lines, one per line, as written."""
    body = "\n".join(f"  {line}" for line in lines)
    return f"\b\nExample{'s' if len(lines) > 1 else ''}:\n{body}"  # \b: click keeps the lines as written


def make_app(help: str, *, epilog: str | None = None, callback: Callable | None = None) -> typer.Typer:
    """A typer app in the project's style (see the module docstring)."""
    return typer.Typer(
        help=help,
        epilog=epilog,
        callback=callback or _no_options,  # a group even with one command: `fifa-data forge ...`
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain click formatting: docstrings and examples print as written
        context_settings=CONTEXT_SETTINGS,
    )


def _no_options() -> None:
    """(group callback without options)"""


def command(app: typer.Typer, *example_lines: str, name: str | None = None, **kwargs) -> Callable[[F], F]:
    """``@app.command`` with an example epilog (every command shows one under ``--help``)."""
    return app.command(
        name=name,
        epilog=examples(*example_lines) if example_lines else None,
        context_settings=CONTEXT_SETTINGS,
        **kwargs,
    )


def run_app(
    app: typer.Typer | click.Command, argv: Sequence[str] | None = None, prog_name: str | None = None
) -> NoReturn:
    """Run a command line and exit with a meaningful code (see the module docstring)."""
    cmd = typer.main.get_command(app) if isinstance(app, typer.Typer) else app
    try:
        rv = cmd.main(args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=False)
    except _EXIT as e:
        sys.exit(e.exit_code)
    except _USAGE as e:  # usage errors: click's own message, exit 2
        e.show()
        sys.exit(e.exit_code)
    except _ABORT:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except FifaError as e:  # the one place a project error becomes its exit code
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except FileNotFoundError as e:
        click.echo(f"error: file not found: {e.filename or e}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as e:
        code = _os_error_exit(e)
        if code is None:
            raise
        sys.exit(code)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


def _os_error_exit(e: OSError) -> int | None:
    """A full disk or an unwritable place: a clear message and an exit code, not a traceback."""
    where = f" ({e.filename})" if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        click.echo(
            f"error: no space left on the device{where}. Work already written is intact: free some "
            "space and run the same command again to continue.",
            err=True,
        )
        return EXIT_FAILED
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        click.echo(f"error: {e.strerror}{where}", err=True)
        return EXIT_USAGE
    return None
