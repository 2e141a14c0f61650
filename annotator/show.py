"""`fifa-annotate show`: the fake, its source, the artifact mask and the labelled regions side by side."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from fifa.concept_tree.imageio import load_rgb
from fifa.core import marks
from fifa.core import rle as rle_utils
from fifa.core.records import AnnotationRecord, Segment

from .store import read_annotations

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
]


def find_row(out_dir: str | Path, sample_id: str) -> AnnotationRecord | None:
    """The record of ``sample_id`` in an annotation output folder (None: not there)."""
    t = read_annotations(out_dir)
    for r in AnnotationRecord.from_arrow(t):
        if r.sample_id == sample_id:
            return r
    return None


def _focus_box(mask: np.ndarray, shown: list, size: tuple[int, int]):
    h, w = size
    m = mask.copy()
    for s in shown:
        m |= rle_utils.decode(s["mask"])
    ys, xs = np.nonzero(m)
    if not len(ys):
        return None
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    side = max(ys.max() - ys.min(), xs.max() - xs.min()) * 1.6 + 32
    side = max(side, 0.35 * min(h, w))
    y0, x0 = int(max(0, cy - side / 2)), int(max(0, cx - side / 2))
    y1, x1 = int(min(h, cy + side / 2)), int(min(w, cx + side / 2))
    if (y1 - y0) * (x1 - x0) > 0.8 * h * w:
        return None
    return y0, y1, x0, x1


def render(row: AnnotationRecord, out_png: str | Path, dpi: int = 110) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    panels, legend = _panels(row)
    # Images on top; below them the explanation (left) and the region legend (right), side by side.
    n = len(panels)
    fig = plt.figure(figsize=(3.6 * n, 5.6))
    grid = fig.add_gridspec(2, n, height_ratios=(3.2, 1.6))
    for i, (title, im) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(im)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    text_ax = fig.add_subplot(grid[1, : max(1, n - 1)])
    text_ax.axis("off")
    text = marks.strip(row.explanation or row.error or "")
    status = f"[{row.status}] {row.label} {row.method or ''} {row.category or ''}"
    lines = textwrap.wrap(text, 46 * max(1, n - 1))
    if len(lines) > 9:
        lines = lines[:9]
        lines[-1] += " ..."
    text_ax.text(0, 1, status + "\n" + "\n".join(lines), fontsize=7.5, va="top", ha="left", wrap=False)
    if legend and n > 1:
        leg_ax = fig.add_subplot(grid[1, n - 1])
        leg_ax.axis("off")
        leg_ax.legend(
            handles=[Patch(color=c, label=lab) for c, lab in legend], loc="upper left", fontsize=7, frameon=False
        )
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
    return out_png


def _shown_regions(row: AnnotationRecord) -> list[Segment]:
    """The regions to draw: the explanation's segments (first of each node), else the chosen artifact regions."""
    shown: list[Segment] = []
    for s in row.segments:
        if s["node_id"] not in [x["node_id"] for x in shown]:
            shown.append(s)
    if not shown:
        by_id = {r["node_id"]: r for r in row.regions}
        shown = [
            {"node_id": n, "phrase": n.replace("_", " "), "mask": by_id[n]["mask"]}
            for n in row.artifact_regions
            if n in by_id
        ]
    return shown


def _panels(row: AnnotationRecord) -> tuple[list, list]:
    """The image panels (fake, source, artifact mask, regions; zoomed) and the legend's (colour, label) pairs."""
    fake = load_rgb(row.image_path)
    h, w = fake.shape[:2]
    src = None
    if row.source_path:
        try:
            src = load_rgb(row.source_path)
        except Exception:
            src = None
    mask = rle_utils.decode(row.artifact_mask) if row.artifact_mask else np.zeros((h, w), bool)
    panels = [("fake: " + row.sample_id, fake)]
    if src is not None:
        panels.append(("source", src))
    over = fake.astype(np.float32).copy()
    over[mask] = 0.45 * over[mask] + 0.55 * np.array([255, 0, 0], np.float32)
    panels.append((f"artifact mask ({mask.mean():.1%})", over.astype(np.uint8)))
    reg = fake.astype(np.float32) * 0.55
    legend = []
    shown = _shown_regions(row)
    for i, s in enumerate(shown[: len(PALETTE)]):
        m = rle_utils.decode(s["mask"])
        c = np.array(PALETTE[i], np.float32)
        reg[m] = 0.35 * reg[m] + 0.65 * c
        legend.append((np.array(PALETTE[i]) / 255, f"{s['node_id']}: {s['phrase']}"))
    panels.append(("regions", np.clip(reg, 0, 255).astype(np.uint8)))
    # Zoom on what matters: the artifact and the regions, with a margin (whole image if nothing).
    box = _focus_box(mask, shown, (h, w))
    if box is not None:
        y0, y1, x0, x1 = box
        panels = [(t, im[y0:y1, x0:x1] if im.shape[:2] == (h, w) else im) for t, im in panels]
    return panels, legend
