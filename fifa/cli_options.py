"""Typer options generated from config dataclasses: each default (and type) written once, in the config.

Data shapes:

* :class:`FieldOption`: one command-line option bound to a field of a (possibly nested) config dataclass
  by its dotted path (``"diff.noise_floor"``: the ``noise_floor`` field of the config's ``diff`` field);
  ``help``, the option's flags and typer's extra keywords are the CLI's own;
* :class:`CliOption`: an option that is no config field (``--verbose``, ``--api-key-file``): the command
  reads it itself, its default written here;
* :func:`option_parameters`: ``inspect.Parameter``\\ s for a command's ``__signature__`` (typer reads it):
  a field option's default and annotation are the field's, read from the dataclass at import time;
* :func:`with_options`: a command ``f(own..., **kw)`` given those parameters after its own;
* :func:`config_from`: the config built from a command's parsed options (``kw``), the other fields left at
  their defaults.

A field typed ``Literal["a", "b"]`` becomes a choice (an ``Enum`` made from the literal) unless the option gives
its own ``annotation`` (e.g. ``str``: the config checks the value); ``choices`` names an existing ``Enum`` instead
(a registry's). ``invert`` makes a ``--no-x`` flag of a field ``x`` that
defaults to true. ``to_config`` converts the parsed value (e.g. a ``Path`` to the ``str`` a config keeps),
``from_config`` the field's default to the option's (a tuple of task ids to the comma-separated text). A nested
config's fields default to its class's defaults, or to what its parent field's default sets
(``field(default_factory=lambda: OpenAIConfig(model="gpt-4o-mini"))``).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from functools import cache
from typing import Annotated, Any, TypeVar

import typer

__all__ = ["CliOption", "FieldOption", "config_from", "field_default", "option_parameters", "with_options"]

F = TypeVar("F", bound=Callable[..., Any])


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
    from_config: Callable[[Any], Any] | None = None  # the field's default -> the option's (e.g. a tuple as text)
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


def _declared(f: dataclasses.Field[Any]) -> Any:
    """The declared default of ``f`` (a ``default_factory``'s value for a factory); MISSING without one."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _set_by_parent(cls: type, name: str) -> bool:
    """Whether the nested config ``cls.name`` gets its values from ``cls``'s default (``field(default_factory=
    lambda: OpenAIConfig(model="gpt-4o-mini"))``) rather than from its own class (``default_factory=OpenAIConfig``)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return False
    return f.default_factory is not _hints(cls)[name]


def field_default(root: type, path: str) -> Any:
    """The default of the field at ``path``: its declared default (a factory's value), or, inside a nested config
    whose parent field sets its values, the value the parent's default holds."""
    cls, holder = root, None  # holder: the nested config's default instance, when its parent sets it
    *parents, last = path.split(".")
    for name in parents:
        if holder is not None:
            holder = getattr(holder, name)
        elif _set_by_parent(cls, name):
            holder = _declared({f.name: f for f in dataclasses.fields(cls)}[name])
        cls = _hints(cls)[name]
    if holder is not None:
        return getattr(holder, last)
    value = _declared(_field(root, path)[1])
    if value is dataclasses.MISSING:
        raise TypeError(f"{root.__name__}.{path} has no default: it cannot be a CLI option's")
    return value


def _choices(opt: FieldOption, typ: Any) -> type[Enum] | None:
    if opt.choices is not None:
        return opt.choices
    if typing.get_origin(typ) is typing.Literal and opt.annotation is None:  # an explicit annotation wins
        values = typing.get_args(typ)
        return Enum(opt.name.title().replace("_", ""), {str(v): v for v in values}, type=str)  # type: ignore[return-value]
    return None


def _field_parameter(root: type, opt: FieldOption) -> inspect.Parameter:
    _, _, typ = _field(root, opt.path)
    default = field_default(root, opt.path)
    if opt.from_config is not None:
        default = opt.from_config(default)
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


def with_options(parameters: Sequence[inspect.Parameter]) -> Callable[[F], F]:
    """Give a command ``func(own..., **kw)`` the generated ``parameters`` after its own (typer reads
    ``__signature__``; ``kw`` holds the parsed options by name)."""

    def wrap(func: F) -> F:
        sig = inspect.signature(func)
        hints = typing.get_type_hints(func, include_extras=True)  # resolve the module's string annotations
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        func.__signature__ = sig.replace(parameters=own + list(parameters))  # type: ignore[attr-defined]
        return func

    return wrap


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


def _build(cls: type, values: Mapping[str, Any], base: Any = None) -> Any:
    """``cls`` with ``values`` (dotted paths), the rest from ``base`` (a default instance) or ``cls``'s defaults."""
    own = {k: v for k, v in values.items() if "." not in k}
    nested: dict[str, dict[str, Any]] = {}
    for k, v in values.items():
        if "." in k:
            head, rest = k.split(".", 1)
            nested.setdefault(head, {})[rest] = v
    for head, sub in nested.items():
        if base is not None:
            sub_base = getattr(base, head)
        elif _set_by_parent(cls, head):
            sub_base = _declared({f.name: f for f in dataclasses.fields(cls)}[head])
        else:
            sub_base = None
        own[head] = _build(_hints(cls)[head], sub, sub_base)
    return dataclasses.replace(base, **own) if base is not None else cls(**own)
