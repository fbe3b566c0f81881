"""Finding the scans of an archive folder, naming them, unpacking ZIPs safely, and checking each file."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import stat
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path, PurePosixPath

import imagehash
import numpy as np
from PIL import Image

from photoarchive.imageio import IMAGE_SUFFIXES, ImageRejected, read_scan, write_atomic

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip",)
HASH_MAX_SIDE = 1024  # the perceptual hash is taken from a copy this size (it looks at 32×32 anyway)
MEMBERS_FILE = "members.json"  # written by the unpack step beside the extracted members
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Source:
    """One input file of the archive (a plain file, or a member of a ZIP in the input folder)."""

    photo_id: str  # stable, unique, filesystem-safe
    relpath: str  # path relative to the input folder; ZIP members: "box.zip/inner/path.jpg"
    archive: str | None = None  # relative path of the ZIP holding it, if any
    member: str | None = None  # the member's name inside the ZIP
    refusal: str = ""  # why it is refused without being read (then `relpath` is a printable stand-in)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.relpath).suffix.lower()

    @property
    def is_image(self) -> bool:
        return self.suffix in IMAGE_SUFFIXES


def photo_id(relpath: str) -> str:
    """A filesystem-safe, stable id for a relative path: readable slug + 8 hex digits of its hash.

    Two `img001.jpg` in different folders, names with spaces or non-ASCII characters, all get
    distinct ids; the same path always gets the same id.
    """
    ascii_name = unicodedata.normalize("NFKD", relpath).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("_", ascii_name.replace("/", "__")).strip("._-")[:60] or "photo"
    # surrogateescape: a name that is not valid UTF-8 (e.g. Latin-1 bytes from an old disk) hashes
    # its raw bytes; for every valid name this is the plain UTF-8 encoding.
    digest = hashlib.sha1(relpath.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{slug}-{digest}"


def archive_id(relpath: str) -> str:
    """The id of a ZIP archive's unpack folder."""
    return photo_id(relpath)


def discover_sources(input_dir: Path, skip: tuple[Path, ...] = (), ignore: tuple[str, ...] = ()) -> list[Source]:
    """All files under `input_dir` (recursively) plus the members of ZIPs in it, sorted by path.

    Hidden files and folders (names starting with '.'), names matching an `ignore` pattern
    (fnmatch) and paths in `skip` (e.g. the metadata CSV) are left out. Symbolic links are not
    followed. Only the ZIP's directory is read here, nothing is extracted.
    """
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(
            f"input folder {input_dir} does not exist; set input_dir in config.yaml or pass "
            "--config input_dir=/path/to/scans"
        )
    skipped = {p.resolve() for p in skip}
    skipped_names = {p.name for p in skipped}
    sources: list[Source] = []
    for parts in sorted(_visible_files(input_dir, ())):
        path = input_dir.joinpath(*parts)
        if parts[-1] in skipped_names and path.resolve() in skipped:
            continue
        if any(fnmatch.fnmatch(parts[-1], pattern) for pattern in ignore):
            continue
        relpath = "/".join(parts)
        if not is_utf8(relpath):
            # Snakemake (and CSV/JSON) cannot carry such a name: the file is listed as failed, unread.
            sources.append(Source(photo_id(relpath), printable_name(relpath), refusal=(
                "the file name is not valid UTF-8 (probably Latin-1 from an old disk); rename it, e.g. with "
                "`convmv -f latin1 -t utf8 -r --notest <folder>`, and run again")))
            continue
        if path.suffix.lower() in ARCHIVE_SUFFIXES:
            sources.extend(_zip_sources(path, relpath))
        else:
            sources.append(Source(photo_id(relpath), relpath))
    return _with_unique_ids(sources)


INVENTORY_VERSION = 1


def inventory_context(input_dir: Path, skip: tuple[Path, ...] = (), ignore: tuple[str, ...] = ()) -> dict:
    """What an inventory was listed with (`discover_sources`' arguments): a cached inventory is only used
    for the same context."""
    return {"version": INVENTORY_VERSION, "input_dir": str(Path(input_dir).resolve()),
            "skip": sorted(str(Path(p).resolve()) for p in skip), "ignore": list(ignore)}


