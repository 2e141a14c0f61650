"""An independent reimplementation of DESIGN.md's grounding metrics, for the tests.

Written from the definition, sharing no code with ``fifa.benchmarks.metrics_ground``: masks are decoded
to pixels (numpy, no pycocotools IoU), phrases parsed with their own patterns, nodes resolved by walking
the tree's parents. Pooled ratios over all the questions given.
"""

from __future__ import annotations

import re

import numpy as np

from fifa.concept_tree.tree import load_tree
from fifa.core.rle import decode

ANCHOR_IDS = {
    "forehead",
    "left_temple",
    "right_temple",
    "left_eyebrow",
    "right_eyebrow",
    "left_eye",
    "right_eye",
    "nose",
    "left_cheek",
    "right_cheek",
    "mouth",
    "chin",
    "left_jaw",
    "right_jaw",
    "left_ear",
    "right_ear",
    "hair",
    "neck",
    "background",
}
GLAMM = re.compile(r"<p>(.*?)</p>\s*\[SEG\]", re.I | re.S)
OURS = re.compile(r"\[([^\[\]]+?)\]\(([A-Za-z0-9_:.\-]+)\)")


class Reference:
    def __init__(self):
        self.tree = load_tree()
        self.parent = {n.id: n.parent for n in self.tree.nodes}
        self.lookup = {}
        for n in self.tree.nodes:  # ids, then names, then synonyms: the first owner of a key keeps it
            self.lookup.setdefault(self.norm(n.id), n.id)
        for n in self.tree.nodes:
            self.lookup.setdefault(self.norm(n.name), n.id)
        for n in self.tree.nodes:
            for s in n.synonyms:
                self.lookup.setdefault(self.norm(s), n.id)

    @staticmethod
    def norm(s: str) -> str:
        words = re.sub(r"[_\-\s]+", " ", s.lower().replace("'", "").replace("\u2019", "")).split()
        if words and words[0] in ("the", "a", "an"):
            words = words[1:]
        return " ".join(words)

    def phrases(self, text):
        found = [(m.start(), m.group(1), None) for m in GLAMM.finditer(text or "")]
        found += [(m.start(), m.group(1), m.group(2)) for m in OURS.finditer(text or "")]
        return [(p, i) for _, p, i in sorted(found)]

    def resolve(self, phrase, node_id):
        if node_id == "artifact" or node_id in self.parent:
            return node_id
        return self.lookup.get(self.norm(phrase))

    def anchor(self, node):
        x = node
        while x is not None:
            if x in ANCHOR_IDS:
                return x
            x = self.parent.get(x)
        return None

    def key(self, node):
        return self.anchor(node) or node

    def anchors_for(self, node):
        if node == "artifact" or node not in self.parent:
            return []
        a = self.anchor(node)
        if a:
            return [a]
        out = []
        for x in ANCHOR_IDS:
            y = self.parent[x]
            while y is not None and y != node:
                y = self.parent[y]
            if y == node:
                out.append(x)
        return out

    def row(self, answer, pred_masks, ref_ids, ref_masks, anchors):
        """(matched, ref pairs, pred pairs, consistency sum, consistency count) of one question."""
        ph = self.phrases(answer) if answer is not None else []
        pm = [decode(m).astype(bool) for m in (pred_masks or [])]
        nodes = [self.resolve(p, i) for p, i in ph]
        pairs = [(nodes[k], pm[k] if k < len(pm) else None) for k in range(len(nodes))]
        refs = [(self.key(i), decode(m).astype(bool)) for i, m in zip(ref_ids or [], ref_masks or [])]
        cand = []
        for a, (node, m) in enumerate(pairs):
            for b, (rk, rm) in enumerate(refs):
                if node is None or m is None or self.key(node) != rk:
                    continue
                union = (m | rm).sum()
                iou = (m & rm).sum() / union if union else 0.0
                if iou >= 0.5:
                    cand.append((-iou, a, b))
        used_a, used_b = set(), set()
        for _, a, b in sorted(cand):
            if a not in used_a and b not in used_b:
                used_a.add(a)
                used_b.add(b)
        csum = ccount = 0.0
        amap = {a: decode(m).astype(bool) for a, m in (anchors or {}).items()}
        for node, m in pairs:
            if node is None or node == "artifact":
                continue
            ccount += 1
            parts = [amap[a] for a in self.anchors_for(node) if a in amap]
            if m is None or not m.any() or not parts:
                continue
            region = np.logical_or.reduce(parts)
            csum += (m & region).sum() / m.sum()
        return len(used_a), len(refs), len(pairs), csum, ccount

    def metrics(self, rows):
        """rows: (answer or None, masks, ref_ids, ref_masks, anchors) -> the three pooled metrics."""
        t = np.array([self.row(*r) for r in rows], dtype=float).reshape(-1, 5).sum(axis=0)
        div = lambda a, b: a / b if b else None  # noqa: E731
        return {
            "grounded_recall": div(t[0], t[1]),
            "grounded_precision": div(t[0], t[2]),
            "consistency": div(t[3], t[4]),
        }
