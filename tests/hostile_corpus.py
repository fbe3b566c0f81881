"""A generated corpus of broken, hostile and awkward inputs, mixed with good scans (issue 5).

`make_corpus(root, outside)` writes it under `root` at test time (nothing binary is committed) and
returns one `Case` per input file saying what the pipeline must do with it. Images are tiny (a few
dozen pixels a side) so the whole corpus runs through the workflow in a couple of minutes.

`outside` is a folder beside the work area: ZIP entries with absolute paths point into it, so a
test can check that nothing ever appears there.

Several awkward properties share one good scan where they are independent (e.g. a CMYK JPEG that
is also stored with EXIF orientation 3): every good scan costs a full chain of jobs.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageCms

from photoarchive.ingest import printable_name

# Every good scan is this size upright (landscape, so a wrong rotation changes the shape).
HEIGHT, WIDTH = 48, 72

# The config the hostile workflow test runs with (merged over config.yaml): small ZIP limits so the
# total-size guard can be shown with a 1 MB archive, and a pixel limit that a 3 MP "legit" scan
# exceeds (the 12000×9000 case is tested on its own, with the default limit).
CONFIG = {
    "ingest": {"max_pixels": 2_000_000, "zip": {"max_total_mb": 1, "max_ratio": 100}},
    "scheduling": {"batch_size": 8},
}

# ICC profile embedded in some good scans; outputs must carry the same bytes.
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

# Metadata values exiftool must store literally (never as options, never split into arguments).
HOSTILE_TITLE = 'Line one\nLine two -tagsFromFile /etc/passwd -all:all= "q" $HOME `id`'
HOSTILE_DESCRIPTION = "-@ /etc/passwd\n-execute\n-XMP-dc:Title=pwned\r\n#[CSTR]\\n end"
HOSTILE_ARCHIVE_ID = "-o /tmp/pwned.jpg $(touch /tmp/pwned) ; rm -rf ~"
LONG_DESCRIPTION = "lang " * 2000  # 10 000 characters: shortened to metadata.MAX_VALUE_CHARS, noted
LONG_NAME = "formats/palette " + "ü" * 116 + ".png"  # a 248-byte file name (the limit is 255)


@dataclass(frozen=True)
class Case:
    """One input file and what the pipeline must make of it."""

    relpath: str  # as in the manifest's `source` column (ZIP members: "box.zip/inner/name.jpg")
    expect: str  # "finished" (processed or review) | "failed" | "duplicate"
    what: str  # the case, in words
    reason: str = ""  # regex the manifest reason must match (failed and duplicate rows)
    orientation: int = 1  # EXIF/TIFF orientation the file was stored with (finished rows)
    sixteen_bit: bool = False  # the published image must be 16-bit with the source's fine values
    icc: bool = False  # the published image must carry ICC
    notes: str = ""  # regex a stamp note must match
    seed: int = -1  # picture seed: the upright picture is `picture(seed)`
    gray: bool = False  # the picture is gray (published pixels are compared on luminance)


@dataclass
class Corpus:
    root: Path
    cases: dict[str, Case] = field(default_factory=dict)
    outside: list[Path] = field(default_factory=list)  # paths that must never exist after a run
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)  # metadata.csv rows by file

    def add(self, case: Case) -> None:
        assert case.relpath not in self.cases, case.relpath
        self.cases[case.relpath] = case


# ------------------------------------------------------------------------------------------- pixels


def picture(seed: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """A distinct, asymmetric picture (float32 H×W×3 RGB in [0.1, 0.9]): smooth blobs plus a corner mark.

    Different seeds give perceptual hashes far apart (checked by the tests), so none of the good
    scans is taken for a near-duplicate of another.
    """
    rng = np.random.default_rng(1000 + seed)
    small = rng.uniform(0.0, 1.0, size=(4, 6, 3)).astype(np.float32)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    img[: height // 4, : width // 5] = (0.95, 0.2, 0.1)  # a bright red corner: top left when upright
    return np.clip(0.1 + 0.8 * img, 0.1, 0.9).astype(np.float32)


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _u16(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 65535 + 0.5).astype(np.uint16)


_DIHEDRAL = {  # EXIF orientation o: the op that turns the upright picture into what the file stores
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.swapaxes(a, 0, 1)[::-1],  # stored rotated 90° counter-clockwise
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
    8: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],  # stored rotated 90° clockwise
}


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels to store so that a viewer honouring EXIF `orientation` shows `upright`."""
    return np.ascontiguousarray(_DIHEDRAL[orientation](upright))


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Hostile Corpus Scanner"  # Make: shows that the scan's own tags are inherited
    return exif.tobytes()


