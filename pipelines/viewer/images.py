"""Images of a viewer site: each input image once, downscaled to JPEG, under a content-addressed name.

``SITE/img/<sha256 of the JPEG, 20 hex>.jpg``: the same picture used by many rows (or two
builds) is stored once, and no name or path of the building machine reaches the site.

Where an image comes from:

* ``{bytes, path}`` structs (builds, releases): the bytes when embedded, else the path,
  resolved against the source's image roots;
* ``image_path`` / ``source_path`` strings (annotation runs): absolute paths as the annotator
  resolved them, or relative to the run folder.

A relative path must stay inside its image root (no ``..`` escape, no symlink out); an absolute
path is refused for releases, which never hold a path of the building machine (a released
dataset must not make the viewer copy the viewer's own files into a site).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from fifa.concept_tree.imageio import ImageError, LoadOptions, load_rgb
from fifa.core.atomic import write_bytes_atomic
from fifa.core.errors import FifaError

_LOAD = LoadOptions(min_side=1)


@dataclass(frozen=True)
class ImageRef:
    """A stored site image: its site-relative URL and its original size (masks use that size)."""

    src: str  # "img/<hash>.jpg"
    width: int  # of the original image
    height: int

    def to_json(self) -> dict:
        return {"src": self.src, "w": self.width, "h": self.height}


class ImageMissing(FifaError):
    """An image that cannot be shown; the message never holds an absolute path."""


class ImageStore:
    """Writes site images into ``out_dir`` (``SITE/img``), once per distinct input."""

    def __init__(
        self, out_dir: Path, roots: list[Path], max_side: int = 512, quality: int = 85, allow_absolute: bool = True
    ):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.roots = [Path(r) for r in roots]
        self.max_side = int(max_side)
        self.quality = int(quality)
        self.allow_absolute = allow_absolute
        self._by_key: dict[str, ImageRef] = {}
        self.written: set[str] = set()

    # ------------------------------------------------------------------ sources
    def resolve(self, path: str) -> Path:
        """The file a stored path names, or :class:`ImageMissing` with a reason."""
        p = Path(path)
        if p.is_absolute():
            if not self.allow_absolute:
                raise ImageMissing("absolute image path refused in a release")
            if p.is_file():
                return p
            raise ImageMissing(f"image file not found: {p.name}")
        for root in self.roots:
            cand = (root / p).resolve()
            if not cand.is_relative_to(root.resolve()):
                raise ImageMissing(f"image path leaves its root: {path}")
            if cand.is_file():
                return cand
        raise ImageMissing(f"image file not found: {path}")

    def add(self, image: dict | str | None) -> ImageRef:
        """Store an image given as ``{bytes, path}`` or a path string; :class:`ImageMissing` if it can't."""
        if image is None:
            raise ImageMissing("no image")
        if isinstance(image, dict):
            data, path = image.get("bytes"), image.get("path")
            if data:
                return self._add_bytes(bytes(data))
            if not path:
                raise ImageMissing("image has neither bytes nor path")
            image = path
        key = "path:" + str(image)
        if key not in self._by_key:
            file = self.resolve(image)
            self._by_key[key] = self._add_bytes(file.read_bytes())
        return self._by_key[key]

    # ------------------------------------------------------------------ storing
    def _add_bytes(self, data: bytes) -> ImageRef:
        key = "sha:" + hashlib.sha256(data).hexdigest()
        ref = self._by_key.get(key)
        if ref is None:
            ref = self._by_key[key] = self._encode(data)
        return ref

    def _encode(self, data: bytes) -> ImageRef:
        try:
            rgb = load_rgb(data, _LOAD)
        except ImageError as e:
            raise ImageMissing(f"image not readable ({e.code})") from None
        h, w = rgb.shape[:2]
        im = Image.fromarray(rgb)
        scale = self.max_side / max(h, w)
        if scale < 1:
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=self.quality, optimize=True)
        jpeg = buf.getvalue()
        name = hashlib.sha256(jpeg).hexdigest()[:20] + ".jpg"
        target = self.out_dir / name
        if not target.is_file():
            write_bytes_atomic(target, jpeg, durable=False)  # content-addressed: a rerun rewrites it
        self.written.add(name)
        return ImageRef(f"img/{name}", w, h)

    def prune(self) -> int:
        """Delete site images this build did not write (left by an earlier build of the site)."""
        n = 0
        for p in self.out_dir.glob("*.jpg"):
            if p.name not in self.written and len(p.stem) == 20:
                p.unlink()
                n += 1
        return n
