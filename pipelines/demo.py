"""Demo: forge a few pairs from the bundled public-domain photos, annotate them offline, draw overlays."""

from __future__ import annotations

from pathlib import Path


#: A few 384 px face crops (and mirrors) of the two bundled photos: enough variety, fast.
DEMO_BASES = ("crop1.9_384", "crop1.9_384_mirror", "crop2.6_384")


def run_demo(out_dir: str | Path, n: int = 12, seed: int = 0, overlays: int = 4, progress: bool = True):
    """forge -> annotate (offline) -> `show` PNGs under OUT/overlays; returns the RunSummary."""
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.annotator.show import render
    from fifa.annotator.store import read_annotations

    from fifa.annotator.forge import forge

    out = Path(out_dir)
    data = out / "forged"
    man = data / "manifest.parquet"
    if not man.is_file():
        forge(data, n=n, seed=seed, base_tags=DEMO_BASES)
    ann = out / "annotations_run"
    summary = run_annotation(man, ann, AnnotateConfig(progress=progress))
    rows = [r for r in read_annotations(ann).to_pylist() if r["label"] == "fake" and r["status"] == "ok"]
    rows.sort(key=lambda r: r["sample_id"])
    for r in rows[:overlays]:
        render(r, out / "overlays" / f"{r['sample_id']}.png", dpi=90)
    return summary
