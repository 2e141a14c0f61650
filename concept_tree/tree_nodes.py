"""The nodes of the concept tree file: :class:`Node`, :class:`TreeError`, and the parsing of the
raw node list (each node checked on its own, then the depth of every node, cycles refused).

:class:`~fifa.concept_tree.tree.ConceptTree` builds on these and checks the tree as a whole
(anchors, mask sources, lookup keys).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fifa.core.errors import FifaError

__all__ = ["Node", "TreeError", "node_depths", "parse_nodes"]

_ID_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class TreeError(FifaError, ValueError):
    """The concept tree data is malformed (duplicate id, cycle, missing anchor, ...)."""


@dataclass(frozen=True)
class Node:
    """One concept of the tree. ``children`` are ids; ``depth`` is 0 for the root."""

    id: str
    name: str
    parent: str | None
    synonyms: tuple[str, ...]
    description: str
    artifacts: tuple[str, ...]
    mask: Mapping[str, str] | None
    children: tuple[str, ...]
    depth: int

    @property
    def is_leaf(self) -> bool:
        """True for an atomic concept (no children)."""
        return not self.children

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the ``nodes`` items of ``fifa-tree export``)."""
        return {
            "id": self.id,
            "name": self.name,
            "parent": self.parent,
            "synonyms": list(self.synonyms),
            "description": self.description,
            "artifacts": list(self.artifacts),
            "mask": dict(self.mask) if self.mask is not None else None,
            "children": list(self.children),
        }


def _str_list(raw: Any, where: str, field: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise TreeError(f"{where}: '{field}' must be a list of non-empty strings")
    return tuple(x.strip() for x in raw)


def parse_nodes(items: list) -> dict[str, dict[str, Any]]:
    """The ``nodes`` list of the tree file -> ``{id: fields}`` in file order, each node checked on its own."""
    raw: dict[str, dict[str, Any]] = {}
    for k, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise TreeError(f"nodes[{k}] is not a mapping")
        nid = item.get("id")
        if not isinstance(nid, str) or not _ID_RE.match(nid):
            raise TreeError(f"nodes[{k}]: id {nid!r} is not a snake_case identifier")
        if nid in raw:
            raise TreeError(f"duplicate node id '{nid}'")
        where = f"node '{nid}'"
        for field in ("name", "description"):
            if not isinstance(item.get(field), str) or not item[field].strip():
                raise TreeError(f"{where}: missing or empty '{field}'")
        parent = item.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise TreeError(f"{where}: parent must be an id or null")
        if parent == nid:
            raise TreeError(f"{where} is its own parent (cycle)")
        artifacts = _str_list(item.get("artifacts"), where, "artifacts")
        if not artifacts:
            raise TreeError(f"{where}: 'artifacts' must list at least one forgery cue")
        mask = item.get("mask")
        if mask is not None and not (isinstance(mask, Mapping) and isinstance(mask.get("source"), str)):
            raise TreeError(f"{where}: 'mask' must be a mapping with a 'source'")
        raw[nid] = {
            "name": item["name"].strip(),
            "parent": parent,
            "synonyms": _str_list(item.get("synonyms"), where, "synonyms"),
            "description": item["description"].strip(),
            "artifacts": artifacts,
            "mask": dict(mask) if mask is not None else None,
        }
    if not raw:
        raise TreeError("the tree has no nodes")
    return raw


def node_depths(raw: Mapping[str, Mapping[str, Any]], root: str) -> dict[str, int]:
    """Depth of every node below ``root`` (0); :class:`TreeError` on a cycle."""
    depth: dict[str, int] = {root: 0}
    for start in raw:
        path: list[str] = []
        seen: set[str] = set()
        cur: str | None = start
        while cur is not None and cur not in depth:
            if cur in seen:
                cycle = path[path.index(cur) :] + [cur]
                raise TreeError("cycle in the tree: " + " -> ".join(cycle))
            seen.add(cur)
            path.append(cur)
            cur = raw[cur]["parent"]
        if cur is None:  # cannot happen with one root, kept for safety
            raise TreeError(f"node '{start}' is not connected to the root")
        for i in reversed(path):
            depth[i] = depth[cur] + 1
            cur = i
    return depth
