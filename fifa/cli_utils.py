"""Shared CLI glue: user errors become a clear message and an exit code, never a traceback."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

import click

F = TypeVar("F", bound=Callable)

#: Exit codes shared by every fifa command.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, but nothing (or not everything required) succeeded
EXIT_USAGE = 2  # invalid input / user mistake


class UserError(Exception):
    """A mistake of the user (bad path, invalid file): reported without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


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


def handle_errors(func: F) -> F:
    """Decorator for click commands: turn UserError/FileNotFoundError into `error: ...` + exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except FileNotFoundError as e:
            click.echo(f"error: file not found: {e.filename or e}", err=True)
            sys.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
