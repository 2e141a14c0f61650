"""Build `concept_tree/data/face_atlas.{png,json,_outlines.npz}`: the concept atlas of the reference face.

The atlas is the concept rules (`concept_tree/segmentation/mesh_regions.py`) evaluated on a fine grid of the
reference layout (`mesh_reference.json`) and smoothed (`concept_tree/segmentation/atlas.py`); the outlines of its
regions ship beside it (`face_atlas_outlines.npz`, so segmentation needs no scipy). Rebuild them
after changing either; `tests/test_segment_evidence.py` and `tests/test_segment_fastpaths.py` fail while the
shipped files are stale.

    .venv/bin/python scripts/build_face_atlas.py
"""

from __future__ import annotations

import time
from pathlib import Path

from fifa.concept_tree.segmentation.atlas import build_atlas, save_atlas

OUT = Path(__file__).resolve().parents[1] / "concept_tree" / "data" / "face_atlas"


def main() -> None:
    t = time.perf_counter()
    atlas = build_atlas()
    save_atlas(atlas, OUT)
    print(
        f"wrote {OUT}.png/.json and {OUT.name}_outlines.npz: {atlas.labels.shape[1]}x{atlas.labels.shape[0]} cells, "
        f"{len(atlas.names)} concepts, {time.perf_counter() - t:.1f} s"
    )


if __name__ == "__main__":
    main()
