"""Reading scans of any common kind into float RGB, and writing results atomically.

This is the only module that converts between file pixels (uint8/uint16, BGR, palette, CMYK, ...)
and the package's working layout: float32 H×W×3 RGB in [0, 1].
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from struct import error as struct_error

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# We check the pixel count ourselves, before decoding, with the limit from config.
Image.MAX_IMAGE_PIXELS = None

_UMASK = os.umask(0o022)
os.umask(_UMASK)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
# zlib level of the PNGs we write (working images and published PNGs alike): level 1 is lossless like any
# other, 4× faster than OpenCV's default 3/libpng's 6 on large scans, for files about 9 % larger.
PNG_LEVEL = 1
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
    icc_space: str = ""  # colour space of the embedded ICC profile ("RGB", "GRAY", "CMYK"), "" if none
    full_shape: tuple[int, int] = (0, 0)  # (H, W) of the upright scan; `pixels` is smaller with max_side

    @property
    def keep_icc(self) -> bool:
        """Whether the scan's ICC profile describes the RGB pixels we write (so outputs may carry it)."""
        return self.icc_space in ("", "RGB")

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape[0], self.pixels.shape[1]


def read_scan(path: Path, max_pixels: int, max_side: int | None = None) -> Scan:
    """Decode `path` into a `Scan`, refusing anything that is not a usable image.

    The pixel count is checked from the header before any pixel is decoded, so a decompression
    bomb (tiny file, huge declared size) never reaches memory. With `max_side`, every pixel is still
    decoded (so damage is found) but `pixels` is shrunk to that long side before the float
    conversion: checking a 100 MP scan then needs about 3 bytes a pixel, not 12 to 24.
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
            _check_sample_format(im)
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                notes.append(f"multi-page file with {frames} pages: only the first page is processed")
            fmt, mode = im.format or "", im.mode
            icc = im.info.get("icc_profile") or b""
            icc_space = icc[16:20].decode("latin-1").strip() if len(icc) >= 20 else ""
            if _is_sixteen_bit(im, path):
                pixels, alpha, full_shape = _decode_sixteen_bit(path, im, max_side)
                bit_depth = 16
            else:
                pixels, alpha, full_shape = _decode_eight_bit(im, icc if icc_space not in ("", "RGB") else b"",
                                                              notes, max_side)
                bit_depth = 8
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not an image file, or an image format this pipeline cannot read") from None
    except (OSError, SyntaxError, ValueError, cv2.error) as exc:
        raise ImageRejected(f"damaged or truncated image ({exc})") from None
    if mode == "CMYK" and not any(n.startswith("CMYK") for n in notes):
        notes.append("CMYK scan converted to RGB")
    if icc_space not in ("", "RGB"):
        notes.append(f"the scan's {icc_space} ICC profile is not copied to the RGB outputs")
    if alpha is not None:
        notes.append("transparency flattened onto white: the outputs have no alpha channel")
    return Scan(pixels=pixels, bit_depth=bit_depth, alpha=alpha, format=fmt, mode=mode, notes=notes,
                icc_space=icc_space, full_shape=full_shape)


def _check_sample_format(im: Image.Image) -> None:
    """Refuse samples we would have to squeeze (32-bit integer or floating point) instead of guessing."""
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, (8,))  # BitsPerSample
        bits = bits if isinstance(bits, tuple) else (bits,)
        sample_format = im.tag_v2.get(339, (1,))  # SampleFormat: 1 uint, 2 int, 3 float
        sample_format = sample_format if isinstance(sample_format, tuple) else (sample_format,)
        if max(bits) > 16 or any(f != 1 for f in sample_format):
            kind = "floating-point" if 3 in sample_format else f"{max(bits)}-bit"
            raise ImageRejected(f"{kind} TIFF samples are not supported (a scan is 8- or 16-bit unsigned); "
                                "save it as a 16-bit TIFF or PNG")
    elif im.mode in ("F", "I") and im.format not in ("PNG",):
        raise ImageRejected(f"{im.format or 'image'} with 32-bit samples is not supported; save the scan as a "
                            "16-bit TIFF or PNG")


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


def _shrunk_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """(width, height) with the long side at most `max_side`, or None when no shrinking is needed."""
    if not max_side or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _unit_float(array: np.ndarray, peak: float) -> np.ndarray:
    """uint8/uint16 → float32 in [0, 1] with one float copy (no temporary)."""
    out = array.astype(np.float32)
    out *= np.float32(1.0 / peak)
    return out


def _decode_eight_bit(im: Image.Image, icc: bytes = b"", notes: list[str] | None = None,
                      max_side: int | None = None) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """Decode 8-bit images with Pillow: palette, gray, CMYK, RGBA; applies EXIF orientation.

    `icc`: a CMYK or GRAY profile of the scan, used to convert CMYK or gray pixels to sRGB.
    """
    im.seek(0)
    im.load()  # raises OSError on truncated data (we never enable LOAD_TRUNCATED_IMAGES)
    upright = im
    try:
        ImageOps.exif_transpose(upright, in_place=True)  # no copy of a scan that is already upright
    except (ValueError, TypeError, KeyError, struct_error, OSError):
        # A damaged EXIF block: the pixels are fine, the orientation cannot be trusted.
        if notes is not None:
            notes.append("EXIF block unreadable: orientation not applied")
    full_shape = (upright.size[1], upright.size[0])
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    if has_alpha:
        upright = upright.convert("RGBA")
    small = _shrunk_size(*upright.size, max_side)
    if small:
        upright = upright.resize(small, Image.Resampling.BOX)
    if has_alpha:
        rgba = _unit_float(np.asarray(upright), 255.0)
        return _over_white(rgba[..., :3], rgba[..., 3]), rgba[..., 3].copy(), full_shape
    if icc and upright.mode in ("CMYK", "L"):
        kind = "CMYK" if upright.mode == "CMYK" else "grayscale"
        try:
            converted = ImageCms.profileToProfile(upright, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                  ImageCms.createProfile("sRGB"), outputMode="RGB")
            if notes is not None:
                notes.append(f"{kind} scan converted to sRGB through its embedded ICC profile")
            return _unit_float(np.asarray(converted), 255.0), None, full_shape
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            if notes is not None:
                notes.append(f"{kind} scan converted to RGB without colour management: "
                             "its embedded ICC profile is unusable")
    return _unit_float(np.asarray(upright if upright.mode == "RGB" else upright.convert("RGB")), 255.0), \
        None, full_shape


def _decode_sixteen_bit(path: Path, im: Image.Image, max_side: int | None = None,
                        ) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """Decode 16-bit PNG/TIFF with OpenCV (Pillow has no 16-bit RGB mode); applies EXIF orientation."""
    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise ImageRejected("damaged or truncated 16-bit image")
    if array.dtype == np.uint8:
        array = array.astype(np.uint16) * 257
    elif array.dtype != np.uint16:
        raise ImageRejected(f"unsupported sample type {array.dtype} (a scan is 8- or 16-bit unsigned)")
    stored_shape = array.shape[:2]
    small = _shrunk_size(array.shape[1], array.shape[0], max_side)
    if small:
        array = cv2.resize(array, small, interpolation=cv2.INTER_AREA)
    alpha = None
    if array.ndim == 3 and array.shape[2] == 3:  # BGR: straight into RGB floats, no reversed copy
        x = np.empty(array.shape, np.float32)
        rows = max(1, _BLOCK_VALUES // max(1, array[0].size))
        for start in range(0, array.shape[0], rows):
            band = x[start:start + rows]
            band[...] = array[start:start + rows, :, ::-1]
            band *= np.float32(1.0 / 65535.0)  # as `_unit_float`
        del array
    else:
        x = _unit_float(array, 65535.0)
    if x.ndim == 2:
        rgb = np.repeat(x[..., None], 3, axis=2)
    elif x.shape[2] == 2:
        rgb, alpha = np.repeat(x[..., :1], 3, axis=2), x[..., 1]
    elif x.shape[2] == 4:
        rgb, alpha = x[..., 2::-1], x[..., 3]
    else:
        rgb = x  # already RGB
    rgb = np.ascontiguousarray(rgb)
    if alpha is not None:
        rgb = _over_white(rgb, alpha)
        alpha = np.ascontiguousarray(alpha)
    # OpenCV's TIFF decoder applies the TIFF Orientation tag itself (always, even with
    # IMREAD_IGNORE_ORIENTATION; OpenCV 4.14); for PNG's eXIf chunk we apply it here.
    try:
        orientation = 1 if im.format == "TIFF" else int(im.getexif().get(0x0112, 1))
    except (ValueError, TypeError, KeyError, struct_error, OSError):
        orientation = 1  # a damaged eXIf chunk: the pixels are fine, the orientation unknown
    rgb = apply_orientation(rgb, orientation)
    if alpha is not None:
        alpha = apply_orientation(alpha, orientation)
    full_shape = stored_shape[::-1] if orientation in (5, 6, 7, 8) else stored_shape
    return rgb, alpha, (int(full_shape[0]), int(full_shape[1]))


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


_BLOCK_VALUES = 1 << 22  # values per block of the band-wise conversions (16 MB of float32)


def to_integer(pixels: np.ndarray, bit_depth: int, out: np.ndarray | None = None) -> np.ndarray:
    """Float [0, 1] → uint8/uint16 with rounding; values outside [0, 1] are clipped, and the count logged.

    `out`: an integer array (or a view of one, e.g. reversed channels) of `pixels`' shape to fill.
    """
    peak, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    tolerance = 0.5 / peak  # rounds to 0 or peak anyway
    if pixels.size and (float(pixels.min()) < -tolerance or float(pixels.max()) > 1.0 + tolerance):
        clipped = int(np.count_nonzero(pixels < -tolerance)) + int(np.count_nonzero(pixels > 1.0 + tolerance))
        log.info("%d of %d values (%.3f%%) outside [0, 1] clipped when converting to %d-bit", clipped,
                 pixels.size, 100.0 * clipped / pixels.size, bit_depth)
    if out is None:
        out = np.empty(pixels.shape, dtype)
    if pixels.ndim == 0 or not pixels.size:
        return out
    rows = max(1, _BLOCK_VALUES // max(1, pixels[0].size))  # in bands: no full-size float temporary
    for start in range(0, pixels.shape[0], rows):
        block = np.clip(pixels[start:start + rows], 0.0, 1.0, dtype=np.float32)
        block *= np.float32(peak)
        block += np.float32(0.5)
        out[start:start + rows] = block
    return out


def encode_image(pixels: np.ndarray, suffix: str, bit_depth: int = 8, alpha: np.ndarray | None = None,
                 jpeg_quality: int = 95, png_level: int | None = None) -> bytes:
    """Encode float RGB (H×W×3) or gray (H×W) pixels, plus optional alpha, for a file ending in `suffix`.

    PNGs are written with zlib level `png_level` (default `PNG_LEVEL`, 1: lossless like every level;
    on a 108 MP scan level 6 took 40 s a write, level 1 about 10 s for files about 9 % larger).
    """
    png_level = PNG_LEVEL if png_level is None else int(png_level)
    suffix = suffix.lower()
    depth = 16 if bit_depth == 16 and suffix in (".png", ".tif", ".tiff") else 8
    dtype = np.uint16 if depth == 16 else np.uint8
    if pixels.ndim == 3:
        # Straight into OpenCV's BGR(A) order: no reversed copy, no stacked copy of a 100 MP image.
        channels = pixels.shape[2]
        array = np.empty(pixels.shape[:2] + (channels + (alpha is not None),), dtype)
        to_integer(pixels, depth, out=array[..., channels - 1::-1] if channels > 1 else array[..., :1])
        if alpha is not None:
            to_integer(alpha, depth, out=array[..., channels])
    else:
        array = to_integer(pixels, depth)
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif suffix == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, png_level]
    elif suffix in (".tif", ".tiff"):
        params = [cv2.IMWRITE_TIFF_COMPRESSION, 5]  # LZW, lossless
    ok, buffer = cv2.imencode(suffix, array, params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {suffix} image")
    return buffer.tobytes()


# errno values that mean "this output folder cannot take the file": said in words, with what to do.
_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is exhausted; free some space",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EROFS: "the output folder is on a read-only file system; run in a writable folder",
    errno.EACCES: "permission denied; make the output folder writable",
    errno.EPERM: "permission denied; make the output folder writable",
}


class OutputWriteError(OSError):
    """An output could not be written (disk full, read-only, no permission); the message says what to do."""


def _write_error(path: Path, exc: OSError) -> OSError:
    hint = _WRITE_ERRORS.get(exc.errno or -1)
    if hint is None:
        return exc
    return OutputWriteError(exc.errno, f"cannot write {path}: {hint}, then re-run snakemake "
                                       f"(nothing half-written was left behind; {exc.strerror})")


def _stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of `path` left by a killed run (see `atomic_output` for their names)."""
    # exiftool writes its own "<name>_exiftool_tmp" beside the file it edits: left behind if killed too
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.[A-Za-z0-9_]{{8}}\.part{re.escape(path.suffix)}"
                         r"(_exiftool_tmp)?$")
    try:
        return [p for p in path.parent.iterdir() if pattern.match(p.name)]
    except OSError:
        return []


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path` (same suffix); rename it into place on success.

    A reader, or a killed run, sees the old file, no file, or the complete new one; never a
    half-written file. On an exception the temporary file is removed; temporaries of the same
    target left by a killed run are removed first. A full disk or a read-only folder raises
    `OutputWriteError` naming the file and what to do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in _stale_temporaries(path):
            stale.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside `path`; rename it into place when the body succeeds.

    For a job whose output is a whole folder (a restore batch): a killed run leaves only a hidden
    `.<name>.XXXXXXXX.part` folder, never a half-filled `path` that a later run would take as done
    (Snakemake does not check its incomplete-job markers behind a checkpoint). Leftovers of killed
    runs are removed first; an existing `path` is replaced.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.part$")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.iterdir():
            if pattern.match(stale.name) and stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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
    """Read a working PNG written by this pipeline: (float RGB pixels, bit depth).

    The float image is filled band by band from the decoded integers (BGR → RGB and the scaling in
    one pass), so reading a 100 MP image holds 12 bytes a pixel plus the decoded file, not three
    full-size float copies.
    """
    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise OSError(f"cannot read working image {path}")
    depth = 16 if array.dtype == np.uint16 else 8
    peak = np.float32(65535.0 if depth == 16 else 255.0)
    source = array if array.ndim == 2 else array[..., 2::-1]
    out = np.empty(source.shape, np.float32)
    rows = max(1, _BLOCK_VALUES // max(1, source[0].size))
    for start in range(0, source.shape[0], rows):
        band = out[start:start + rows]
        band[...] = source[start:start + rows]
        np.divide(band, peak, out=band)  # exactly `array.astype(np.float32) / peak`
    return out, depth


def load_matte(path: Path) -> np.ndarray:
    """A working matte PNG as its integers (H×W uint8 or uint16), for code that converts only the part it
    uses (`photoarchive.faces.paste_faces`): 1–2 bytes a pixel instead of `load_working`'s 4."""
    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if array is None:
        raise OSError(f"cannot read working image {path}")
    return array if array.ndim == 2 else array[..., 2 if array.shape[2] >= 3 else 0].copy()  # R, as load_working


def thumbnail_jpeg(pixels: np.ndarray, long_side: int = 320) -> bytes:
    """A small JPEG of float RGB pixels, for reports."""
    h, w = pixels.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    small = cv2.resize(pixels, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return encode_image(small, ".jpg", 8, jpeg_quality=80)
