"""Bad and unusual input images: each becomes a clear ImageError code or a correct RGB array."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fifa.concept_tree.imageio import ImageError, LoadOptions, load_rgb


def _code(path, **kw) -> str:
    with pytest.raises(ImageError) as e:
        load_rgb(path, **kw)
    assert e.value.message
    return e.value.code


def test_missing_file(tmp_path):
    assert _code(tmp_path / "nope.jpg") == "missing_file"


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    assert _code(p) == "empty_file"


def test_not_an_image(tmp_path):
    p = tmp_path / "text.png"
    p.write_text("this is not an image")
    assert _code(p) == "not_an_image"


def test_truncated_jpeg(tmp_path, grace_hopper_path):
    data = grace_hopper_path.read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    assert _code(p) == "truncated"


def test_decompression_bomb_is_refused(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(p)  # 100 Mpx, a few kB on disk
    assert p.stat().st_size < 100_000
    assert _code(p) == "decompression_bomb"
    assert _code(p, options=LoadOptions(max_pixels=1000)) == "decompression_bomb"


def test_tiny_image(tmp_path):
    p = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(p)
    assert _code(p) == "too_small"


def test_grayscale_becomes_rgb(tmp_path, astronaut_rgb):
    p = tmp_path / "gray.png"
    Image.fromarray(astronaut_rgb).convert("L").save(p)
    a = load_rgb(p)
    assert a.shape == (512, 512, 3) and a.dtype == np.uint8
    assert np.array_equal(a[..., 0], a[..., 1])


def test_rgba_is_composited_on_white(tmp_path, astronaut_rgb):
    rgba = np.dstack([astronaut_rgb, np.full(astronaut_rgb.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(p)
    a = load_rgb(p)
    assert a.shape == (512, 512, 3)
    assert (a[:10, :10] == 255).all()
    assert np.array_equal(a[100:, 100:], astronaut_rgb[100:, 100:])


def test_16_bit_png(tmp_path, astronaut_rgb):
    g16 = np.asarray(Image.fromarray(astronaut_rgb).convert("L"), dtype=np.uint16) * 257
    p = tmp_path / "g16.png"
    Image.fromarray(g16).save(p)
    assert Image.open(p).mode.startswith("I")
    a = load_rgb(p)
    gray8 = np.asarray(Image.fromarray(astronaut_rgb).convert("L"))
    assert a.dtype == np.uint8 and np.abs(a[..., 0].astype(int) - gray8).max() <= 1


def test_cmyk_jpeg(tmp_path, astronaut_rgb):
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(astronaut_rgb).convert("CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    a = load_rgb(p)
    assert a.shape == (512, 512, 3)
    assert np.abs(a.astype(int) - astronaut_rgb).mean() < 12


def test_exif_orientation_is_respected(tmp_path, grace_hopper_rgb):
    # stored rotated 90 degrees counter-clockwise; orientation 6 says "rotate clockwise to display"
    stored = np.ascontiguousarray(np.rot90(grace_hopper_rgb, k=1))
    im = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "rotated.jpg"
    im.save(p, exif=exif.tobytes(), quality=95)
    a = load_rgb(p)
    assert a.shape == grace_hopper_rgb.shape
    assert np.abs(a.astype(int) - grace_hopper_rgb).mean() < 6


def test_bytes_input(astronaut_rgb):
    buf = io.BytesIO()
    Image.fromarray(astronaut_rgb).save(buf, format="PNG")
    assert np.array_equal(load_rgb(buf.getvalue()), astronaut_rgb)


def test_fast_decode_gives_pillows_pixels(tmp_path):
    """The OpenCV fast path (plain 8-bit RGB JPEG/PNG) returns exactly what the Pillow path returns, and
    every other case (16-bit, EXIF rotation, alpha, truncation) still goes through Pillow's rules."""
    import io

    import cv2
    from PIL import Image, ImageOps

    from fifa.concept_tree import imageio
    from fifa.concept_tree.imageio import ImageError, load_rgb

    rng = np.random.default_rng(0)
    rgb = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    rgb[10:30, 10:40] = (200, 40, 90)
    files = {}
    for q in (60, 95):
        b = io.BytesIO()
        Image.fromarray(rgb).save(b, "JPEG", quality=q)
        files[f"q{q}.jpg"] = b.getvalue()
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, "PNG")
    files["rgb.png"] = b.getvalue()
    files["rgb16.png"] = cv2.imencode(".png", (rgb.astype(np.uint16) * 257 + 3)[:, :, ::-1])[1].tobytes()
    b = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the fast path must leave it to Pillow
    Image.fromarray(rgb).save(b, "JPEG", quality=90, exif=exif)
    files["rot.jpg"] = b.getvalue()
    b = io.BytesIO()
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(b, "PNG")
    files["rgba.png"] = b.getvalue()
    taken = []
    real = imageio._decode_plain_rgb
    imageio._decode_plain_rgb = lambda im, data: taken.append(1) or real(im, data)
    try:
        for name, data in files.items():
            ref = imageio._to_rgb(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
            got = load_rgb(data)
            assert got.shape == ref.shape and np.array_equal(got, ref), name
    finally:
        imageio._decode_plain_rgb = real
    assert len(taken) == len(files)
    with pytest.raises(ImageError) as e:
        load_rgb(files["q95.jpg"][: len(files["q95.jpg"]) // 2])
    assert e.value.code == "truncated"
