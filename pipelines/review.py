"""Review decisions of the viewer (``fifa-data view``), applied by ``fifa-data build --review FILE``.

Format (shared with the viewer)::

    {"version": 1, "reviewer": str | null,
     "decisions": [{"sample_id": str, "decision": "accepted" | "rejected", "note": str, "at": ISO time}]}

Later decisions for the same ``sample_id`` (later in the list) win. Rejected annotations are left
out of the build; ids the annotations do not have are reported, not fatal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

DECISIONS = ("accepted", "rejected")


class ReviewError(ValueError):
    """A review file that cannot be used (the message says where)."""


@dataclass
class Review:
    source: str  # file name (no directory)
    sha256: str
    reviewer: str | None
    decisions: dict[str, dict] = field(default_factory=dict)  # sample_id -> last decision

    @property
    def rejected(self) -> set[str]:
        return {s for s, d in self.decisions.items() if d["decision"] == "rejected"}

    @property
    def accepted(self) -> set[str]:
        return {s for s, d in self.decisions.items() if d["decision"] == "accepted"}

    def summary(self, known_ids: set[str]) -> dict:
        unknown = sorted(set(self.decisions) - known_ids)
        rejected = sorted(self.rejected & known_ids)
        return {
            "file": self.source, "sha256": self.sha256, "reviewer": self.reviewer,
            "decisions": len(self.decisions), "accepted": len(self.accepted & known_ids),
            "rejected": len(rejected), "rejected_ids": rejected[:1000],
            "rejected_notes": {s: self.decisions[s].get("note") or "" for s in rejected[:1000]},
            "unknown": len(unknown), "unknown_ids": unknown[:100],
        }


def load_review(path: str | Path) -> Review:
    p = Path(path)
    try:
        raw = p.read_bytes()
        doc = json.loads(raw.decode("utf-8"))
    except OSError as e:
        raise ReviewError(f"cannot read review file {p}: {e.strerror or e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ReviewError(f"review file {p} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("decisions"), list):
        raise ReviewError(f"review file {p}: expected {{\"version\": 1, \"reviewer\": ..., \"decisions\": [...]}}")
    reviewer = doc.get("reviewer")
    if reviewer is not None and not isinstance(reviewer, str):
        raise ReviewError(f"review file {p}: 'reviewer' must be a string or null")
    out: dict[str, dict] = {}
    for i, d in enumerate(doc["decisions"]):
        where = f"review file {p}: decisions[{i}]"
        if not isinstance(d, dict):
            raise ReviewError(f"{where} must be an object")
        sid, dec = d.get("sample_id"), d.get("decision")
        if not isinstance(sid, str) or not sid:
            raise ReviewError(f"{where}: 'sample_id' must be a non-empty string")
        if dec not in DECISIONS:
            raise ReviewError(f"{where} ({sid}): 'decision' must be one of {DECISIONS}, got {dec!r}")
        note = d.get("note")
        if note is not None and not isinstance(note, str):
            raise ReviewError(f"{where} ({sid}): 'note' must be a string")
        out.pop(sid, None)  # a later decision wins (and moves to the end)
        out[sid] = {"decision": dec, "note": note or "", "at": d.get("at")}
    return Review(p.name, hashlib.sha256(raw).hexdigest(), reviewer, out)
