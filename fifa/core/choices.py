"""Literal-typed config fields, checked in one place.

Configs are frozen dataclasses whose choice fields are ``Literal[...]``; each config's ``__post_init__`` asks
:func:`bad_choice` for its first field holding a value outside its choices and raises its own error (a CLI
option, a YAML key and a Python argument each name the field their way).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args, get_origin, get_type_hints


def choices_of(cls: type) -> dict[str, tuple[Any, ...]]:
    """``{field: its Literal values}`` for every ``Literal`` field of the dataclass ``cls``."""
    hints = get_type_hints(cls)
    return {f.name: get_args(hints[f.name]) for f in dataclasses.fields(cls) if get_origin(hints[f.name]) is Literal}


def bad_choice(config: Any) -> tuple[str, tuple[Any, ...], Any] | None:
    """``(field, choices, value)`` of the first ``Literal`` field of ``config`` whose value is not a choice."""
    for name, choices in choices_of(type(config)).items():
        value = getattr(config, name)
        if value not in choices:
            return name, choices, value
    return None
