"""Tests for photoarchive.imageio: decoding every kind of scan, refusing bad files, atomic writes."""

import os
import stat
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from photoarchive import imageio
from photoarchive.imageio import (
    ImageRejected,
    atomic_output,
    encode_image,
    load_working,
    read_scan,
    to_integer,
    write_atomic,
    write_image,
)

LIMIT = 10**8  # pixels; far above anything these tests write

# What a viewer shows for a file stored with EXIF orientation o, written independently of the module:
# the EXIF 2.3 definitions expressed with numpy.
UPRIGHT = {
    1: lambda s: s,
    2: np.fliplr,  # mirrored horizontally
    3: lambda s: np.rot90(s, 2),  # rotated 180°
    4: np.flipud,  # mirrored vertically
    5: lambda s: np.rot90(np.fliplr(s), 1),  # mirror horizontal + rotate 270° CW (transpose)
    6: lambda s: np.rot90(s, -1),  # rotate 90° CW to view
    7: lambda s: np.rot90(np.fliplr(s), -1),  # mirror horizontal + rotate 90° CW (transverse)
    8: lambda s: np.rot90(s, 1),  # rotate 270° CW (90° CCW) to view
}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _gradient16(width: int = 1000) -> np.ndarray:
    """A 4×width×3 uint16 ramp with `width` distinct levels: 8-bit would keep at most 256."""
    ramp = np.linspace(0, 65535, width).astype(np.uint16)
    return np.stack([np.tile(ramp, (4, 1))] * 3, axis=2)


def _levels(pixels: np.ndarray) -> int:
    return len(np.unique(pixels[..., 0]))


# --------------------------------------------------------------------------------------------------
# 8-bit and 16-bit decoding


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_read_eight_bit_rgb(tmp_path, suffix):
    blocks = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
    rgb = np.kron(blocks, np.ones((8, 8, 1), np.uint8))  # 16×16, flat 8×8 blocks survive JPEG
    Image.fromarray(rgb).save(tmp_path / f"s{suffix}", quality=95)
    scan = read_scan(tmp_path / f"s{suffix}", LIMIT)
    assert scan.bit_depth == 8
    assert scan.pixels.dtype == np.float32 and scan.pixels.shape == (16, 16, 3)
    assert scan.alpha is None
    if suffix == ".png":
        np.testing.assert_allclose(scan.pixels, rgb / 255.0, atol=1e-6)
    else:  # lossy: compare on average and at the block centres
        assert np.abs(scan.pixels - rgb / 255.0).mean() < 0.06
        np.testing.assert_allclose(scan.pixels[4::8, 4::8], blocks / 255.0, atol=0.05)
    # RGB order, not OpenCV's BGR: the top-left block is red, the bottom-left blue
    assert scan.pixels[4, 4, 0] > 0.9 and scan.pixels[4, 4, 2] < 0.1
    assert scan.pixels[12, 4, 2] > 0.9 and scan.pixels[12, 4, 0] < 0.1


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_read_sixteen_bit_keeps_fine_gradient(tmp_path, suffix):
    stored = _gradient16()
    stored[..., 1] //= 2  # channels differ, so a BGR/RGB mix-up shows
    stored[..., 2] //= 4
    cv2.imwrite(str(tmp_path / f"g{suffix}"), stored[..., ::-1])  # OpenCV writes BGR
    scan = read_scan(tmp_path / f"g{suffix}", LIMIT)
    assert scan.bit_depth == 16
    assert _levels(scan.pixels) == 1000  # not quantised to 256 levels
    np.testing.assert_allclose(scan.pixels, stored / 65535.0, atol=1e-6)


