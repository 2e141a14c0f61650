"""The forgery-method table: method name -> category (FS, FR, FE, EFS) and a one-sentence definition.

The packaged table (``pipelines/data/methods.yaml``) covers FaceForensics++, the common swap,
reenactment, editing and synthesis methods, and the forge's own pseudo-forgeries. Users extend
or override it with a YAML file of the same shape (``--methods FILE`` or ``$FIFA_METHODS``).

>>> table = load_methods()
>>> table.category("neural_textures")
'FR'
>>> table.canonical("F2F")
'Face2Face'

An unknown method raises :class:`UnknownMethodError`, whose message names the method and the
file to extend. Names match case-insensitively, ignoring spaces, ``-`` and ``_``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from fifa.core.errors import FifaError

#: Categories a method may have (DESIGN.md); ``real`` is for pristine images only.
METHOD_CATEGORIES = ("FS", "FR", "FE", "EFS")
CATEGORY_NAMES = {
    "FS": "face swap",
    "FR": "face reenactment",
    "FE": "face editing",
    "EFS": "entire face synthesis",
    "real": "real",
}
ENV_VAR = "FIFA_METHODS"


class UnknownMethodError(FifaError, ValueError):
    """A method the table does not know; the message says which file to extend."""


class MethodTableError(FifaError, ValueError):
    """A methods YAML file that cannot be used."""


@dataclass(frozen=True)
class Method:
    name: str
    category: str
    definition: str
    aliases: tuple[str, ...] = ()


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).casefold()


class MethodTable:
    """Lookup of methods by name or alias (see the module docstring)."""

    def __init__(self, methods: Iterable[Method], sources: Iterable[str] = ()):
        self._by_name: dict[str, Method] = {}
        self._index: dict[str, str] = {}
        self.sources = tuple(sources)
        for m in methods:
            self._add(m)

    def _add(self, m: Method) -> None:
        old = self._by_name.pop(m.name, None)
        if old is not None:  # an override replaces the entry and its aliases
            for k in [k for k, v in self._index.items() if v == old.name]:
                del self._index[k]
        self._by_name[m.name] = m
        for k in (m.name, *m.aliases):
            self._index[_key(k)] = m.name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._index

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Method:
        try:
            return self._by_name[self._index[_key(name)]]
        except KeyError:
            where = self.sources[-1] if len(self.sources) > 1 else "a YAML file of the packaged table's shape"
            raise UnknownMethodError(
                f"unknown forgery method {name!r}: add it (category one of {', '.join(METHOD_CATEGORIES)}) to "
                f"{where} and pass it with --methods FILE or ${ENV_VAR} (packaged table: {self.sources[0]})"
            ) from None

    def canonical(self, name: str) -> str:
        return self.get(name).name

    def category(self, name: str) -> str:
        return self.get(name).category

    def definition(self, name: str) -> str:
        return self.get(name).definition


def _parse(doc: object, source: str) -> list[Method]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("methods"), Mapping):
        raise MethodTableError(f"{source}: expected a mapping with a 'methods:' section")
    out = []
    for name, spec in doc["methods"].items():
        if not isinstance(spec, Mapping):
            raise MethodTableError(f"{source}: method {name!r} must be a mapping with category and definition")
        cat = spec.get("category")
        if cat not in METHOD_CATEGORIES:
            raise MethodTableError(f"{source}: method {name!r}: category {cat!r} not in {METHOD_CATEGORIES}")
        definition = str(spec.get("definition") or f"a {CATEGORY_NAMES[cat]} method").strip()
        aliases = spec.get("aliases") or []
        if not isinstance(aliases, list):
            raise MethodTableError(f"{source}: method {name!r}: aliases must be a list")
        out.append(Method(str(name), cat, definition, tuple(str(a) for a in aliases)))
    return out


def packaged_methods_path() -> Path:
    return Path(str(resources.files("fifa.pipelines") / "data" / "methods.yaml"))


def load_methods(extra: str | os.PathLike | None = None) -> MethodTable:
    """The packaged table, extended (and overridden) by ``extra`` or ``$FIFA_METHODS`` when given."""
    base = packaged_methods_path()
    methods = _parse(yaml.safe_load(base.read_text("utf-8")), str(base))
    sources = [str(base)]
    extra = extra or os.environ.get(ENV_VAR) or None
    if extra:
        p = Path(extra)
        if not p.is_file():
            raise MethodTableError(f"methods file not found: {p}")
        try:
            doc = yaml.safe_load(p.read_text("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise MethodTableError(f"{p}: not valid YAML: {e}") from None
        methods += _parse(doc, str(p))
        sources.append(str(p))
    return MethodTable(methods, sources)
