"""Reading scans of any common kind into float RGB, and writing results atomically.

This is the only module that converts between file pixels (uint8/uint16, BGR, palette, CMYK, ...)
and the package's working layout: float32 H×W×3 RGB in [0, 1].
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# We check the pixel count ourselves, before decoding, with the limit from config.
Image.MAX_IMAGE_PIXELS = None

_UMASK = os.umask(0o022)
os.umask(_UMASK)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


class ImageRejected(ValueError):  # noqa: N818 - reads as 'the image was rejected'
    """A file that cannot be used as a scan; the message says why in words a person understands."""


@dataclass
class Scan:
    """A decoded scan. `pixels` is float32 H×W×3 RGB in [0, 1], upright."""

    pixels: np.ndarray
    bit_depth: int  # 8 or 16: the depth outputs are written with where the format allows
    alpha: np.ndarray | None = None  # H×W float32 [0, 1] when the file had transparency
    format: str = ""  # Pillow's format name, e.g. "JPEG"
    mode: str = ""  # Pillow's mode of the file, e.g. "CMYK", "P", "I;16"
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def read_scan(path: Path, max_pixels: int) -> Scan:
    """Decode `path` into a `Scan`, refusing anything that is not a usable image.

    The pixel count is checked from the header before any pixel is decoded, so a decompression
    bomb (tiny file, huge declared size) never reaches memory.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ImageRejected("empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise ImageRejected(
                    f"declared size {width}×{height} = {width * height / 1e6:.0f} MP exceeds the limit of "
                    f"{max_pixels / 1e6:.0f} MP (ingest.max_pixels); raise the limit if this scan is genuine"
                )
            notes: list[str] = []
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                notes.append(f"multi-page file with {frames} pages: only the first page is processed")
            fmt, mode = im.format or "", im.mode
            if _is_sixteen_bit(im, path):
                pixels, alpha = _decode_sixteen_bit(path, im)
                bit_depth = 16
            else:
                pixels, alpha = _decode_eight_bit(im)
                bit_depth = 8
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not an image file, or an image format this pipeline cannot read") from None
    except (OSError, SyntaxError, ValueError, cv2.error) as exc:
        raise ImageRejected(f"damaged or truncated image ({exc})") from None
    if mode == "CMYK":
        notes.append("CMYK scan converted to RGB")
    if alpha is not None:
        notes.append("transparency kept as alpha; pixels are processed over white")
    return Scan(pixels=pixels, bit_depth=bit_depth, alpha=alpha, format=fmt, mode=mode, notes=notes)


def _is_sixteen_bit(im: Image.Image, path: Path) -> bool:
    if im.mode in _SIXTEEN_BIT_MODES:
        return True
    if im.format == "PNG":
        with open(path, "rb") as fh:
            header = fh.read(26)
        return len(header) == 26 and header[24] == 16  # IHDR bit depth
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))  # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) == 16
    return False


def _decode_eight_bit(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode 8-bit images with Pillow: palette, gray, CMYK, RGBA; applies EXIF orientation."""
    im.seek(0)
    im.load()  # raises OSError on truncated data (we never enable LOAD_TRUNCATED_IMAGES)
    upright = ImageOps.exif_transpose(im)
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    if has_alpha:
        rgba = np.asarray(upright.convert("RGBA"), dtype=np.float32) / 255.0
        return _over_white(rgba[..., :3], rgba[..., 3]), rgba[..., 3].copy()
    rgb = np.asarray(upright.convert("RGB"), dtype=np.float32) / 255.0
    return rgb, None


def _decode_sixteen_bit(path: Path, im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode 16-bit PNG/TIFF with OpenCV (Pillow has no 16-bit RGB mode); applies EXIF orientation."""
    data = np.fromfile(path, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise ImageRejected("damaged or truncated 16-bit image")
    if array.dtype != np.uint16:
        array = array.astype(np.uint16) * 257 if array.dtype == np.uint8 else array.astype(np.uint16)
    x = array.astype(np.float32) / 65535.0
    alpha = None
    if x.ndim == 2:
        rgb = np.repeat(x[..., None], 3, axis=2)
    elif x.shape[2] == 2:
        rgb, alpha = np.repeat(x[..., :1], 3, axis=2), x[..., 1]
    elif x.shape[2] == 4:
        rgb, alpha = x[..., 2::-1], x[..., 3]
    else:
        rgb = x[..., ::-1]
    rgb = np.ascontiguousarray(rgb)
    if alpha is not None:
        rgb = _over_white(rgb, alpha)
        alpha = np.ascontiguousarray(alpha)
    # OpenCV's TIFF decoder applies the TIFF Orientation tag itself (always, even with
    # IMREAD_IGNORE_ORIENTATION; OpenCV 4.14); for PNG's eXIf chunk we apply it here.
    orientation = 1 if im.format == "TIFF" else im.getexif().get(0x0112, 1)
    rgb = apply_orientation(rgb, orientation)
    if alpha is not None:
        alpha = apply_orientation(alpha, orientation)
    return rgb, alpha


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an array stored with EXIF `orientation` (1–8) upright."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(int(orientation))
    return np.ascontiguousarray(op(array)) if op else array


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return (rgb * alpha[..., None] + (1.0 - alpha[..., None])).astype(np.float32)


def to_integer(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] → uint8/uint16 with rounding; values outside [0, 1] are clipped."""
    peak, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    return (np.clip(pixels, 0.0, 1.0) * peak + 0.5).astype(dtype)


def encode_image(pixels: np.ndarray, suffix: str, bit_depth: int = 8, alpha: np.ndarray | None = None,
                 jpeg_quality: int = 95) -> bytes:
    """Encode float RGB (H×W×3) or gray (H×W) pixels, plus optional alpha, for a file ending in `suffix`."""
    suffix = suffix.lower()
    depth = 16 if bit_depth == 16 and suffix in (".png", ".tif", ".tiff") else 8
    array = to_integer(pixels, depth)
    if array.ndim == 3:
        array = array[..., ::-1]  # RGB → BGR for OpenCV
        if alpha is not None:
            array = np.dstack([array, to_integer(alpha, depth)])
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 6]
    elif suffix in (".tif", ".tiff"):
        params = [cv2.IMWRITE_TIFF_COMPRESSION, 5]  # LZW, lossless
    ok, buffer = cv2.imencode(suffix, np.ascontiguousarray(array), params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {suffix} image")
    return buffer.tobytes()


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path` (same suffix); rename it into place on success.

    A reader, or a killed run, sees the old file, no file, or the complete new one; never a
    half-written file. On an exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` atomically (see `atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_image(path: Path, pixels: np.ndarray, bit_depth: int = 8, alpha: np.ndarray | None = None,
                jpeg_quality: int = 95) -> None:
    """Encode and write an image atomically; the format follows the file's suffix."""
    path = Path(path)
    write_atomic(path, encode_image(pixels, path.suffix, bit_depth, alpha, jpeg_quality))


def load_working(path: Path) -> tuple[np.ndarray, int]:
    """Read a working PNG written by this pipeline: (float RGB pixels, bit depth)."""
    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise OSError(f"cannot read working image {path}")
    depth = 16 if array.dtype == np.uint16 else 8
    x = array.astype(np.float32) / (65535.0 if depth == 16 else 255.0)
    if x.ndim == 2:
        return x, depth
    return np.ascontiguousarray(x[..., 2::-1]), depth


def thumbnail_jpeg(pixels: np.ndarray, long_side: int = 320) -> bytes:
    """A small JPEG of float RGB pixels, for reports."""
    h, w = pixels.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    small = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return encode_image(small, ".jpg", 8, jpeg_quality=80)