def test_read_sixteen_bit_grayscale_png(tmp_path):
    gray = _gradient16()[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")  # Pillow mode I;16
    scan = read_scan(tmp_path / "g.png", LIMIT)
    assert scan.bit_depth == 16
    assert scan.pixels.shape == (4, 1000, 3)
    assert _levels(scan.pixels) == 1000
    np.testing.assert_allclose(scan.pixels, np.repeat(gray[..., None] / 65535.0, 3, axis=2), atol=1e-6)


def test_read_grayscale_gives_three_equal_channels(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray).save(tmp_path / "g.png")
    scan = read_scan(tmp_path / "g.png", LIMIT)
    assert scan.mode == "L" and scan.bit_depth == 8 and scan.alpha is None
    assert scan.pixels.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(scan.pixels[..., c], gray / 255.0, atol=1e-6)


def test_read_gray_alpha_keeps_alpha_and_composites_over_white(tmp_path):
    gray = np.full((4, 4), 100, np.uint8)
    alpha = np.array([[0, 64, 128, 255]] * 4, np.uint8)
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(tmp_path / "la.png")
    scan = read_scan(tmp_path / "la.png", LIMIT)
    a = alpha / 255.0
    np.testing.assert_allclose(scan.alpha, a, atol=1e-6)
    expected = 100 / 255.0 * a + (1 - a)
    for c in range(3):
        np.testing.assert_allclose(scan.pixels[..., c], expected, atol=1e-5)
    assert any("alpha" in note for note in scan.notes)


def test_read_rgba_keeps_alpha_and_composites_over_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200  # reddish
    rgba[..., 3] = [[0, 128, 255], [255, 128, 0]]
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    scan = read_scan(tmp_path / "a.png", LIMIT)
    a = rgba[..., 3] / 255.0
    np.testing.assert_allclose(scan.alpha, a, atol=1e-6)
    np.testing.assert_allclose(scan.pixels[0, 0], [1, 1, 1], atol=1e-6)  # fully transparent → white
    np.testing.assert_allclose(scan.pixels[0, 2], [200 / 255, 0, 0], atol=1e-6)  # opaque → its colour
    np.testing.assert_allclose(scan.pixels[..., 1], 1 - a, atol=1e-5)  # green 0 over white
    assert any("alpha" in note for note in scan.notes)


def test_read_sixteen_bit_rgba_png(tmp_path):
    bgra = np.zeros((2, 2, 4), np.uint16)
    bgra[..., 2] = 65535  # red
    bgra[..., 3] = [[0, 65535], [32768, 65535]]
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    scan = read_scan(tmp_path / "a.png", LIMIT)
    assert scan.bit_depth == 16
    np.testing.assert_allclose(scan.alpha, bgra[..., 3] / 65535.0, atol=1e-6)
    np.testing.assert_allclose(scan.pixels[0, 0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(scan.pixels[0, 1], [1, 0, 0], atol=1e-6)


def test_read_palette_png(tmp_path):
    rng = np.random.default_rng(3)
    palette_image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).quantize(8)
    palette_image.save(tmp_path / "p.png")
    scan = read_scan(tmp_path / "p.png", LIMIT)
    assert scan.mode == "P" and scan.bit_depth == 8 and scan.alpha is None
    np.testing.assert_allclose(scan.pixels, np.asarray(palette_image.convert("RGB")) / 255.0, atol=1e-6)


def test_read_palette_png_with_transparency(tmp_path):
    palette_image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    palette_image.putpalette([255, 0, 0, 0, 0, 255])
    palette_image.save(tmp_path / "p.png", transparency=0)
    scan = read_scan(tmp_path / "p.png", LIMIT)
    np.testing.assert_allclose(scan.alpha, [[0, 1], [1, 0]])
    np.testing.assert_allclose(scan.pixels[0, 0], [1, 1, 1])  # transparent red → white
    np.testing.assert_allclose(scan.pixels[0, 1], [0, 0, 1])


def test_read_cmyk_jpeg_converts_to_rgb_with_note(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 0, 0)).save(tmp_path / "c.jpg", quality=95)  # pure magenta ink
    scan = read_scan(tmp_path / "c.jpg", LIMIT)
    assert scan.mode == "CMYK" and scan.pixels.shape == (16, 16, 3)
    np.testing.assert_allclose(scan.pixels.mean(axis=(0, 1)), [1, 0, 1], atol=0.05)
    assert any("CMYK" in note for note in scan.notes)


def test_read_multipage_tiff_uses_first_page(tmp_path):
    first = Image.new("RGB", (8, 6), (255, 0, 0))
    second = Image.new("RGB", (8, 6), (0, 0, 255))
    first.save(tmp_path / "m.tif", save_all=True, append_images=[second])
    scan = read_scan(tmp_path / "m.tif", LIMIT)
    np.testing.assert_allclose(scan.pixels, np.broadcast_to([1, 0, 0], (6, 8, 3)))
    assert any("2 pages" in note and "first page" in note for note in scan.notes)


def test_read_multipage_sixteen_bit_tiff_uses_first_page(tmp_path):
    page = _gradient16(300)
    tifffile.imwrite(tmp_path / "m.tif", np.stack([page, page // 3]), photometric="rgb")
    scan = read_scan(tmp_path / "m.tif", LIMIT)
    assert scan.bit_depth == 16
    np.testing.assert_allclose(scan.pixels, page / 65535.0, atol=1e-6)
    assert any("2 pages" in note for note in scan.notes)


# --------------------------------------------------------------------------------------------------
# EXIF orientation: the output is upright


def _write_oriented(path: Path, stored: np.ndarray, orientation: int) -> None:
    """Write `stored` (uint8 or uint16 RGB) unrotated, tagged with EXIF `orientation`."""
    suffix = path.suffix
    if suffix == ".tif":
        tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, "H", 1, orientation, True)])
    elif stored.dtype == np.uint16:  # 16-bit PNG: OpenCV encodes, we add an eXIf chunk after IHDR
        raw = cv2.imencode(".png", stored[..., ::-1])[1].tobytes()
        exif = _exif(orientation).tobytes().removeprefix(b"Exif\x00\x00")
        path.write_bytes(raw[:33] + _png_chunk(b"eXIf", exif) + raw[33:])
    else:
        Image.fromarray(stored).save(path, exif=_exif(orientation), quality=95)


_ORIENTATION_CASES = [(kind, o) for kind in ("png8", "jpg8", "tif8", "png16", "tif16") for o in range(1, 9)]


@pytest.mark.parametrize(("kind", "orientation"), _ORIENTATION_CASES)
def test_exif_orientation_output_is_upright(tmp_path, kind, orientation):
    sixteen = kind.endswith("16")
    # 3×5 flat blocks of 8 px (survive JPEG), every block a different colour, non-square
    rng = np.random.default_rng(orientation)
    blocks = rng.integers(0, 256, (3, 5, 3)).astype(np.uint8)
    stored = np.kron(blocks, np.ones((8, 8, 1), np.uint8))
    if sixteen:
        stored = stored.astype(np.uint16) * 257 + rng.integers(0, 200, stored.shape).astype(np.uint16)
    path = tmp_path / f"o.{kind[:3]}"
    _write_oriented(path, stored, orientation)
    scan = read_scan(path, LIMIT)
    expected = UPRIGHT[orientation](stored) / (65535.0 if sixteen else 255.0)
    assert scan.bit_depth == (16 if sixteen else 8)
    assert scan.pixels.shape == expected.shape
    tol = 0.04 if kind == "jpg8" else 1e-5
    assert np.abs(scan.pixels - expected).mean() < tol


# --------------------------------------------------------------------------------------------------
# Files that are refused


def test_zero_byte_file_is_rejected(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageRejected, match="empty"):
        read_scan(tmp_path / "empty.jpg", LIMIT)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_is_rejected(tmp_path, suffix):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"a{suffix}")
    data = (tmp_path / f"a{suffix}").read_bytes()
    (tmp_path / f"t{suffix}").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageRejected, match="truncated"):
        read_scan(tmp_path / f"t{suffix}", LIMIT)


