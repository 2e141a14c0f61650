"""Viewer speed and size: `build_site` on a synthetic build, against a baseline, and page times in Chromium.

    python scripts/bench_viewer.py [--samples 500] [--side 384] [--page-size 50]

Baseline (same process, same data): the work no site can skip, read every image from the
Parquet files, decode it, downscale it and encode one JPEG (one thread, like `build_site` with
``workers=1`` here). The ratio says what the site build adds on top (masks, text tokens, data
files, facets). In Chromium (Debian's package via playwright): time from navigation to the
first rendered list, and to the next page of the list (a new data file) averaged over pages.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from benchkit import machine
from fifa.core.rle import encode
from fifa.core.schemas import INSTRUCT_SCHEMA
from fifa.pipelines.viewer import ViewerConfig, build_site


def _faces(side: int) -> list[np.ndarray]:
    import matplotlib
    import skimage.data

    grace = np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB"))
    crops = [skimage.data.astronaut()[0:300, 120:420], grace[40:440, 100:500]]
    return [np.asarray(Image.fromarray(c).resize((side, side))) for c in crops]


def make_build(root: Path, n: int, side: int) -> Path:
    """``n`` samples, 3 instruction rows each (det, age with 2 masks, rq_box), images embedded (distinct)."""
    rng = np.random.default_rng(0)
    faces = _faces(side)
    yy, xx = np.mgrid[:side, :side]
    (root / "instruct").mkdir(parents=True)
    rows = []
    for k in range(n):
        rgb = faces[k % 2].astype(np.int16) + rng.integers(-3, 4, size=(1, 1, 3))  # distinct bytes per sample
        buf = io.BytesIO()
        Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, format="PNG")
        image = {"bytes": buf.getvalue(), "path": None}
        cy, cx, r = rng.uniform(0.3, 0.7, 3)
        m1 = (yy / side - cy) ** 2 + (xx / side - cx) ** 2 < (0.05 + 0.1 * r) ** 2
        m2 = np.zeros_like(m1)
        m2[int(side * 0.7) : int(side * 0.8), int(side * 0.3) : int(side * 0.7)] = True
        base = dict(
            sample_id=f"s{k:06d}",
            image=image,
            label="fake",
            method=["Deepfakes", "Face2Face"][k % 2],
            category="FS",
            group=f"g{k}",
            split="train",
            masks=[],
            mask_phrases=[],
            mask_node_ids=[],
            query_mask=None,
            query_box=None,
        )
        q = [{"role": "user", "content": "<image>\nExplain the artifacts."}]
        rows += [
            dict(base, id=f"{k}-det", task="det", messages=[q[0], {"role": "assistant", "content": "Yes."}]),
            dict(
                base,
                id=f"{k}-age",
                task="age",
                masks=[encode(m1), encode(m2)],
                mask_phrases=["left eye", "mouth"],
                mask_node_ids=["left_eye", "mouth"],
                messages=[
                    q[0],
                    {
                        "role": "assistant",
                        "content": "The [left eye](left_eye) is blurred and the [mouth](mouth) has a seam. " * 3,
                    },
                ],
            ),
            dict(
                base,
                id=f"{k}-box",
                task="rq_box",
                query_box=[10.0, 10.0, 60.0, 60.0],
                messages=[q[0], {"role": "assistant", "content": "No."}],
            ),
        ]
    pq.write_table(pa.Table.from_pylist(rows, schema=INSTRUCT_SCHEMA), root / "instruct" / "train.parquet")
    return root


def baseline(build: Path, max_side: int) -> float:
    t0 = time.perf_counter()
    seen = set()
    for batch in pq.ParquetFile(build / "instruct" / "train.parquet").iter_batches(64, columns=["sample_id", "image"]):
        for r in batch.to_pylist():
            if r["sample_id"] in seen:
                continue
            seen.add(r["sample_id"])
            im = Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB")
            im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            im.save(io.BytesIO(), format="JPEG", quality=85)
    return time.perf_counter() - t0


def browser_times(site: Path, pages: int) -> dict:
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("FIFA_CHROMIUM", "/usr/bin/chromium")
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=flags)
        page = b.new_page(viewport={"width": 1280, "height": 1000})
        t0 = time.perf_counter()
        page.goto((site / "index.html").as_uri())
        page.wait_for_selector("body[data-rendered]")
        first = time.perf_counter() - t0
        steps = []
        for _ in range(min(pages - 1, 5)):
            before = page.get_attribute("body", "data-rendered")
            t0 = time.perf_counter()
            page.click("#next")
            page.wait_for_function("(b) => document.body.dataset.rendered !== b", arg=before)
            steps.append(time.perf_counter() - t0)
        b.close()
    return {"first_render_s": round(first, 3), "next_page_s": round(float(np.mean(steps)), 3) if steps else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--side", type=int, default=384, help="side of the input images")
    ap.add_argument("--max-side", type=int, default=256, help="side of the site images")
    ap.add_argument("--page-size", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the result to this file")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build = make_build(Path(tmp) / "build", args.samples, args.side)
        out = {"samples": args.samples, "load_before": os.getloadavg()[0], "machine": machine()}
        times: dict[str, list[float]] = {"baseline_s": [], "build_s_workers_1": [], "build_s_workers_all": []}
        for rep in range(args.repeats):  # interleaved, best of each: load on a shared machine comes and goes
            times["baseline_s"].append(baseline(build, args.max_side))
            for workers in (1, 0):
                cfg = ViewerConfig(page_size=args.page_size, max_side=args.max_side, workers=workers, progress=False)
                site = Path(tmp) / f"site{workers}_{rep}"
                s = build_site(build, site, cfg)
                times[f"build_s_workers_{workers or 'all'}"].append(s.seconds)
        out |= {k: round(min(v), 3) for k, v in times.items()}
        out["ratio_1_thread_vs_baseline"] = round(out["build_s_workers_1"] / out["baseline_s"], 2)
        out["load_after"] = os.getloadavg()[0]
        data = sum(f.stat().st_size for f in (site / "data").iterdir())
        imgs = sum(f.stat().st_size for f in (site / "img").iterdir())
        out |= {
            "data_kb_per_sample": round(data / 1024 / args.samples, 2),
            "img_kb_per_sample": round(imgs / 1024 / args.samples, 2),
            "largest_data_file_kb": round(max(f.stat().st_size for f in (site / "data").iterdir()) / 1024, 1),
            "data_files": len(list((site / "data").iterdir())),
        }
        try:
            out |= browser_times(site, s.pages)
        except Exception as e:  # no Chromium: the build numbers still stand
            print(f"browser timing skipped: {e}", file=sys.stderr)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
