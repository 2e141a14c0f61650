"""`make demo`: the main job on bundled samples, offline (the one demo entry point).

1. Segments the public-domain sample faces (scikit-image's astronaut, matplotlib's
   grace_hopper) into concept regions, with overlays at anchor and leaf level.
2. Forges pseudo-fakes from them, annotates the pairs offline (FiFa-Annotator) and draws a few
   side-by-side PNGs.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger("fifa.demo")


def sample_faces(out: Path) -> list[Path]:
    """Write the two public-domain sample photos into ``out`` and return their paths."""
    import matplotlib
    import skimage.data
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    a = out / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(a)
    g = out / "grace_hopper.jpg"
    g.write_bytes((Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes())
    return [a, g]


def segment_demo(out: Path) -> None:
    from fifa.concept_tree.batch import BatchOptions, image_tasks, segment_folder

    faces_dir = out / "faces"
    files = sample_faces(faces_dir)
    for level in ("anchor", "leaf"):
        dest = out / f"segment_{level}"
        s = segment_folder(image_tasks(faces_dir, files), dest, BatchOptions(level=level, workers=2), progress=False)
        log.info("segmented %d/%d images -> %s (overlays in %s)", s.ok, s.total, dest / "regions.parquet", dest / "overlays")


def annotate_demo(out: Path, overlays: int = 4):
    """forge -> annotate (offline) -> `show` PNGs under OUT/overlays; returns the RunSummary."""
    from fifa.annotator.demo import demo_manifest
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.annotator.show import render
    from fifa.annotator.store import read_annotations

    man = demo_manifest(out / "forged")
    ann = out / "annotations_run"
    summary = run_annotation(man, ann, AnnotateConfig())
    rows = [r for r in read_annotations(ann).to_pylist() if r["label"] == "fake" and r["status"] == "ok"]
    rows.sort(key=lambda r: r["sample_id"])
    for r in rows[:overlays]:
        render(r, out / "overlays" / f"{r['sample_id']}.png", dpi=90)
    log.info("annotated %d pairs -> %s", summary.ok, ann)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run the fifa-toolkit demo on bundled sample faces (offline).")
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    args = ap.parse_args(argv)
    from fifa.cli_utils import setup_logging

    setup_logging()
    t0 = time.perf_counter()
    segment_demo(args.out)
    annotate_demo(args.out / "annotate")
    log.info("demo finished in %.1f s -> %s", time.perf_counter() - t0, args.out)


if __name__ == "__main__":
    main()