def inventory_bytes(sources: list[Source], context: dict) -> bytes:
    """The inventory as JSON, one source a line, the same bytes for the same sources and context.

    ASCII only (`ensure_ascii`): every name, even one with lone surrogates, is written and read back
    exactly."""
    names = [f.name for f in fields(Source)]
    lines = [json.dumps([getattr(s, name) for name in names]) for s in sources]
    head = json.dumps({**context, "fields": names}, sort_keys=True)
    return ("{\"context\": " + head + ",\n\"sources\": [\n" + ",\n".join(lines) + "\n]}\n").encode("ascii")


def write_inventory(path: Path, sources: list[Source], context: dict) -> bool:
    """Write the inventory to `path` atomically, only when its bytes change; True when written."""
    data = inventory_bytes(sources, context)
    try:
        if Path(path).read_bytes() == data:
            return False
    except OSError:
        pass
    write_atomic(Path(path), data)
    return True


def read_inventory(path: Path, context: dict) -> list[Source] | None:
    """The sources of a cached inventory written for `context`; None when it is missing, unreadable, or
    was written for another input folder, skip list, ignore list or format."""
    try:
        data = json.loads(Path(path).read_bytes())
        head = data["context"]
        names = head.pop("fields")
        if head != context or names != [f.name for f in fields(Source)]:
            return None
        return [Source(*row) for row in data["sources"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _visible_files(folder: Path, parts: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Path parts (relative to the input folder) of the regular files below `folder`: one `scandir` per
    folder, its cached types reused; hidden names skipped, symbolic links never followed, unreadable
    folders left out (as `Path.rglob` does)."""
    try:
        with os.scandir(folder) as entries:
            found = list(entries)
    except PermissionError:
        return
    for entry in found:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _visible_files(Path(entry.path), (*parts, entry.name))
        elif entry.is_file(follow_symlinks=False):
            yield (*parts, entry.name)


def _with_unique_ids(sources: list[Source]) -> list[Source]:
    """Make every photo id unique, so no input can silently replace another.

    Two paths share an id only if their readable slugs agree (long common folder names are cut at
    60 characters) and so do 8 hex digits of their hashes: rare, but possible in a large archive.
    Those get 8 more digits ('slug-<more>-<digits>'). A ZIP with two entries of the same name keeps
    the first; the others are refused with a reason.
    """
    counts = Counter(s.photo_id for s in sources)
    if max(counts.values(), default=0) < 2:
        return sources
    out: list[Source] = []
    occurrences: Counter = Counter()
    for s in sources:
        if counts[s.photo_id] > 1:
            occurrences[(s.relpath, s.member)] += 1
            repeat = occurrences[(s.relpath, s.member)] - 1  # > 0: a second ZIP entry of the same name
            digest = hashlib.sha1((s.relpath + "\0" * repeat).encode("utf-8", "surrogateescape")).hexdigest()
            new_id = f"{s.photo_id[:-9]}-{digest[8:16]}-{digest[:8]}"
            log.warning("photo id %s is shared by several inputs; %s gets %s", s.photo_id, s.relpath, new_id)
            refusal = s.refusal or ("the ZIP holds several entries with this name; only the first one is used"
                                    if repeat else "")
            s = replace(s, photo_id=new_id, refusal=refusal)
        out.append(s)
    return out


def is_utf8(text: str) -> bool:
    """False for a name that is not valid UTF-8 (bytes from an old disk, kept as surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(relpath: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates) shown as \\xNN."""
    return relpath.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _zip_sources(path: Path, relpath: str) -> list[Source]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = sorted(info.filename for info in zf.infolist() if not info.is_dir())
    except (zipfile.BadZipFile, OSError):
        # The archive itself becomes one (failed) source so the manifest accounts for it.
        return [Source(photo_id(relpath), relpath)]
    return [
        Source(photo_id(f"{relpath}/{name}"), f"{relpath}/{name}", archive=relpath, member=name)
        for name in names
    ]


# --------------------------------------------------------------------------------------------------
# Safe ZIP unpacking


@dataclass
class ZipLimits:
    max_total_mb: float = 2048  # total uncompressed size of all extracted members
    max_member_mb: float = 1024
    max_ratio: float = 200  # uncompressed / compressed size per member (zip-bomb guard)
    max_members: int = 10000


def unpack_archive(zip_path: Path, dest: Path, limits: ZipLimits) -> dict[str, dict]:
    """Extract the image members of `zip_path` into `dest`, refusing anything unsafe.

    Returns {member name: {"status": "ok" | "failed", "reason", "path"}}, also written to
    `dest/members.json`. Members are written under
    `dest` only: absolute names, `..` components, symbolic links, encrypted entries, nested
    archives, oversized or over-compressed members are refused with a reason, never extracted.
    """
    dest.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    total = 0
    with zipfile.ZipFile(zip_path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for count, info in enumerate(infos):
            name = info.filename
            reason = _refusal(info, limits)
            if reason is None and count >= limits.max_members:
                reason = f"archive has more than {limits.max_members} members (ingest.zip.max_members)"
            if reason is None and total + info.file_size > limits.max_total_mb * 2**20:
                reason = f"archive would unpack to more than {limits.max_total_mb:g} MB (ingest.zip.max_total_mb)"
            if reason is not None:
                results[name] = {"status": "failed", "reason": reason, "path": None}
                continue
            target = dest / _safe_member_path(name)
            try:
                _extract_member(zf, info, target, limits)
            except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError) as exc:
                target.unlink(missing_ok=True)
                results[name] = {"status": "failed", "reason": f"could not extract from the ZIP: {exc}",
                                 "path": None}
                continue
            total += info.file_size
            results[name] = {"status": "ok", "reason": "", "path": str(target.relative_to(dest)),
                             "crc": info.CRC, "size": info.file_size}
    write_atomic(dest / MEMBERS_FILE, json.dumps(results, ensure_ascii=False, indent=1).encode("utf-8"))
    return results


def source_fingerprint(source: Source, input_path: Path | None) -> list:
    """What identifies the content of a source without reading it: size and mtime of a file, CRC-32 and
    size of a ZIP member (its unpacked copy is new after every unpacking), or why it is unavailable."""
    if source.refusal or input_path is None:
        return ["refused", source.refusal]
    if not source.archive:
        info = Path(input_path).stat()
        return [info.st_size, info.st_mtime_ns]
    members = json.loads((Path(input_path) / MEMBERS_FILE).read_text(encoding="utf-8"))
    entry = members.get(source.member or "") or {}
    return [entry.get("status"), entry.get("reason"), entry.get("crc"), entry.get("size")]


def locate_source(source: Source, input_path: Path) -> tuple[Path | None, str]:
    """The readable file behind a source: (path, "") or (None, why it is not available).

    `input_path` is the scan itself, or for a ZIP member the archive's unpack folder.
    """
    if not source.archive:
        return Path(input_path), ""
    members = json.loads((Path(input_path) / MEMBERS_FILE).read_text(encoding="utf-8"))
    entry = members.get(source.member or "")
    if entry is None:
        return None, "member listed in the ZIP directory but not found when unpacking"
    if entry["status"] != "ok":
        return None, entry["reason"]
    return Path(input_path) / entry["path"], ""


def _refusal(info: zipfile.ZipInfo, limits: ZipLimits) -> str | None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "ZIP entry has an absolute path; refused so nothing is written outside the work area"
    if ".." in parts:
        return "ZIP entry path escapes the archive ('..'); refused"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "ZIP entry is a symbolic link; refused"
    if info.flag_bits & 0x1:
        return "ZIP entry is encrypted; decrypt the archive and add the files directly"
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in ARCHIVE_SUFFIXES:
        return "nested archive inside a ZIP; unpack it and add its files directly"
    if suffix not in IMAGE_SUFFIXES:
        return f"not a supported image type ({suffix or 'no extension'})"
    if info.file_size > limits.max_member_mb * 2**20:
        return f"ZIP entry unpacks to {info.file_size / 2**20:.0f} MB, over ingest.zip.max_member_mb"
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        return (f"ZIP entry compression ratio {info.file_size / info.compress_size:.0f}:1 exceeds "
                f"{limits.max_ratio:g}:1 (zip-bomb guard, ingest.zip.max_ratio)")
    return None


def _safe_member_path(name: str) -> Path:
    """An ASCII path for a member, unique (hash digits of its name) and short enough for any file system."""
    pure = PurePosixPath(name.replace("\\", "/"))
    folders = [(_UNSAFE.sub("_", p) or "_")[:200] for p in pure.parts[:-1]]
    last = PurePosixPath(_UNSAFE.sub("_", pure.name) or "_")
    suffix = last.suffix[:16]
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return Path(*folders, f"{last.name[:len(last.name) - len(last.suffix)][:180]}-{digest}{suffix}")


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: ZipLimits) -> None:
    """Stream one member out, stopping if it produces more bytes than its header declared."""
    target.parent.mkdir(parents=True, exist_ok=True)
    budget = min(info.file_size, limits.max_member_mb * 2**20)
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:
                raise ValueError("ZIP entry is larger than its header declares; refused")
            dst.write(chunk)


# --------------------------------------------------------------------------------------------------
# Per-file check: what the dedup stage and the manifest need to know about every input


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class IngestRecord:
    photo_id: str
    source: str  # relative path in the input folder
    status: str  # "ok" | "failed"
    reason: str = ""
    sha256: str = ""
    width: int = 0
    height: int = 0
    bit_depth: int = 0
    mode: str = ""
    phash: str = ""  # hex perceptual hash of the upright image
    notes: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> IngestRecord:
        data = json.loads(text)
        data["notes"] = tuple(data.get("notes", ()))
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})  # not the stage runner's "key"


def inspect_file(source: Source, path: Path | None, max_pixels: int, max_file_mb: float,
                 hash_size: int = 8, refusal: str = "") -> IngestRecord:
    """Check one input file: hashes, size, and whether it decodes; never raises for bad input."""
    record = IngestRecord(photo_id=source.photo_id, source=source.relpath, status="failed")
    if refusal:
        record.reason = refusal
        return record
    if not source.is_image:
        record.reason = f"not a supported image type ({source.suffix or 'no extension'})"
        if source.suffix in ARCHIVE_SUFFIXES:
            record.reason = "damaged ZIP archive: it cannot be opened"
        if path is not None and path.exists():
            record.sha256 = file_sha256(path)
        return record
    assert path is not None
    record.sha256 = file_sha256(path)
    if path.stat().st_size > max_file_mb * 2**20:
        record.reason = f"file is {path.stat().st_size / 2**20:.0f} MB, over ingest.max_file_mb"
        return record
    try:
        scan = read_scan(path, max_pixels, max_side=HASH_MAX_SIDE)  # decodes all, keeps a small copy
    except ImageRejected as exc:
        record.reason = str(exc)
        return record
    except MemoryError:
        record.reason = "not enough memory to decode this scan"
        return record
    record.status = "ok"
    record.height, record.width = scan.full_shape
    record.bit_depth, record.mode, record.notes = scan.bit_depth, scan.mode, tuple(scan.notes)
    record.phash = perceptual_hash(scan.pixels, hash_size)
    return record


def perceptual_hash(pixels: np.ndarray, hash_size: int = 8) -> str:
    """pHash (DCT) of float RGB pixels as a hex string."""
    gray = (np.clip(pixels.mean(axis=2), 0, 1) * 255 + 0.5).astype(np.uint8)
    return str(imagehash.phash(Image.fromarray(gray), hash_size=hash_size))