def test_truncated_sixteen_bit_png_is_rejected(tmp_path):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a.png"), rng.integers(0, 65536, (64, 64, 3)).astype(np.uint16))
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRejected, match="truncated"):
        read_scan(tmp_path / "t.png", LIMIT)


def test_text_file_named_jpg_is_rejected(tmp_path):
    (tmp_path / "notes.jpg").write_text("Box 3: grandma's wedding, 1952\n")
    with pytest.raises(ImageRejected, match="not an image"):
        read_scan(tmp_path / "notes.jpg", LIMIT)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_decompression_bomb_rejected_before_decoding(tmp_path, monkeypatch, bit_depth):
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, bit_depth, 2, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
           + _png_chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(png)
    assert len(png) < 200

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(imageio.cv2, "imdecode", no_decoding)
    with pytest.raises(ImageRejected) as info:
        read_scan(tmp_path / "bomb.png", max_pixels=50_000_000)
    message = str(info.value)
    assert "100000×100000" in message
    assert "50 MP" in message and "ingest.max_pixels" in message


def test_image_just_under_the_limit_is_read(tmp_path):
    Image.new("RGB", (10, 10)).save(tmp_path / "a.png")
    assert read_scan(tmp_path / "a.png", max_pixels=100).shape == (10, 10)
    with pytest.raises(ImageRejected):
        read_scan(tmp_path / "a.png", max_pixels=99)


