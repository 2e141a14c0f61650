"""Typer options generated from config dataclasses: each default (and type) written once, in the config.

Data shapes:

* :class:`FieldOption`: one command-line option bound to a field of a (possibly nested) config dataclass
  by its dotted path (``"diff.noise_floor"``: the ``noise_floor`` field of the config's ``diff`` field);
  ``help``, the option's flags and typer's extra keywords are the CLI's own;
* :class:`CliOption`: an option that is no config field (``--verbose``, ``--api-key-file``): the command
  reads it itself, its default written here;
* :func:`option_parameters`: ``inspect.Parameter``\\ s for a command's ``__signature__`` (typer reads it):
  a field option's default and annotation are the field's, read from the dataclass at import time;
* :func:`config_from`: the config built from a command's parsed options (``kw``), the other fields left at
  their defaults.

A field typed ``Literal["a", "b"]`` becomes a choice (an ``Enum`` made from the literal); ``choices`` names
an existing ``Enum`` instead (a registry's). ``invert`` makes a ``--no-x`` flag of a field ``x`` that
defaults to true. ``to_config`` converts the parsed value (e.g. a ``Path`` to the ``str`` a config keeps).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from functools import cache
from typing import Annotated, Any

import typer

__all__ = ["CliOption", "FieldOption", "config_from", "field_default", "option_parameters"]


@dataclasses.dataclass(frozen=True)
class FieldOption:
    """A CLI option whose default and type are those of the config field at ``path``."""

    name: str  # the command's parameter name (typer: ``--name-with-dashes``)
    path: str  # dotted path of the field in the root config
    help: str
    flags: tuple[str, ...] = ()  # explicit flags (default: typer's from ``name``)
    annotation: Any = None  # the option's type when it is not the field's (e.g. ``Path | None`` for a str)
    choices: type[Enum] | None = None  # an Enum of the accepted values (default: from a Literal field)
    invert: bool = False  # a --no-x flag of a bool field that defaults to true
    to_config: Callable[[Any], Any] | None = None  # parsed value -> the field's value
    typer_kw: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CliOption:
    """A CLI option that is no config field (the command reads it from ``kw`` itself)."""

    name: str
    annotation: Any
    default: Any
    help: str
    flags: tuple[str, ...] = ()
    typer_kw: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field(root: type, path: str) -> tuple[type, dataclasses.Field[Any], Any]:
    """The dataclass holding the last field of ``path``, that field and its resolved type."""
    cls = root
    *parents, last = path.split(".")
    for name in parents:
        cls = _hints(cls)[name]
    f = {f.name: f for f in dataclasses.fields(cls)}[last]
    return cls, f, _hints(cls)[last]


def field_default(root: type, path: str) -> Any:
    """The declared default of the field at ``path`` (a ``default_factory``'s value for a factory)."""
    _, f, _ = _field(root, path)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"{root.__name__}.{path} has no default: it cannot be a CLI option's")


def _choices(opt: FieldOption, typ: Any) -> type[Enum] | None:
    if opt.choices is not None:
        return opt.choices
    if typing.get_origin(typ) is typing.Literal:
        values = typing.get_args(typ)
        return Enum(opt.name.title().replace("_", ""), {str(v): v for v in values}, type=str)  # type: ignore[return-value]
    return None


def _field_parameter(root: type, opt: FieldOption) -> inspect.Parameter:
    _, _, typ = _field(root, opt.path)
    default = field_default(root, opt.path)
    annotation = opt.annotation if opt.annotation is not None else typ
    choices = _choices(opt, typ)
    if choices is not None:
        annotation, default = choices, choices(default)
    if opt.invert:
        annotation, default = bool, not default
    return _parameter(opt.name, annotation, default, opt.flags, {"help": opt.help, **opt.typer_kw})


def _parameter(
    name: str, annotation: Any, default: Any, flags: Sequence[str], kw: Mapping[str, Any]
) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, typer.Option(*flags, **kw)],
    )


def option_parameters(root: type, options: Sequence[FieldOption | CliOption]) -> list[inspect.Parameter]:
    """The typer parameters of ``options`` (field options: defaults and types read from ``root``)."""
    out = []
    for opt in options:
        if isinstance(opt, FieldOption):
            out.append(_field_parameter(root, opt))
        else:
            out.append(_parameter(opt.name, opt.annotation, opt.default, opt.flags, {"help": opt.help, **opt.typer_kw}))
    return out


def _value(opt: FieldOption, raw: Any) -> Any:
    if isinstance(raw, Enum):
        raw = raw.value
    if opt.invert:
        raw = not raw
    return opt.to_config(raw) if opt.to_config is not None else raw


def config_from(root: type, options: Sequence[FieldOption | CliOption], kw: Mapping[str, Any], **extra: Any) -> Any:
    """``root`` built from the parsed options ``kw``; ``extra``: more field values by path, dots as ``__``
    (``openai__api_key=...``). Nested configs start from their defaults; the rest keep theirs."""
    values = {o.path: _value(o, kw[o.name]) for o in options if isinstance(o, FieldOption)}
    values.update({k.replace("__", "."): v for k, v in extra.items()})
    return _build(root, values)


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    own = {k: v for k, v in values.items() if "." not in k}
    nested: dict[str, dict[str, Any]] = {}
    for k, v in values.items():
        if "." in k:
            head, rest = k.split(".", 1)
            nested.setdefault(head, {})[rest] = v
    for head, sub in nested.items():
        own[head] = _build(_hints(cls)[head], sub)
    return cls(**own)
