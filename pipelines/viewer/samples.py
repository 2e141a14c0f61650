"""One viewer sample: every row of one ``sample_id`` as the JSON object the page renders.

Grounded text is tokenized here, once, so the page never parses markup: a text becomes a list
of tokens, each a plain string or ``[phrase, mask_index, node_id]`` (``mask_index`` -1 when
the mark has no mask). The k-th mark of a row's assistant turns is the k-th mask of the row
(DESIGN "Grounded text"); a count or node mismatch is reported as a warning of the sample.
Masks are shipped as validated COCO RLE, deduplicated per sample; the page decodes them.
"""

from __future__ import annotations

from collections.abc import Iterable

from fifa.core.marks import find as find_marks
from fifa.core.rle import InvalidRLE, check_rle
from fifa.core.tasks import TASKS

Token = str | list


class MaskTable:
    """The distinct masks of one sample; rows refer to them by index."""

    def __init__(self, warnings: list[str]):
        self.items: list[dict] = []
        self._index: dict[tuple, int] = {}
        self._warnings = warnings

    def add(self, rle, label: str, node: str | None = None, kind: str = "segment") -> int:
        """Index of ``rle`` (added if new); -1 for a missing or invalid mask (with a warning)."""
        if rle is None:
            return -1
        try:
            r = check_rle(rle)
        except InvalidRLE as e:
            self._warnings.append(f"invalid mask for {label!r} dropped: {e}")
            return -1
        key = (r["size"][0], r["size"][1], r["counts"])
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append({"label": label, "node": node, "kind": kind, "size": r["size"], "counts": r["counts"]})
        return self._index[key]


def marked_tokens(
    text: str, masks: list[int], nodes: list[str | None], start: int, warn: list[str], where: str
) -> tuple[list[Token], int]:
    """Tokens of a marked text whose marks take masks ``start, start+1, ...``; returns (tokens, next)."""
    out: list[Token] = []
    pos, k = 0, start
    for m in find_marks(text):
        if m.start > pos:
            out.append(text[pos : m.start])
        phrase, node = m.phrase, m.node_id
        idx = masks[k] if k < len(masks) else -1
        if k >= len(masks):
            warn.append(f"{where}: mark {k + 1} ({node}) has no mask")
        elif k < len(nodes) and nodes[k] and nodes[k] != node:
            warn.append(f"{where}: mark {k + 1} is {node} but mask {k + 1} is {nodes[k]}")
        out.append([phrase, idx, node])
        pos, k = m.end, k + 1
    if pos < len(text or ""):
        out.append(text[pos:])
    return out, k


def phrase_tokens(text: str, phrases: list[str], masks: list[int], nodes: list[str | None]) -> list[Token]:
    """Tokens of a plain text (marks removed, as in bench answers): each phrase found in order."""
    out: list[Token] = []
    pos = 0
    for k, phrase in enumerate(phrases):
        at = text.find(phrase, pos) if phrase else -1
        if at < 0:
            continue
        if at > pos:
            out.append(text[pos:at])
        out.append([phrase, masks[k] if k < len(masks) else -1, nodes[k] if k < len(nodes) else None])
        pos = at + len(phrase)
    if pos < len(text):
        out.append(text[pos:])
    return out


def _first(rows: Iterable[dict], key: str):
    for r in rows:
        if r.get(key) is not None:
            return r[key]
    return None


def _row_masks(row: dict, table: MaskTable, where: str) -> tuple[list[int], list[str | None]]:
    masks = row.get("masks") or []
    phrases = row.get("mask_phrases") or []
    nodes = row.get("mask_node_ids") or []
    ids = []
    for k, rle in enumerate(masks):
        node = nodes[k] if k < len(nodes) else None
        label = phrases[k] if k < len(phrases) and phrases[k] else (node or f"{where} mask {k + 1}")
        ids.append(table.add(rle, label, node))
    return ids, list(nodes)


def _query(row: dict, table: MaskTable, qid: str) -> dict | None:
    if row.get("query_mask") is not None:
        i = table.add(row["query_mask"], f"query of {qid}", None, "query")
        return {"m": i} if i >= 0 else None
    box = row.get("query_box")
    if box and len(box) == 4:
        return {"box": [float(v) for v in box]}
    return None


def _extra(ids: list[int], linked: set[int]) -> list[int]:
    """Masks of a row that no phrase links to (e.g. the single mask of `loc`)."""
    return [i for i in dict.fromkeys(ids) if i >= 0 and i not in linked]