# ------------------------------------------------------------------------------------------- files


def _jpeg(img: np.ndarray, orientation: int = 1, mode: str = "RGB", icc: bytes | None = None,
          exif: bool = True) -> bytes:
    pil = Image.fromarray(_u8(stored_for_orientation(img, orientation)))
    if mode == "L":
        pil = pil.convert("L")
    elif mode == "CMYK":
        pil = pil.convert("CMYK")
    buf = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    if exif:
        extra["exif"] = _exif(orientation)
    pil.save(buf, "JPEG", quality=92, **extra)
    return buf.getvalue()


def _png(pil: Image.Image, orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    extra = {"exif": _exif(orientation)} if orientation != 1 else {}
    pil.save(buf, "PNG", **extra)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png16(img: np.ndarray, orientation: int = 1) -> bytes:
    """16-bit RGB PNG (OpenCV), with an eXIf chunk carrying the orientation when it is not 1."""
    stored = stored_for_orientation(img, orientation)
    ok, buf = cv2.imencode(".png", _u16(stored)[..., ::-1])
    assert ok
    data = buf.tobytes()
    if orientation != 1:
        ihdr_end = 8 + 25
        tiff = _exif(orientation).removeprefix(b"Exif\0\0")  # the eXIf chunk holds bare TIFF data
        data = data[:ihdr_end] + _png_chunk(b"eXIf", tiff) + data[ihdr_end:]
    return data


def _tiff16_pages(img: np.ndarray, pages: int, icc: bytes | None) -> bytes:
    """A multi-page 16-bit RGB TIFF (first page is the scan) with an embedded ICC profile."""
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        for page in range(pages):
            pixels = _u16(img if page == 0 else picture(900 + page))
            tif.write(pixels, photometric="rgb", compression="zlib", iccprofile=icc if page == 0 else None)
    return buf.getvalue()


def _corrupt_exif_jpeg(img: np.ndarray) -> bytes:
    """A good JPEG whose APP1 EXIF block is garbage (bad byte order, IFD offsets past the end)."""
    good = _jpeg(img, exif=False)
    garbage = b"Exif\0\0" + b"MM\0*" + struct.pack(">I", 0x7FFFFFF0) + bytes(range(256)) * 2
    app1 = b"\xff\xe1" + struct.pack(">H", len(garbage) + 2) + garbage
    return good[:2] + app1 + good[2:]


def _bomb_png(width: int, height: int) -> bytes:
    """A 100-byte PNG declaring width×height pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _big_jpeg(width: int, height: int) -> bytes:
    """A legitimate, large JPEG that compresses well (smooth content)."""
    small = picture(77, 90, 120)
    big = cv2.resize(_u8(small)[..., ::-1], (width, height), interpolation=cv2.INTER_LINEAR)
    ok, buf = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return buf.tobytes()


def big_scan(path: Path, width: int = 12000, height: int = 9000) -> Path:
    """Write the 'very large but legitimate scan' (12000×9000 by default) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_big_jpeg(width, height))
    return path


