"""The Facial Image Concept Tree (FICT): load, validate and query the concept hierarchy.

The tree lives in one data file, ``concept_tree/data/fict.yaml``, the single source of truth
for region ids. This module is pure (no image work): it parses the file into small frozen
:class:`Node` objects and answers structural questions about them.

>>> from fifa.concept_tree.tree import load_tree
>>> tree = load_tree()
>>> tree.get("colored part of the left eye").id
'left_iris'
>>> tree.anchor_of("left_iris")
'left_eye'
>>> tree.roll_up("left_iris", 2)
'eyes'
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .tree_nodes import Node, TreeError, node_depths, parse_nodes

__all__ = ["ANCHORS", "MASK_SOURCES", "ConceptTree", "load_tree"]

#: The 19 anchor concepts (DESIGN.md): every leaf descends from exactly one of them.
ANCHORS: tuple[str, ...] = (
    "forehead", "left_temple", "right_temple", "left_eyebrow", "right_eyebrow",
    "left_eye", "right_eye", "nose", "left_cheek", "right_cheek", "mouth", "chin",
    "left_jaw", "right_jaw", "left_ear", "right_ear", "hair", "neck", "background",
)  # fmt: skip

#: How a leaf's mask can be made (``mask.source`` of a leaf).
MASK_SOURCES: frozenset[str] = frozenset(
    {"mesh", "eye_opening", "iris", "mouth_opening", "person_geometry", "person_evidence", "background"}
)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Level = str | int


def _norm(text: str) -> str:
    """Lookup key: case-, space-, underscore-, hyphen- and apostrophe-insensitive."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.split(r"[\s_\-]+", text.strip()))