def instruct_qa(row: dict, table: MaskTable, warn: list[str]) -> dict:
    qid = row.get("id") or "?"
    ids, nodes = _row_masks(row, table, qid)
    turns, k = [], 0
    for msg in row.get("messages") or []:
        role, content = msg.get("role") or "", msg.get("content") or ""
        if role == "assistant":
            toks, k = marked_tokens(content, ids, nodes, k, warn, f"{qid}")
        else:
            toks = [content]
        turns.append({"r": role, "t": toks})
    if k < len(ids):
        warn.append(f"{qid}: {len(ids)} masks but {k} marks")
    linked = {t[1] for turn in turns for t in turn["t"] if isinstance(t, list)}
    return {
        "id": qid,
        "task": row.get("task"),
        "split": row.get("split"),
        "from": "instruct",
        "turns": turns,
        "extra": _extra(ids, linked),
        "query": _query(row, table, qid),
    }


def bench_qa(row: dict, table: MaskTable) -> dict:
    qid = row.get("question_id") or "?"
    ids, nodes = _row_masks(row, table, qid)
    turns = [{"r": m.get("role") or "", "t": [m.get("content") or ""]} for m in row.get("history") or []]
    turns.append({"r": "user", "t": [row.get("question") or ""]})
    answer = phrase_tokens(row.get("answer") or "", list(row.get("mask_phrases") or []), ids, nodes)
    turns.append({"r": "assistant", "t": answer})
    linked = {t[1] for t in answer if isinstance(t, list)}
    return {
        "id": qid,
        "task": row.get("task"),
        "split": "test",
        "from": "bench",
        "turns": turns,
        "extra": _extra(ids, linked),
        "query": _query(row, table, qid),
    }


def annotation_block(row: dict, table: MaskTable, warn: list[str]) -> dict:
    segs = row.get("segments") or []
    art = table.add(row.get("artifact_mask"), "artifact mask", "artifact", "artifact")
    ids = [table.add(s.get("mask"), s.get("phrase") or s.get("node_id") or "?", s.get("node_id")) for s in segs]
    toks, k = marked_tokens(row.get("explanation") or "", ids, [s.get("node_id") for s in segs], 0, warn, "explanation")
    if k < len(ids):
        warn.append(f"explanation: {len(ids)} segments but {k} marks")
    cover = {r.get("node_id"): r for r in row.get("regions") or []}
    for node in row.get("artifact_regions") or []:
        r = cover.get(node)
        if r is not None:
            c = r.get("coverage")
            label = f"region {node}" + (f" ({c:.0%} covered)" if isinstance(c, float) else "")
            table.add(r.get("mask"), label, node, "region")
    return {
        "status": row.get("status"),
        "error": row.get("error"),
        "error_code": row.get("error_code"),
        "explainer": row.get("explainer"),
        "grounded": row.get("grounded"),
        "mask_fraction": row.get("mask_fraction"),
        "tokens": toks,
        "artifact": art,
    }


def build_sample(sid: str, ann: list[dict], ins: list[dict], bench: list[dict], images: dict) -> dict:
    """The page's object for one sample. ``images``: {"img": ImageRef json|None, "source": ..., "warnings": [...]}."""
    warn: list[str] = list(images.get("warnings") or [])
    table = MaskTable(warn)
    a = annotation_block(ann[-1], table, warn) if ann else None
    qa = [instruct_qa(r, table, warn) for r in ins] + [bench_qa(r, table) for r in bench]
    text, text_from = None, None
    if a is not None and a["tokens"]:
        text, text_from = a["tokens"], "annotation"
    else:
        for q in qa:
            if q["task"] in TASKS and TASKS[q["task"]].answer == "grounded_text":  # age
                text, text_from = q["turns"][-1]["t"], f"{q['from']} {q['id']}"
                break
    rows = ann + ins + bench
    splits = sorted({r.get("split") for r in rows if r.get("split")})
    tasks = sorted({r.get("task") for r in ins + bench if r.get("task")})
    if len(ann) > 1:
        warn.append(f"{len(ann)} annotation rows for this sample; showing the last")
    return {
        "id": sid,
        "label": _first(rows, "label"),
        "method": _first(rows, "method"),
        "category": _first(rows, "category"),
        "group": _first(rows, "group"),
        "status": a["status"] if a else None,
        "splits": splits,
        "tasks": tasks,
        "img": images.get("img"),
        "source": images.get("source"),
        "masks": table.items,
        "text": text,
        "text_from": text_from,
        "ann": a,
        "qa": qa,
        "warnings": warn,
    }
