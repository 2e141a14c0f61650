"""Review files as build input: one or several reviewers' decisions combined by a rule, with agreement figures.

``fifa-data build --review A.json --review B.json --review-rule all|majority|any``: a sample that some
reviewer decided on is kept or left out by the rule (:func:`fifa.pipelines.agreement.combine`); samples no
reviewer decided on are kept. ``build.json["review"]`` (and the card) records the files, the rule, the counts,
the rejected samples with their notes, and the agreement figures (:func:`fifa.pipelines.agreement.agreement`:
Cohen's kappa per pair, Fleiss' kappa, agreement with the annotator's status, disputed samples).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import polars as pl

from .agreement import agreement, combine
from .review import Decision, load_reviews, review_frame, summarize

ReviewRule = Literal["all", "majority", "any"]
RULES: tuple[str, ...] = get_args(ReviewRule)


@dataclass
class Reviews:
    paths: list[Path]
    rule: str
    by_reviewer: dict[str, dict[str, Decision]]
    combined: dict[str, tuple[str, list[str]]]  # sample_id -> (decision, reviewers)

    @classmethod
    def load(cls, paths: Sequence[str], rule: str = "all") -> Reviews:
        """Raises ReviewError (bad file) or ValueError (unknown rule)."""
        if rule not in RULES:
            raise ValueError(f"--review-rule must be one of {', '.join(RULES)}, got {rule!r}")
        by = load_reviews(paths)
        combined = combine({r: {s: d.decision for s, d in ds.items()} for r, ds in by.items()}, rule)
        return cls([Path(p) for p in paths], rule, by, combined)

    @property
    def rejected(self) -> set[str]:
        return {s for s, (d, _) in self.combined.items() if d == "rejected"}

    def frame(self) -> pl.DataFrame:
        """``sample_id, review, reviewers`` of every decided sample (provenance columns)."""
        return review_frame(self.combined)

    def summary(self, index: pl.DataFrame) -> dict:
        """What build.json and the card record (``index``: the annotation index, for known ids and status)."""
        from .parquet_io import sha256_file

        known = set(index["sample_id"].to_list())
        status = dict(zip(index["sample_id"].to_list(), index["status"].to_list()))
        decided = self.combined
        unknown = sorted(set(decided) - known)
        rejected = sorted(s for s in self.rejected if s in known)
        all_decisions = {f"{r}\x00{s}": d for r, ds in self.by_reviewer.items() for s, d in ds.items()}
        info = summarize(all_decisions)
        notes = {
            s: "; ".join(
                f"{r}: {self.by_reviewer[r][s].note}" if len(self.by_reviewer) > 1 else self.by_reviewer[r][s].note
                for r in decided[s][1]
                if self.by_reviewer[r][s].rejected
            )
            for s in rejected[:1000]
        }
        files = [
            {"file": p.name, "sha256": sha256_file(p), "reviewer": r, "decisions": len(ds)}
            for p, (r, ds) in zip(self.paths, self.by_reviewer.items())
        ]
        return {
            "file": ", ".join(f["file"] for f in files),
            "sha256": files[0]["sha256"] if files else None,
            "files": files,
            "rule": self.rule,
            "reviewer": ", ".join(r for r in self.by_reviewer if r) or None,
            "first": info["first"],
            "last": info["last"],
            "decisions": len(decided),
            "accepted": sum(1 for s, (d, _) in decided.items() if d == "accepted" and s in known),
            "rejected": len(rejected),
            "rejected_ids": rejected[:1000],
            "rejected_notes": notes,
            "unknown": len(unknown),
            "unknown_ids": unknown[:100],
            "agreement": agreement(
                {r: {s: d.decision for s, d in ds.items() if s in known} for r, ds in self.by_reviewer.items()},
                status,
                max_disputed=100,
            ),
        }
