"""``fifa-data review-stats FILES...``: the agreement figures of several reviewers' decision files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .agreement import agreement
from .review import load_reviews


@dataclass
class ReviewStats:
    figures: dict  # fifa.pipelines.agreement.agreement's dict

    def lines(self, show: int = 20) -> list[str]:
        f = self.figures
        fmt = lambda x: "undefined" if x is None else f"{x:.3f}"  # noqa: E731
        out = [f"{len(f['reviewers'])} reviewer(s): {', '.join(f['reviewers'])}; {f['samples']} sample(s) decided"]
        for p in f["pairs"]:
            out.append(
                f"cohen kappa {p['reviewers'][0]} / {p['reviewers'][1]}: {fmt(p['cohen_kappa'])} "
                f"(agreement {fmt(p['agreement'])}, n {p['n']})"
            )
        fl = f["fleiss"]
        if fl["raters"] >= 2:
            out.append(f"fleiss kappa: {fmt(fl['kappa'])} (n {fl['n']} samples decided by all {fl['raters']})")
        for a in f["annotator"]:
            out.append(
                f"{a['reviewer']} vs the annotator's status: agreement {fmt(a['agreement'])}, "
                f"kappa {fmt(a['cohen_kappa'])} (n {a['n']})"
            )
        out.append(f"disputed samples: {f['disputed']}")
        for d in f["disputed_samples"][:show]:
            out.append(f"  {d['sample_id']}: " + ", ".join(f"{r} {v}" for r, v in d["decisions"].items()))
        return out


def review_stats(files: Sequence[str], annotations: Sequence[str] = ()) -> ReviewStats:
    """Figures of ``files`` (one per reviewer); with ``annotations`` folders, each reviewer against the annotator.
    Raises ReviewError (a UserError) for a bad file or a missing reviewer name."""
    reviews = load_reviews(files)
    status = None
    if annotations:
        from fifa.annotator.store import read_annotations

        status = {}
        for a in annotations:
            t = read_annotations(a, ["sample_id", "status"])
            status.update(zip(t["sample_id"].to_pylist(), t["status"].to_pylist()))
    figures = agreement({r: {s: d.decision for s, d in ds.items()} for r, ds in reviews.items()}, status)
    return ReviewStats(figures)