def _zip_with(members: list[tuple[zipfile.ZipInfo | str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": on purpose
        for info, data, method in members:
            zf.writestr(info, data, compress_type=method)
        for info in zf.infolist():
            if info.filename == "secret.jpg":
                info.flag_bits |= 0x1  # the central directory says: encrypted
    return buf.getvalue()


def _hostile_zip(outside: Path) -> tuple[bytes, dict[str, tuple[str, str]]]:
    """A ZIP of every unsafe entry kind plus one good scan; {member: (expect, reason regex)}."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inner.jpg", _jpeg(picture(50)))
    link = zipfile.ZipInfo("link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    deflate, store = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
    absolute = (outside / "absolute.jpg").as_posix()
    members = [
        ("ok/inner scan.jpg", _jpeg(picture(12)), store),
        ("../escape.jpg", _jpeg(picture(51)), store),
        ("a/../../escape2.jpg", _jpeg(picture(52)), store),
        (absolute, _jpeg(picture(53)), store),
        ("C:/Windows/evil.jpg", _jpeg(picture(54)), store),
        (link, b"/etc/passwd", store),
        ("bomb.png", b"\0" * 2_000_000, deflate),  # 2 MB of zeros in about 2 kB: ratio ~1000:1
        ("nested.zip", inner.getvalue(), store),
        ("secret.jpg", _jpeg(picture(55)), store),
        ("readme.txt", b"not a scan", store),
        ("twice.jpg", b"first entry of this name", store),
        ("twice.jpg", b"second entry of this name", store),
    ]
    expect = {
        "ok/inner scan.jpg": ("finished", ""),
        "../escape.jpg": ("failed", r"escapes the archive"),
        "a/../../escape2.jpg": ("failed", r"escapes the archive"),
        absolute: ("failed", r"absolute path"),
        "C:/Windows/evil.jpg": ("failed", r"absolute path"),
        "link.jpg": ("failed", r"symbolic link"),
        "bomb.png": ("failed", r"compression ratio .*zip-bomb guard"),
        "nested.zip": ("failed", r"nested archive inside a ZIP; unpack it"),
        "secret.jpg": ("failed", r"encrypted; decrypt the archive"),
        "readme.txt": ("failed", r"not a supported image type \(\.txt\)"),
        "twice.jpg": ("failed", r"not an image file"),  # the first of two entries named so
    }
    return _zip_with(members), expect


def _crc_zip() -> bytes:
    """A ZIP whose one member's data was damaged after writing (CRC mismatch)."""
    data = bytearray(_zip_with([("damaged.jpg", _jpeg(picture(60)), zipfile.ZIP_STORED)]))
    start = data.find(b"damaged.jpg") + len("damaged.jpg") + 200  # inside the stored JPEG bytes
    data[start:start + 16] = b"\x00" * 16
    return bytes(data)


def _oversize_zip() -> bytes:
    """Two stored members, 0.6 MB each: together over the 1 MB ingest.zip.max_total_mb of CONFIG."""
    rng = np.random.default_rng(7)
    return _zip_with([(f"noise{i}.jpg", rng.bytes(600_000), zipfile.ZIP_STORED) for i in (1, 2)])


# ------------------------------------------------------------------------------------------ corpus


def _write(root: Path, relpath: str, data: bytes) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_corpus(root: Path, outside: Path) -> Corpus:
    """Write the hostile corpus under `root` and return what each file must become."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(root=root, outside=[outside / "absolute.jpg"])

    def good(relpath: str, data: bytes, what: str, seed: int, **kw) -> None:
        _write(root, relpath, data)
        corpus.add(Case(relpath, "finished", what, seed=seed, **kw))

    def bad(relpath: str, data: bytes, what: str, reason: str) -> None:
        _write(root, relpath, data)
        corpus.add(Case(relpath, "failed", what, reason=reason))

    # --- good scans (each also exercises an orientation, a name or a pixel format)
    good("good/plain.jpg", _jpeg(picture(0), icc=ICC), "RGB JPEG with ICC profile and hostile catalogue values",
         seed=0, icc=True, notes=r"description longer than \d+ characters; shortened")
    good("a/img001.jpg", _jpeg(picture(1), 2, mode="L"), "grayscale JPEG, orientation 2; same name as b/img001.jpg",
         seed=1, orientation=2, gray=True)
    good("b/img001.jpg", _jpeg(picture(2), 3, mode="CMYK"), "CMYK JPEG, orientation 3; same name as a/img001.jpg",
         seed=2, orientation=3, notes=r"CMYK")
    good("names/老照片 1975.jpg", _jpeg(picture(3), 4), "non-ASCII name with a space, orientation 4",
         seed=3, orientation=4)
    good("names/-n -TagsFromFile -all=.jpg", _jpeg(picture(4), 5), "name of exiftool options, orientation 5",
         seed=4, orientation=5)
    good("names/it's \"q\" $HOME $(touch pwned) {a,b}|x.jpg", _jpeg(picture(5), 6),
         "quotes, $, braces, pipe in the name, orientation 6", seed=5, orientation=6)
    good("names/line\nbreak.jpg", _jpeg(picture(6), 7), "a line break in the file name, orientation 7",
         seed=6, orientation=7)
    good("formats/rgba8.png", _png(Image.fromarray(np.dstack([_u8(stored_for_orientation(picture(7), 8)),
                                                              np.full(stored_for_orientation(picture(7), 8)
                                                                      .shape[:2], 200, np.uint8)]),
                                                   "RGBA"), 8),
         "RGBA PNG (alpha flattened over white), orientation 8 in eXIf", seed=7, orientation=8,
         notes=r"transparency")
    good("formats/deep16.png", _png16(picture(8), 6), "16-bit RGB PNG, orientation 6 in eXIf",
         seed=8, orientation=6, sixteen_bit=True)
    good("formats/pages16.tif", _tiff16_pages(picture(9), 3, ICC), "16-bit multi-page TIFF (3 pages) with ICC",
         seed=9, sixteen_bit=True, icc=True, notes=r"3 pages: only the first page")
    gray_alpha = Image.fromarray(_u8(picture(10))).convert("L")
    gray_alpha.putalpha(Image.fromarray(np.full((HEIGHT, WIDTH), 255, np.uint8)))
    good("formats/gray alpha.png", _png(gray_alpha), "grayscale + alpha PNG", seed=10, gray=True,
         notes=r"transparency")
    good(LONG_NAME, _png(Image.fromarray(_u8(picture(11))).quantize(64)),
         "palette PNG with a 250-byte name (too long for '<name>_restored.png')", seed=11)
    good("damaged/corrupt exif.jpg", _corrupt_exif_jpeg(picture(14)), "JPEG with a garbage EXIF block", seed=14)

    # --- a name that is not UTF-8 (Latin-1 bytes): refused by name, listed with a printable stand-in
    latin1 = os.fsdecode(b"names/Gro\xdfmutter 1951.jpg")
    _write(root, latin1, _jpeg(picture(15)))
    corpus.add(Case(printable_name(latin1), "failed", "file name in Latin-1, not UTF-8",
                    reason=r"not valid UTF-8 .*rename it"))

    # --- a symbolic link to a file outside the input folder: not followed, not listed
    (outside / "target.jpg").write_bytes(_jpeg(picture(16)))
    (root / "links").mkdir()
    os.symlink(outside / "target.jpg", root / "links" / "outside.jpg")

    # --- copies: the same file twice is a duplicate, not a second job chain
    _write(root, "b/img001 copy.jpg", (root / "a/img001.jpg").read_bytes())
    corpus.add(Case("b/img001 copy.jpg", "duplicate", "byte-identical copy of a/img001.jpg",
                    reason=r"byte-identical copy of a/img001\.jpg"))

    # --- broken files
    bad("broken/empty.jpg", b"", "zero-byte file", r"empty file \(0 bytes\)")
    jpeg = _jpeg(picture(20))
    bad("broken/truncated.jpg", jpeg[: len(jpeg) * 6 // 10], "truncated JPEG", r"damaged or truncated")
    png = _png(Image.fromarray(_u8(picture(21))))
    bad("broken/truncated.png", png[: len(png) * 6 // 10], "truncated PNG", r"damaged or truncated")
    bad("broken/letter.jpg", b"Dear archivist,\nthis is not a photo.\n" * 20, "a text file named .jpg",
        r"not an image file")
    bad("broken/bomb.png", _bomb_png(100_000, 100_000), "decompression bomb: 100 bytes declaring 10 gigapixels",
        r"declared size 100000×100000 .* exceeds the limit .*ingest\.max_pixels")
    bad("broken/big legit.jpg", _big_jpeg(2000, 1500),
        "3 MP scan over a configured 2 MP limit (ingest.max_pixels)", r"exceeds the limit of 2 MP")
    bad("broken/notes.txt", b"shopping list", "not an image type", r"not a supported image type \(\.txt\)")
    deep32 = io.BytesIO()
    tifffile.imwrite(deep32, (picture(22)[..., 0] * 4e9).astype(np.uint32))
    bad("broken/deep32.tif", deep32.getvalue(), "32-bit integer TIFF", r"32-bit TIFF samples are not supported")

    # --- ZIP archives
    data, members = _hostile_zip(outside)
    _write(root, "zips/hostile.zip", data)
    corpus.add(Case("zips/hostile.zip/twice.jpg#2", "failed", "second ZIP entry with the same name",
                    reason=r"several entries with this name; only the first one is used"))
    for member, (expect, reason) in members.items():
        what = f"ZIP entry {member!r}"
        if expect == "finished":
            corpus.add(Case(f"zips/hostile.zip/{member}", expect, what, seed=12))
        else:
            corpus.add(Case(f"zips/hostile.zip/{member}", expect, what, reason=reason))
    _write(root, "zips/crc.zip", _crc_zip())
    corpus.add(Case("zips/crc.zip/damaged.jpg", "failed", "ZIP member with damaged data (CRC mismatch)",
                    reason=r"could not extract from the ZIP: .*CRC"))
    _write(root, "zips/oversize.zip", _oversize_zip())
    corpus.add(Case("zips/oversize.zip/noise1.jpg", "failed", "first member of an over-size ZIP (not an image)",
                    reason=r"not an image file"))
    corpus.add(Case("zips/oversize.zip/noise2.jpg", "failed", "member beyond the ZIP total-size limit",
                    reason=r"would unpack to more than 1 MB \(ingest\.zip\.max_total_mb\)"))
    _write(root, "zips/broken.zip", b"PK\x03\x04" + b"\x13\x37" * 500)
    corpus.add(Case("zips/broken.zip", "failed", "corrupt ZIP archive", reason=r"damaged ZIP archive"))

    # --- the catalogue: missing columns, an extra one, bad dates, unknown files, hostile values
    corpus.metadata = {
        "good/plain.jpg": {"date": "1975-06-01", "title": HOSTILE_TITLE, "description": LONG_DESCRIPTION},
        "a/img001.jpg": {"date": "1975-13-45", "title": "bad date", "description": HOSTILE_DESCRIPTION},
        "b/img001.jpg": {"date": "circa 1950", "title": "-TagsFromFile", "description": "-all="},
        "names/-n -TagsFromFile -all=.jpg": {"date": "1962", "title": HOSTILE_ARCHIVE_ID, "description": ""},
        "ghost/not here.jpg": {"date": "1999", "title": "a row naming no file", "description": ""},
    }
    lines = ["file,date,title,description,remark"]  # people and archive_id columns missing, remark unknown
    for name, row in corpus.metadata.items():
        cells = [name, row["date"], row["title"], row["description"], "x"]
        lines.append(",".join('"' + c.replace('"', '""') + '"' for c in cells))
    (root / "metadata.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return corpus


# ------------------------------------------------------------------------- running the workflow on it

# Loaded by every Python process of a run (PYTHONPATH): an Internet socket that tries to connect, or
# a name lookup, is written to $PHOTOARCHIVE_NETLOG and refused. Local (AF_UNIX) sockets still work.
_NETWORK_GUARD = '''\
import errno, os, socket, sys

_LOG = os.environ.get("PHOTOARCHIVE_NETLOG", "")


def _note(what):
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {' '.join(sys.argv[:2])}: {what}\\n")


def _guard(method):
    def guarded(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _note(f"{method.__name__} {address!r}")
            raise OSError(errno.ENETUNREACH, "network access is disabled in this test")
        return method(self, address, *args)
    return guarded


def _lookup(host, *args, **kwargs):
    _note(f"getaddrinfo {host!r}")
    raise socket.gaierror(socket.EAI_NONAME, "network access is disabled in this test")


if _LOG:
    for _name in ("connect", "connect_ex", "sendto"):
        setattr(socket.socket, _name, _guard(getattr(socket.socket, _name)))
    socket.getaddrinfo = _lookup
'''


def network_guard(folder: Path) -> dict[str, str]:
    """Environment for a run in which every Python process refuses (and logs) network access."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_NETWORK_GUARD, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "PHOTOARCHIVE_NETLOG": str(folder / "network.log")}


def can_unshare(*flags: str) -> bool:
    """Whether this machine lets us run a command in new (mount/network) namespaces."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    script = "mount -t tmpfs -o size=64k tmpfs /mnt" if "-m" in flags else "true"
    return subprocess.run(["unshare", *flags, "sh", "-c", script], capture_output=True).returncode == 0


def write_config(path: Path, overrides: dict) -> Path:
    """config.yaml of the repository with `overrides` merged in (nested), written to `path`."""
    import yaml

    def merge(base: dict, extra: dict) -> dict:
        for key, value in extra.items():
            base[key] = merge(dict(base.get(key) or {}), value) if isinstance(value, dict) else value
        return base

    repo = Path(__file__).resolve().parents[1]
    config = merge(yaml.safe_load((repo / "config.yaml").read_text(encoding="utf-8")), overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def workflow_command(workdir: Path, configfile: Path, *args: str, prefix: tuple[str, ...] = ()) -> list[str]:
    """The snakemake command line for the repository's workflow run in `workdir` with `configfile`."""
    from workflow import REPO, SNAKEMAKE

    # args (targets, flags) first: "--resources" takes every word after it
    return [*prefix, str(SNAKEMAKE), *args, "--snakefile", str(REPO / "Snakefile"), "--configfile", str(configfile),
            "--directory", str(workdir), "--cores", "2", "--resources", "gpu=1"]


def workflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a workflow run (the venv's tools first on PATH, the shared numba cache)."""
    import sys

    from workflow import REPO

    return {**os.environ, "NUMBA_CACHE_DIR": str(REPO / ".numba_cache"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **(extra or {})}
