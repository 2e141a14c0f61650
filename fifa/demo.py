"""`make demo`: the whole chain on bundled samples, offline (the one demo entry point).

1. ``segment_*``: the public-domain sample faces (scikit-image's astronaut, matplotlib's
   grace_hopper) segmented into concept regions, overlays at anchor and leaf level.
2. ``annotate/``: pseudo-fakes forged from them and from scikit-image's ``lfw_subset`` faces (many
   identities), annotated offline (FiFa-Annotator), a few side-by-side PNGs.
3. ``build/``, ``release/``, ``site/``: instruction data and bench (``fifa-data build``), a Hugging Face
   release folder (validated), the static review site over the annotations.
4. ``train/``: the tiny baseline trained for a short while on the build, its predictions on the bench
   and their score (``report/report.json``).
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
    from fifa.concept_tree.segmentation.batch import BatchOptions, image_tasks, segment_folder

    faces_dir = out / "faces"
    files = sample_faces(faces_dir)
    for level in ("anchor", "leaf"):
        dest = out / f"segment_{level}"
        s = segment_folder(image_tasks(faces_dir, files), dest, BatchOptions(level=level, workers=2), progress=False)
        log.info(
            "segmented %d/%d images -> %s (overlays in %s)", s.ok, s.total, dest / "regions.parquet", dest / "overlays"
        )


def annotate_demo(out: Path, overlays: int = 4, n: int = 12, identities: str = "bundled"):
    """forge -> annotate (offline) -> `show` PNGs under OUT/overlays; returns the RunSummary."""
    from fifa.annotator.demo import demo_manifest
    from fifa.annotator.run import AnnotateConfig, run_annotation
    from fifa.annotator.show import render
    from fifa.annotator.store import read_annotations
    from fifa.core.records import AnnotationRecord

    man = demo_manifest(out / "forged", n=n, identities=identities)
    ann = out / "annotations_run"
    summary = run_annotation(man, ann, AnnotateConfig())
    records = AnnotationRecord.from_arrow(read_annotations(ann))
    rows = sorted((r for r in records if r.label == "fake" and r.status == "ok"), key=lambda r: r.sample_id)
    for r in rows[:overlays]:
        render(r, out / "overlays" / f"{r.sample_id}.png", dpi=90)
    log.info("annotated %d pairs -> %s", summary.ok, ann)
    return summary


def dataset_demo(annotations: Path, out: Path) -> Path:
    """build -> release (validated) -> review site; returns the build folder."""
    from fifa.pipelines.build import BuildConfig, build
    from fifa.pipelines.release import ReleaseConfig, release
    from fifa.pipelines.validate import validate
    from fifa.pipelines.viewer import ViewerConfig, build_site

    b = build([annotations], out / "build", BuildConfig(seed=0))
    log.info("build: %s instruction rows, %d bench questions -> %s", b.rows, b.bench, b.out)
    r = release(out / "build", out / "release", ReleaseConfig(version="0.0.1-demo"))
    rep = validate(out / "release")
    log.info("release -> %s (validate: %s)", r.out, "ok" if rep.ok else f"{len(rep.problems)} problem(s)")
    site = build_site(annotations, out / "site", ViewerConfig(page_size=24, max_side=384))
    log.info("review site: %d samples -> %s/index.html", site.samples, site.out)
    return out / "build"


def train_demo(build_dir: Path, out: Path, steps: int) -> dict:
    """The tiny baseline for ``steps`` steps, its predictions on the bench, their score."""
    from fifa.modeling.demo import run_train_demo

    return run_train_demo(build_dir, out, steps=steps, progress=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run the fifa-toolkit demo on bundled sample faces (offline).")
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--fakes", type=int, default=80, help="pseudo-fakes to forge (bundled photos + lfw faces)")
    ap.add_argument("--train-steps", type=int, default=60, help="steps of the tiny baseline (0: skip training)")
    args = ap.parse_args(argv)
    from fifa.cli_utils import setup_logging

    setup_logging()
    t0 = time.perf_counter()
    segment_demo(args.out)
    annotate_demo(args.out / "annotate", n=args.fakes, identities="all")
    build_dir = dataset_demo(args.out / "annotate" / "annotations_run", args.out)
    if args.train_steps > 0:
        res = train_demo(build_dir, args.out / "train", args.train_steps)
        log.info("tiny baseline after %d steps: %s", res["steps"], res["metrics"])
    log.info("demo finished in %.1f s -> %s", time.perf_counter() - t0, args.out)


if __name__ == "__main__":
    main()