class ConceptTree:
    """The validated concept hierarchy. Build it with :func:`load_tree` or ``ConceptTree(data)``.

    ``data`` is the parsed YAML: ``{"version": str, "nodes": [{"id", "name", "parent", ...}]}``.
    Construction validates the structure and raises :class:`TreeError` with a clear message.
    """

    def __init__(self, data: Mapping[str, Any]):
        if not isinstance(data, Mapping) or not isinstance(data.get("nodes"), list):
            raise TreeError("tree data must be a mapping with a 'nodes' list")
        self.version: str = str(data.get("version") or "")
        if not self.version:
            raise TreeError("tree data has no 'version'")
        self.name: str = str(data.get("name") or "Facial Image Concept Tree")
        self.description: str = str(data.get("description") or "")

        raw = parse_nodes(data["nodes"])
        children: dict[str, list[str]] = {i: [] for i in raw}
        roots = [i for i, r in raw.items() if r["parent"] is None]
        if len(roots) != 1:
            raise TreeError(f"the tree must have exactly one root (parent: null), found {len(roots)}: {roots}")
        for i, r in raw.items():
            p = r["parent"]
            if p is not None:
                if p not in raw:
                    raise TreeError(f"node '{i}': parent '{p}' does not exist")
                children[p].append(i)
        depth = node_depths(raw, roots[0])

        self._nodes: dict[str, Node] = {}
        for i, r in raw.items():
            node = Node(id=i, name=r["name"], parent=r["parent"], synonyms=r["synonyms"],
                        description=r["description"], artifacts=r["artifacts"], mask=r["mask"],
                        children=tuple(children[i]), depth=depth[i])  # fmt: skip
            self._nodes[i] = node
        self.root: Node = self._nodes[roots[0]]
        self._anc: dict[str, tuple[str, ...]] = {i: tuple(self._ancestor_ids(i)) for i in self._nodes}
        self._check_masks()
        self._anchor = self._check_anchors()
        self._index = self._build_index()

    # ----------------------------------------------------------------- validation
    def _check_masks(self) -> None:
        for n in self._nodes.values():
            if n.is_leaf:
                if n.mask is None:
                    raise TreeError(f"leaf '{n.id}' has no 'mask' (how its mask is made)")
                if n.mask["source"] not in MASK_SOURCES:
                    raise TreeError(f"leaf '{n.id}': unknown mask source '{n.mask['source']}' "
                                    f"(known: {', '.join(sorted(MASK_SOURCES))})")  # fmt: skip
            elif n.mask is not None:
                raise TreeError(f"group '{n.id}' has a 'mask': a group's mask is the union of its children")

    def _check_anchors(self) -> dict[str, str | None]:
        missing = [a for a in ANCHORS if a not in self._nodes]
        if missing:
            raise TreeError(f"missing anchor concept(s): {', '.join(missing)}")
        anchor: dict[str, str | None] = {}
        for n in self._nodes.values():  # file order: parents are resolved before children
            above = [a for a in (n.id, *self._anc[n.id]) if a in ANCHORS]
            if len(above) > 1:
                raise TreeError(f"node '{n.id}' lies under several anchors: {', '.join(above)}")
            anchor[n.id] = above[0] if above else None
            if n.is_leaf and not above:
                raise TreeError(f"leaf '{n.id}' does not descend from any anchor ({', '.join(ANCHORS)})")
        return anchor

    def _build_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        owner: dict[str, str] = {}
        # Priority: ids, then names, then synonyms. A key may not point at two nodes.
        for kind in ("id", "name", "synonym"):
            for n in self._nodes.values():
                keys = {"id": [n.id], "name": [n.name], "synonym": list(n.synonyms)}[kind]
                for key in map(_norm, keys):
                    if key in index and index[key] != n.id:
                        raise TreeError(f"lookup key '{key}' ({kind} of '{n.id}') is already "
                                        f"the {owner[key]} of '{index[key]}'")  # fmt: skip
                    index.setdefault(key, n.id)
                    owner.setdefault(key, kind)
        return index

    # ----------------------------------------------------------------- container protocol
    @property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes, in file order (parents before children)."""
        return tuple(self._nodes.values())

    def __getitem__(self, node_id: str) -> Node:
        try:
            return self._nodes[node_id]
        except KeyError:
            raise KeyError(self._unknown(node_id)) from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def __repr__(self) -> str:
        return f"ConceptTree(version={self.version!r}, nodes={len(self)}, leaves={len(self.leaves())})"

    def _unknown(self, query: str) -> str:
        close = difflib.get_close_matches(_norm(str(query)), list(self._index), n=5, cutoff=0.6)
        ids = list(dict.fromkeys(self._index[c] for c in close))
        hint = f"; did you mean: {', '.join(ids)}?" if ids else ""
        return f"unknown concept '{query}'{hint}"

    # ----------------------------------------------------------------- queries
    def get(self, query: str) -> Node:
        """Find a node by id, name or synonym (case/space/underscore-insensitive).

        Raises ``KeyError`` with close-match suggestions when nothing matches.
        """
        if query in self._nodes:
            return self._nodes[query]
        nid = self._index.get(_norm(str(query)))
        if nid is None:
            raise KeyError(self._unknown(query))
        return self._nodes[nid]

    def parent(self, node_id: str) -> Node | None:
        """The parent node, or None for the root."""
        p = self[node_id].parent
        return self._nodes[p] if p is not None else None

    def children(self, node_id: str) -> tuple[Node, ...]:
        """Direct children, in file order."""
        return tuple(self._nodes[c] for c in self[node_id].children)

    def _ancestor_ids(self, node_id: str) -> list[str]:
        out, p = [], self._nodes[node_id].parent
        while p is not None:
            out.append(p)
            p = self._nodes[p].parent
        return out

    def ancestors(self, node_id: str) -> tuple[Node, ...]:
        """Ancestors, nearest first (parent, grandparent, ..., root)."""
        self[node_id]
        return tuple(self._nodes[a] for a in self._anc[node_id])

    def descendants(self, node_id: str) -> tuple[Node, ...]:
        """All nodes below ``node_id`` (not itself), in file order."""
        self[node_id]
        return tuple(n for n in self._nodes.values() if node_id in self._anc[n.id])

    def leaves(self, under: str | None = None) -> tuple[Node, ...]:
        """Atomic concepts in file order; with ``under``, those at or below that node."""
        if under is None:
            return tuple(n for n in self._nodes.values() if n.is_leaf)
        node = self[under]
        if node.is_leaf:
            return (node,)
        return tuple(n for n in self.descendants(under) if n.is_leaf)

    def anchor_of(self, node_id: str) -> str | None:
        """The anchor id at or above ``node_id``; None for nodes above the anchors (e.g. ``face``)."""
        self[node_id]
        return self._anchor[node_id]

    def roll_up(self, node_id: str, level: Level) -> str:
        """The ancestor-or-self of ``node_id`` at ``level``: ``"anchor"`` or a depth (root = 0).

        A node shallower than the level (or above the anchors) returns itself.
        """
        node = self[node_id]
        if level == "anchor":
            return self._anchor[node_id] or node_id
        if isinstance(level, bool) or not isinstance(level, int) or level < 0:
            raise ValueError(f"level must be 'anchor' or a depth >= 0, not {level!r}")
        while node.depth > level:
            node = self._nodes[node.parent]  # type: ignore[index]
        return node.id

    # ----------------------------------------------------------------- output
    def render(self, root: str | None = None, depth: int | None = None,
               with_descriptions: bool = False, with_artifacts: bool = False) -> str:  # fmt: skip
        """Indented text of a subtree (2 spaces per level, ``id: name`` lines), for LLM prompts.

        ``depth`` limits how many levels below ``root`` are shown (0: the root alone).
        """
        start = self[root] if root is not None else self.root
        lines: list[str] = []

        def walk(n: Node, level: int) -> None:
            pad = "  " * level
            lines.append(f"{pad}{n.id}: {n.name}")
            if with_descriptions:
                lines.append(f"{pad}  - {n.description}")
            if with_artifacts:
                lines.append(f"{pad}  - artifacts: {'; '.join(n.artifacts)}")
            if depth is None or level < depth:
                for c in n.children:
                    walk(self._nodes[c], level + 1)

        walk(start, 0)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """``{"version", "name", "description", "nodes": [...]}`` (file order)."""
        return {"version": self.version, "name": self.name, "description": self.description,
                "nodes": [n.to_dict() for n in self._nodes.values()]}  # fmt: skip

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)

    @classmethod
    def from_yaml(cls, text: str) -> ConceptTree:
        """Build from YAML text."""
        try:
            data = yaml.load(text, Loader=_Loader)  # safe loader (C-accelerated when available)
        except yaml.YAMLError as e:
            raise TreeError(f"tree file is not valid YAML: {e}") from e
        return cls(data)


# --------------------------------------------------------------------- loading
def _default_path() -> Path:
    return Path(str(resources.files("fifa.concept_tree").joinpath("data", "fict.yaml")))


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path) -> ConceptTree:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as e:
        raise TreeError(f"cannot read tree file {path}: {e}") from e
    try:
        return ConceptTree.from_yaml(text)
    except TreeError as e:
        raise TreeError(f"{path}: {e}") from e


@functools.lru_cache(maxsize=1)
def _default_tree() -> ConceptTree:
    return _load_cached(_default_path().expanduser().resolve())


def load_tree(path: str | Path | None = None) -> ConceptTree:
    """Load (once per resolved path) and validate a concept tree; default: the packaged FICT."""
    if path is None:  # the packaged file does not move: skip resolving its path (per-image callers)
        return _default_tree()
    return _load_cached(Path(path).expanduser().resolve())
