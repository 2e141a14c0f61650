"""The project's exceptions: one base, :class:`FifaError`, and the exit codes of the ``fifa-*`` commands.

Data shapes: an exception class with an ``exit_code`` (an ``int``, one of the ``EXIT_*`` codes below):
what a ``fifa-*`` command exits with when it stops on that error. ``fifa.cli_utils.run_app`` maps every
:class:`FifaError` to ``error: <message>`` on stderr and its ``exit_code`` (no traceback), in one place.

* :class:`FifaError`: the base of every exception class of the project (a stage's own errors derive from
  it, most also from ``ValueError`` or ``RuntimeError`` so that existing ``except`` clauses still match);
  ``exit_code`` 1: the command ran but failed;
* :class:`UserError`: a mistake of the user (bad path, invalid file), ``exit_code`` 2 unless given;
  a stage error that is always the user's mistake sets ``exit_code = EXIT_USAGE`` itself.
"""

from __future__ import annotations

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "FifaError", "UserError"]

#: Exit codes shared by every fifa command.
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran, but nothing (or not everything required) succeeded
EXIT_USAGE = 2  # invalid input / user mistake
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class FifaError(Exception):
    """Base of every fifa-toolkit exception; ``exit_code`` is what a command exits with on it."""

    exit_code: int = EXIT_FAILED


class UserError(FifaError):
    """A mistake of the user (bad path, invalid file): reported without a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
