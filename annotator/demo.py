"""The bundled demo pairs: pseudo-forgeries of the two public-domain sample photos.

One definition used by ``fifa-annotate run --demo`` and by ``make demo`` (``python -m fifa.demo``).
"""

from __future__ import annotations

from pathlib import Path

#: A few 384 px face crops (and a mirror) of the two bundled photos: enough variety, fast.
DEMO_BASES = ("crop1.9_384", "crop1.9_384_mirror", "crop2.6_384")


def demo_manifest(folder: str | Path, n: int = 12, seed: int = 0, identities: str = "bundled") -> Path:
    """``folder/manifest.parquet`` of forged demo pairs (made once, reused when present); ``identities``
    as :func:`fifa.annotator.forge.forge` (``all`` adds scikit-image's lfw faces: many identities)."""
    from .forge import forge

    folder = Path(folder)
    man = folder / "manifest.parquet"
    if man.is_file():
        return man
    return forge(folder, n=n, seed=seed, base_tags=DEMO_BASES, identities=identities)