# --------------------------------------------------------------------------------------------------
# Encoding and writing


def test_to_integer_rounds_and_clips():
    x = np.array([-0.5, 0.0, 0.5 / 255, 0.499 / 255, 1.0, 2.0], np.float32)
    np.testing.assert_array_equal(to_integer(x, 8), [0, 0, 1, 0, 255, 255])
    assert to_integer(x, 8).dtype == np.uint8
    assert to_integer(x, 16).dtype == np.uint16 and to_integer(x, 16)[-1] == 65535


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_sixteen_bit_round_trip_keeps_sixteen_bits(tmp_path, suffix):
    ramp = np.linspace(0, 1, 1000, dtype=np.float32)
    pixels = np.stack([np.tile(ramp, (3, 1)), np.tile(ramp[::-1], (3, 1)), np.full((3, 1000), 0.25)], axis=2)
    write_image(tmp_path / f"o{suffix}", pixels, bit_depth=16)
    scan = read_scan(tmp_path / f"o{suffix}", LIMIT)
    assert scan.bit_depth == 16
    assert _levels(scan.pixels) == 1000
    np.testing.assert_allclose(scan.pixels, pixels, atol=1 / 65535)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_eight_bit_round_trip(tmp_path, suffix):
    yy, xx = np.mgrid[0:32, 0:48].astype(np.float32)
    pixels = np.stack([xx / 47, yy / 31, np.full_like(xx, 0.6)], axis=2)
    write_image(tmp_path / f"o{suffix}", pixels, bit_depth=8)
    scan = read_scan(tmp_path / f"o{suffix}", LIMIT)
    assert scan.bit_depth == 8
    tol = 0.5 / 255 + 1e-6 if suffix != ".jpg" else 0.03
    np.testing.assert_allclose(scan.pixels, pixels, atol=tol)


def test_jpeg_becomes_eight_bit(tmp_path):
    yy, xx = np.mgrid[0:32, 0:48].astype(np.float32)
    pixels = np.stack([xx / 47, yy / 31, np.full_like(xx, 0.6)], axis=2)
    data = encode_image(pixels, ".JPG", bit_depth=16)
    assert data[:2] == b"\xff\xd8"
    write_image(tmp_path / "o.jpg", pixels, bit_depth=16)
    scan = read_scan(tmp_path / "o.jpg", LIMIT)
    assert scan.bit_depth == 8 and scan.format == "JPEG"
    assert np.abs(scan.pixels - pixels).mean() < 0.01


