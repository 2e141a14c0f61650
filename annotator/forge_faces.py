"""Base faces of the forge: the real rows every fake is made from.

* ``bundled``: the two public-domain photos shipped with scikit-image (``astronaut``) and
  matplotlib (``grace_hopper.jpg``), each expanded into variants: the full photo, face-centred
  crops at several sizes, their mirror images, a greyscale crop and small faces pasted into a
  larger frame (scikit-image's ``rocket`` photo, NASA, public domain).
* ``lfw``: the 100 faces of scikit-image's ``lfw_subset`` (grey, 25x25), upscaled to a given
  size and converted to RGB; one variant each. The subset carries no person labels, so each
  face is its own identity (``lfw_000`` ... ``lfw_099``).

Only variants in which MediaPipe finds a face are kept; the others are counted as skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

IDENTITY_SETS = ("bundled", "lfw", "all")
#: (margin, output size) of the face-centred square crops of a photo.
CROPS = ((1.9, 384), (2.6, 384), (1.9, 512), (2.3, 320))
#: Small faces in a full frame: crop margin and the pasted side (px) in the 640x427 frame.
IN_FRAME = ((1.6, 128), (1.6, 176))
GREY_TAGS = ("crop1.9_384_grey",)


@dataclass
class BaseFace:
    name: str  # file stem
    group: str  # identity
    image: np.ndarray
    regions: object  # FaceRegions
    grey: bool = False  # R = G = B

    @property
    def face_side(self) -> float:
        x0, y0, x1, y1 = self.regions.face_box
        return float(max(x1 - x0, y1 - y0, 1))

    @property
    def small_face(self) -> bool:
        """The face spans less than a third of the frame's shorter side."""
        return self.face_side < min(self.image.shape[:2]) / 3


@dataclass
class FaceSource:
    identity: str
    image: np.ndarray
    photo: bool = True  # a photo to crop into variants; False: a face crop used as it is


@dataclass
class BaseSet:
    bases: list[BaseFace]
    skipped: list[str] = field(default_factory=list)  # variants (or identities) without a detectable face


def grace_hopper_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def bundled_faces() -> list[FaceSource]:
    """The two public-domain photos."""
    import skimage.data

    return [
        FaceSource("astronaut", skimage.data.astronaut()),
        FaceSource("grace_hopper", np.asarray(Image.open(grace_hopper_path()).convert("RGB"))),
    ]


def lfw_faces(size: int = 256, limit: int | None = None) -> list[FaceSource]:
    """The faces of scikit-image's ``lfw_subset`` upscaled (bicubic) to ``size`` px, as RGB."""
    import skimage.data

    if size < 64:
        raise ValueError(f"identity size must be at least 64 px, not {size}")
    faces = skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
    if limit is not None:
        faces = faces[: max(0, int(limit))]
    out = []
    for i, f in enumerate(faces):
        g = np.clip(np.round(f * 255.0), 0, 255).astype(np.uint8)
        up = cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)
        out.append(FaceSource(f"lfw_{i:03d}", np.repeat(up[:, :, None], 3, axis=2), photo=False))
    return out


def identity_faces(identities: str, size: int = 256, limit: int | None = None) -> list[FaceSource]:
    if identities not in IDENTITY_SETS:
        raise ValueError(f"identities must be one of {', '.join(IDENTITY_SETS)}, not {identities!r}")
    out: list[FaceSource] = []
    if identities in ("bundled", "all"):
        out += bundled_faces()
    if identities in ("lfw", "all"):
        out += lfw_faces(size, limit)
    return out


def crop_face(img: np.ndarray, box, margin: float, size: int) -> np.ndarray | None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.08 * (y1 - y0)
    side = max(x1 - x0, y1 - y0) * margin
    h, w = img.shape[:2]
    side = min(side, h, w)
    a = int(round(min(max(cx - side / 2, 0), w - side)))
    b = int(round(min(max(cy - side / 2, 0), h - side)))
    s = int(round(side))
    if s < 64:
        return None
    crop = img[b : b + s, a : a + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_CUBIC)


def grey(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[:, :, None], 3, axis=2)


def in_frame(face: np.ndarray, side: int, slot: int) -> np.ndarray:
    """``face`` resized to ``side`` px and pasted into the 640x427 ``rocket`` photo (at one of two slots)."""
    import skimage.data

    frame = skimage.data.rocket().copy()
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    y, x = (60, 300) if slot % 2 == 0 else (150, 40)
    frame[y : y + side, x : x + side] = small
    return frame


def photo_variants(img: np.ndarray, box, slot: int) -> list[tuple[str, np.ndarray, bool]]:
    """(tag, image, grey) of every variant of one photo whose face box is ``box``."""
    cands: list[tuple[str, np.ndarray, bool]] = [("full", img, False)]
    for margin, size in CROPS:
        c = crop_face(img, box, margin, size)
        if c is not None:
            cands.append((f"crop{margin:g}_{size}", c, False))
    cands += [(t + "_mirror", np.ascontiguousarray(im[:, ::-1]), g) for t, im, g in list(cands)]
    base = crop_face(img, box, 1.9, 384)
    if base is not None:
        cands.append(("crop1.9_384_grey", grey(base), True))
    for margin, side in IN_FRAME:
        c = crop_face(img, box, margin, 384)
        if c is not None:
            cands.append((f"inframe{side}", in_frame(c, side, slot), False))
    return cands


def base_variants(faces: list[FaceSource], segmenter, tags: tuple[str, ...] | None = None) -> BaseSet:
    """Every variant of every face in which a face is detected (``tags`` keeps only the named ones)."""
    out = BaseSet([])
    for slot, src in enumerate(faces):
        if not src.photo:
            reg = segmenter.segment(src.image)
            if reg.ok:
                out.bases.append(BaseFace(src.identity, src.identity, src.image, reg, _is_grey(src.image)))
            else:
                out.skipped.append(src.identity)
            continue
        r = segmenter.segment(src.image)
        if not r.ok:
            log.warning("no face in %s: skipped", src.identity)
            out.skipped.append(src.identity)
            continue
        for tag, im, is_grey in photo_variants(src.image, r.face_box, slot):
            if tags is not None and tag not in tags:
                continue
            reg = segmenter.segment(im)
            if reg.ok:
                out.bases.append(BaseFace(f"{src.identity}_{tag}", src.identity, im, reg, is_grey))
            else:
                out.skipped.append(f"{src.identity}_{tag}")
    if out.skipped:
        log.info("%d face image(s) without a detectable face skipped", len(out.skipped))
    return out


def _is_grey(img: np.ndarray) -> bool:
    return bool(img.ndim == 3 and (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())
