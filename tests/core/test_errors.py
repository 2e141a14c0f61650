"""fifa.core.errors: every exception class of the project derives from FifaError, and the CLI glue maps a
FifaError to its exit code in one place (the codes themselves unchanged: 1 failed, 2 user mistake)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from fifa.cli_utils import make_app, run_app
from fifa.core.errors import EXIT_FAILED, EXIT_USAGE, FifaError, UserError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "fifa": "fifa",
    "concept_tree": "fifa.concept_tree",
    "annotator": "fifa.annotator",
    "pipelines": "fifa.pipelines",
    "benchmarks": "fifa.benchmarks",
    "modeling": "fifa.modeling",
}
#: modeling/ belongs to another issue in flight (only its import lines move in this one): a control-flow
#: exception of the example builder, caught where it is raised.
NOT_YET: set[str] = set()


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    name = ".".join([PACKAGES[parts[0]], *parts[1:]])
    return name.removesuffix(".__init__")


def _class_defs() -> list[tuple[str, str]]:
    """(module, class name) of every top-level class of the package's source."""
    out = []
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"))
            out += [(_module(path), node.name) for node in tree.body if isinstance(node, ast.ClassDef) and node.bases]
    return out


def _exception_classes() -> list[type]:
    found = []
    for module, name in _class_defs():
        cls = getattr(importlib.import_module(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return found


def test_every_exception_class_derives_from_fifa_error():
    classes = _exception_classes()
    assert len(classes) >= 30, [c.__name__ for c in classes]
    stray = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, FifaError)]
    assert sorted(set(stray) - NOT_YET) == []


def test_stage_errors_keep_their_builtin_bases_and_user_mistakes_exit_2():
    from fifa.benchmarks.submission import SubmissionError
    from fifa.pipelines.build import BuildError
    from fifa.pipelines.review import ReviewError

    assert issubclass(BuildError, ValueError) and BuildError.exit_code == EXIT_USAGE
    assert issubclass(ReviewError, UserError) and issubclass(SubmissionError, ValueError)
    assert FifaError.exit_code == EXIT_FAILED and UserError("x").exit_code == EXIT_USAGE
    assert UserError("x", exit_code=EXIT_FAILED).exit_code == EXIT_FAILED


class _Broken(FifaError):
    exit_code = 3


@pytest.mark.parametrize(
    "exc, code",
    [
        (UserError("bad --out"), EXIT_USAGE),
        (FifaError("nothing done"), EXIT_FAILED),
        (_Broken("odd"), 3),
        (UserError("soft", exit_code=EXIT_FAILED), EXIT_FAILED),
    ],
)
def test_run_app_maps_a_fifa_error_to_its_exit_code_without_a_traceback(exc, code, capsys):
    app = make_app("test app")

    @app.command()
    def go() -> None:
        raise exc

    with pytest.raises(SystemExit) as e:
        run_app(app, ["go"])
    err = capsys.readouterr().err
    assert e.value.code == code and err == f"error: {exc}\n"


def test_a_bug_still_raises():
    app = make_app("test app")

    @app.command()
    def go() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_app(app, ["go"])
