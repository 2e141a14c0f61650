"""Review decisions: the file `fifa-data view` downloads and `fifa-data build --review FILE` reads.

Format (version 1)::

    {"version": 1, "reviewer": "ana" | null,
     "decisions": [{"sample_id": "...", "decision": "accepted" | "rejected",
                    "note": "...", "at": "2025-01-31T12:00:00.000Z",
                    "blind": true, "seen": "..."}, ...]}

``blind`` / ``seen`` (optional): the decision was made in the viewer's blind mode, and ``seen`` is what the
reviewer noted before the annotation (mask, regions, explanation) was shown. The viewer asks for the
reviewer's name before it downloads a file (agreement figures need one file per named reviewer).

One decision per annotation (``sample_id``). When a sample_id appears more than once, the
later entry in the list wins (the viewer writes decisions in time order, so this is also the
latest ``at``). Unknown keys are ignored, so later versions can add fields.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from fifa.core.errors import UserError

VERSION = 1
DECISIONS = ("accepted", "rejected")


class ReviewError(UserError, ValueError):
    """A review file that cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Decision:
    sample_id: str
    decision: str  # accepted | rejected
    note: str
    at: str  # ISO-8601, as written by the reviewer's browser
    reviewer: str | None = None
    seen: str | None = None  # blind mode: what the reviewer noted before seeing the annotation
    blind: bool = False

    @property
    def rejected(self) -> bool:
        return self.decision == "rejected"


def parse_time(value: object) -> _dt.datetime:
    """An ISO-8601 time (``Z`` or an offset; naive times are taken as UTC)."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be an ISO-8601 time string")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    t = _dt.datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def parse_review(obj: object, name: str = "review") -> dict[str, Decision]:
    """Validate a decoded review object; returns sample_id -> its last decision."""
    if not isinstance(obj, Mapping):
        raise ReviewError(f"{name}: expected a JSON object with 'version' and 'decisions', got {type(obj).__name__}")
    if obj.get("version") != VERSION:
        raise ReviewError(f"{name}: unsupported version {obj.get('version')!r} (this toolkit reads version {VERSION})")
    reviewer = obj.get("reviewer")
    if reviewer is not None and not isinstance(reviewer, str):
        raise ReviewError(f"{name}: 'reviewer' must be a string or null")
    entries = obj.get("decisions")
    if not isinstance(entries, list):
        raise ReviewError(f"{name}: 'decisions' must be a list")
    out: dict[str, Decision] = {}
    for i, e in enumerate(entries):
        d = _decision(e, reviewer, f"{name}: decisions[{i}]")
        out.pop(d.sample_id, None)  # re-insert: dict order follows the winning entries
        out[d.sample_id] = d
    return out


def _decision(e: object, reviewer: str | None, where: str) -> Decision:
    if not isinstance(e, Mapping):
        raise ReviewError(f"{where}: expected an object, got {type(e).__name__}")
    sid = e.get("sample_id")
    if not isinstance(sid, str) or not sid:
        raise ReviewError(f"{where}: 'sample_id' must be a non-empty string")
    decision = e.get("decision")
    if decision not in DECISIONS:
        raise ReviewError(f"{where} ({sid!r}): 'decision' must be one of {', '.join(DECISIONS)}, got {decision!r}")
    note = e.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str):
        raise ReviewError(f"{where} ({sid!r}): 'note' must be a string")
    try:
        parse_time(e.get("at"))
    except ValueError:
        raise ReviewError(f"{where} ({sid!r}): 'at' must be an ISO-8601 time, got {e.get('at')!r}") from None
    blind = e.get("blind", False) is True
    seen = e.get("seen")
    if blind and not isinstance(seen, str):
        raise ReviewError(f"{where} ({sid!r}): a blind decision needs 'seen', the reviewer's note as a string")
    return Decision(sid, decision, note, e["at"], reviewer, seen if blind else None, blind)


def load_review(path: str | os.PathLike) -> dict[str, Decision]:
    """Read and validate a review file; returns sample_id -> Decision (the last one per id).

    Raises :class:`ReviewError` (a :class:`~fifa.core.errors.UserError`: the CLI prints it and
    exits 2) for a missing, unreadable or invalid file.
    """
    p = Path(path)
    if not p.is_file():
        raise ReviewError(f"review file not found: {p}")
    try:
        obj = json.loads(p.read_text("utf-8"))
    except UnicodeDecodeError:
        raise ReviewError(f"{p}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ReviewError(f"{p}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    return parse_review(obj, name=str(p))


def load_reviews(paths: Iterable[str | os.PathLike]) -> dict[str, dict[str, Decision]]:
    """Several reviewers' files: reviewer name -> (sample_id -> Decision). With more than one file every file
    must name its reviewer (the viewer asks for the name) and the names must differ; a single unnamed file
    is the reviewer ``reviewer``."""
    paths = [Path(p) for p in paths]
    out: dict[str, dict[str, Decision]] = {}
    for p in paths:
        decisions = load_review(p)
        obj_reviewer = next((d.reviewer for d in decisions.values()), None) or _file_reviewer(p)
        if obj_reviewer is None:
            if len(paths) > 1:
                raise ReviewError(
                    f"{p}: no reviewer name: with several review files each must name its reviewer "
                    '(export it again from fifa-data view, which asks for one, or add "reviewer": '
                    '"NAME")'
                )
            obj_reviewer = "reviewer"
        if obj_reviewer in out:
            raise ReviewError(
                f"{p}: reviewer {obj_reviewer!r} already has a file among the reviews given: one file per reviewer"
            )
        out[obj_reviewer] = decisions
    return out


def _file_reviewer(p: Path) -> str | None:
    try:
        r = json.loads(p.read_text("utf-8")).get("reviewer")
    except (OSError, ValueError, AttributeError):
        return None
    return r if isinstance(r, str) and r.strip() else None


def dump_review(decisions: Iterable[Decision], reviewer: str | None = None) -> dict:
    """The JSON object of a review file (entries in time order)."""
    items = sorted(decisions, key=lambda d: parse_time(d.at))
    return {
        "version": VERSION,
        "reviewer": reviewer,
        "decisions": [
            {k: v for k, v in asdict(d).items() if k != "reviewer" and (d.blind or k not in ("seen", "blind"))}
            for d in items
        ],
    }


def review_frame(decisions: Mapping[str, Decision] | Mapping[str, tuple[str, list[str]]]):
    """Per reviewed sample: ``sample_id, review`` (its decision), ``reviewers`` (who decided). Takes one
    file's decisions or :func:`fifa.pipelines.agreement.combine`'s (decision, reviewers) per sample."""
    import polars as pl

    from .provenance import REVIEW_FRAME

    rows = [
        (s, d[0], list(d[1])) if isinstance(d, tuple) else (s, d.decision, [d.reviewer] if d.reviewer else [])
        for s, d in decisions.items()
    ]
    return pl.DataFrame(rows, schema=REVIEW_FRAME, orient="row")


def summarize(decisions: Mapping[str, Decision]) -> dict:
    """Counts and reviewers of a review, for a dataset card."""
    acc = sum(1 for d in decisions.values() if d.decision == "accepted")
    times = [parse_time(d.at) for d in decisions.values()]
    return {
        "accepted": acc,
        "rejected": len(decisions) - acc,
        "reviewers": sorted({d.reviewer for d in decisions.values() if d.reviewer}),
        "first": min(times).isoformat() if times else None,
        "last": max(times).isoformat() if times else None,
    }
