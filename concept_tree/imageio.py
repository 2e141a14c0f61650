"""Safe image loading: every way an input image can be bad becomes an :class:`ImageError`.

One bad image must never stop a run, so loaders raise one exception type with a
stable ``code`` (recorded per row) and a human ``message``.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fifa.core.errors import FifaError

#: Images above this many pixels are refused (decompression-bomb guard).
DEFAULT_MAX_PIXELS = 64_000_000
#: Images smaller than this on their short side are refused.
DEFAULT_MIN_SIDE = 32

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class ImageError(FifaError):
    """An input image that cannot be used; ``code`` is stable and machine-readable."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class LoadOptions:
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = DEFAULT_MIN_SIDE


def load_rgb(source: str | os.PathLike | bytes, options: LoadOptions = LoadOptions()) -> np.ndarray:
    """Load an image as HxWx3 uint8 RGB, honouring EXIF orientation.

    Converts grayscale, palette, RGBA (composited on white), CMYK and 16-bit
    images. Raises :class:`ImageError` with codes ``missing_file``, ``empty_file``,
    ``not_an_image``, ``truncated``, ``decompression_bomb``, ``too_small``.
    """
    name = "<bytes>"
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise ImageError("missing_file", f"no such file: {path}")
        data = path.read_bytes()
    if not data:
        raise ImageError("empty_file", f"file is empty (0 bytes): {name}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > options.max_pixels:
                raise ImageError(
                    "decompression_bomb", f"{w}x{h} = {w * h} pixels exceeds the limit of {options.max_pixels}"
                )
            fast = _decode_plain_rgb(im, data)
            if fast is not None:
                return _check_size(fast, options)
            im.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("decompression_bomb", f"refused as a decompression bomb: {e}") from None
    except UnidentifiedImageError:
        raise ImageError("not_an_image", f"not a readable image: {name}") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e)
        code = "truncated" if "truncated" in msg or "broken data stream" in msg else "not_an_image"
        raise ImageError(code, f"cannot decode {name}: {msg}") from None
    im = ImageOps.exif_transpose(im)
    return _check_size(_to_rgb(im), options)


def _check_size(arr: np.ndarray, options: LoadOptions) -> np.ndarray:
    if min(arr.shape[:2]) < options.min_side:
        raise ImageError(
            "too_small", f"image is {arr.shape[1]}x{arr.shape[0]}, below the minimum side of {options.min_side} px"
        )
    return arr


def _decode_plain_rgb(im: Image.Image, data: bytes) -> np.ndarray | None:
    """The common case decoded by OpenCV (same pixels as Pillow, 2x faster for JPEG): an 8-bit RGB
    JPEG without EXIF rotation, or an 8-bit RGB PNG, whose data ends as a whole file does. Anything
    else (other modes, orientation, a truncated file) returns None and takes Pillow's careful path."""
    if im.mode != "RGB":
        return None
    if im.format == "JPEG":
        if im.getexif().get(0x0112, 1) != 1 or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
            return None
    elif im.format != "PNG" or b"IEND" not in data[-12:] or im.info.get("transparency") is not None:
        return None
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape[:2] != (im.size[1], im.size[0]):
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _to_rgb(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = (a - a.min()) / max(a.max() - a.min(), 1e-12)
        g = (a * 255 + 0.5).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(bg, rgba).convert("RGB"))
    if mode == "RGB":
        return np.asarray(im)
    if mode.startswith("RGB") and ";16" in mode or mode == "RGB;16":  # pragma: no cover - rare PIL modes
        return np.asarray(im.convert("RGB"))
    return np.asarray(im.convert("RGB"))


def list_images(path: str | os.PathLike) -> list[Path]:
    """The image files in a folder (sorted, recursive), or the path itself if it is a file."""
    p = Path(path)
    if p.is_dir():
        return sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
    return [p]