def test_sixteen_bit_png_header_says_sixteen(tmp_path):
    data = encode_image(np.zeros((2, 2, 3), np.float32), ".png", bit_depth=16)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[24] == 16
    assert encode_image(np.zeros((2, 2, 3), np.float32), ".png", bit_depth=8)[24] == 8


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_alpha_round_trip(tmp_path, bit_depth):
    rng = np.random.default_rng(2)
    pixels = rng.random((5, 6, 3)).astype(np.float32)
    alpha = rng.random((5, 6)).astype(np.float32)
    write_image(tmp_path / "a.png", pixels, bit_depth=bit_depth, alpha=alpha)
    scan = read_scan(tmp_path / "a.png", LIMIT)
    assert scan.bit_depth == bit_depth
    np.testing.assert_allclose(scan.alpha, alpha, atol=0.5 / (2**bit_depth - 1) + 1e-6)


def test_gray_pixels_encode(tmp_path):
    gray = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    write_image(tmp_path / "g.png", gray, bit_depth=16)
    pixels, depth = load_working(tmp_path / "g.png")
    assert depth == 16 and pixels.shape == (3, 4)
    np.testing.assert_allclose(pixels, gray, atol=1 / 65535)


def test_load_working_reads_rgb_and_depth(tmp_path):
    pixels = np.zeros((2, 3, 3), np.float32)
    pixels[..., 0] = 1.0  # red
    write_image(tmp_path / "w16.png", pixels, bit_depth=16)
    write_image(tmp_path / "w8.png", pixels, bit_depth=8)
    for name, depth in (("w16.png", 16), ("w8.png", 8)):
        got, got_depth = load_working(tmp_path / name)
        assert got_depth == depth
        np.testing.assert_allclose(got, pixels)
    with pytest.raises(OSError):
        load_working(tmp_path / "missing.png")


def test_thumbnail_is_a_small_jpeg():
    data = imageio.thumbnail_jpeg(np.full((400, 1000, 3), 0.5, np.float32), long_side=100)
    im = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert im.shape[:2] == (40, 100)


# --------------------------------------------------------------------------------------------------
# Atomic writes


def test_atomic_output_body_raising_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "photo.png"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary file left either


def test_atomic_output_body_raising_keeps_existing_target(tmp_path):
    target = tmp_path / "photo.png"
    target.write_bytes(b"old complete file")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_bytes(b"new half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_atomic_output_temp_is_hidden_beside_target_with_same_suffix(tmp_path):
    target = tmp_path / "photo.tif"
    target.write_bytes(b"old")
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".") and tmp.suffix == ".tif"  # OpenCV picks the format by suffix
        assert cv2.imwrite(str(tmp), np.zeros((2, 2, 3), np.uint8))
        assert target.read_bytes() == b"old"  # readers still see the old file meanwhile
    assert target.read_bytes()[:2] in (b"II", b"MM")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.tif"]


def test_write_atomic_replaces_content(tmp_path):
    target = tmp_path / "sub" / "data.json"
    write_atomic(target, b"first")
    assert target.read_bytes() == b"first"
    write_atomic(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.json"]


def test_write_atomic_gives_files_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.bin", b"x")
        (tmp_path / "b.bin").write_bytes(b"x")  # what a plain write gives
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o644


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_fast_png_level_is_lossless_and_load_working_round_trips(tmp_path, bit_depth):
    """Working PNGs are written with zlib level 1: bigger than level 9, the same pixels, read back exactly."""
    from photoarchive.imageio import PNG_LEVEL, encode_image, load_working

    rng = np.random.default_rng(bit_depth)
    pixels = cv2.GaussianBlur(rng.uniform(0, 1, (64, 80, 3)).astype(np.float32), (0, 0), 2)
    fast, small = encode_image(pixels, ".png", bit_depth), encode_image(pixels, ".png", bit_depth, png_level=9)
    assert PNG_LEVEL == 1 and len(fast) > len(small)
    decoded = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED) for b in (fast, small)]
    np.testing.assert_array_equal(decoded[0], decoded[1])
    path = tmp_path / "w.png"
    path.write_bytes(fast)
    loaded, depth = load_working(path)
    peak = 65535 if bit_depth == 16 else 255
    assert depth == bit_depth and loaded.dtype == np.float32 and loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, decoded[0][..., ::-1].astype(np.float32) / peak)
