"""The files and manifest rows of one forge output folder (:func:`fifa.annotator.forge.forge` decides what
goes in): real bases as PNG, their JPEG copies, fakes, truth masks, and one manifest row each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from fifa.core import rle as rle_utils

from .forge_edits import CATEGORY
from .forge_faces import BaseFace


def manifest_schema():
    """The columns of a forge manifest: ``fifa-annotate run``'s manifest columns (its ``identities`` left out: a
    forge's group is its identity) with the forge's ground truth."""
    import pyarrow as pa

    from .manifest import MANIFEST_SCHEMA

    shared = [f for f in MANIFEST_SCHEMA if f.name != "identities"]
    return pa.schema(
        [
            *shared,
            ("truth", pa.list_(pa.string())),
            ("truth_target", pa.string()),
            ("truth_mask", rle_utils.RLE_TYPE),
            ("edit", pa.string()),
            ("pair_kind", pa.string()),
            ("collection", pa.string()),
        ]
    )


class ForgeWriter:
    """Files and rows of one forge output folder."""

    def __init__(self, out: Path):
        self.out = out
        for d in ("images/real", "images/fake", "masks"):
            (out / d).mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self.jpeg_sources: dict[tuple[str, int], str] = {}

    def rel(self, p: Path) -> str:
        return str(p.relative_to(self.out))

    def real(self, b: BaseFace) -> None:
        p = self.out / "images" / "real" / f"{b.name}.png"
        Image.fromarray(b.image).save(p)
        self.rows.append(self.row(f"real_{b.name}", self.rel(p), None, "real", b, pair_kind="pristine"))

    def jpeg_source(self, b: BaseFace, q: int) -> str:
        """A JPEG copy of a base (a re-encoded real row); its path, made once per (base, quality)."""
        key = (b.name, q)
        if key not in self.jpeg_sources:
            p = self.out / "images" / "real" / f"{b.name}_q{q}.jpg"
            Image.fromarray(b.image).save(p, quality=q)
            self.jpeg_sources[key] = self.rel(p)
            self.rows.append(
                self.row(
                    f"real_{b.name}_q{q}",
                    self.rel(p),
                    self.pristine(b),
                    "real",
                    b,
                    edit={"reencode": "jpeg", "quality": q},
                    pair_kind="reencoded",
                )
            )
        return self.jpeg_sources[key]

    def pristine(self, b: BaseFace) -> str:
        return f"images/real/{b.name}.png"

    def image(self, arr: np.ndarray, stem: str, quality: int | None) -> str:
        p = self.out / "images" / "fake" / f"{stem}.{'jpg' if quality else 'png'}"
        if quality:
            Image.fromarray(arr).save(p, quality=int(quality))
        else:
            Image.fromarray(arr).save(p)
        return self.rel(p)

    def mask(self, m: np.ndarray, sid: str) -> None:
        Image.fromarray((m * 255).astype(np.uint8)).save(self.out / "masks" / f"{sid}.png")

    def row(
        self,
        sid,
        image_path,
        source_path,
        label,
        b: BaseFace,
        *,
        method=None,
        truth=(),
        target=None,
        mask=None,
        edit=None,
        pair_kind,
    ):
        h, w = b.image.shape[:2]
        return dict(
            sample_id=sid,
            image_path=image_path,
            source_path=source_path,
            label=label,
            method=method,
            category=CATEGORY[method] if method else "real",
            group=b.group,
            truth=list(truth),
            truth_target=target,
            truth_mask=rle_utils.encode(mask) if mask is not None else rle_utils.empty(h, w),
            edit=json.dumps(edit, sort_keys=True) if edit is not None else None,
            pair_kind=pair_kind,
            collection="fifa-forge",
        )
