"""Tests for photoarchive.ingest: photo ids, discovery, safe ZIP unpacking, per-file checks."""

import hashlib
import json
import os
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest
from PIL import Image

from photoarchive import ingest
from photoarchive.ingest import (
    MEMBERS_FILE,
    IngestRecord,
    Source,
    ZipLimits,
    discover_sources,
    inspect_file,
    locate_source,
    photo_id,
    unpack_archive,
)

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _png_bytes(seed: int = 0, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    return cv2.imencode(".png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))[1].tobytes()


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and mtime: a before/after snapshot."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


# --------------------------------------------------------------------------------------------------
# photo ids


def test_photo_id_is_stable_across_runs_and_versions():
    # Changing this value would rename every result of every existing archive.
    assert photo_id("box 3/img001.jpg") == "box_3__img001.jpg-4cc4dc8b"
    assert photo_id("box 3/img001.jpg") == photo_id("box 3/img001.jpg")


def test_photo_id_unique_for_same_name_in_two_folders():
    assert photo_id("1975/img001.jpg") != photo_id("1976/img001.jpg")
    # names that slugify alike still differ by their hash
    assert photo_id("a b.jpg") != photo_id("a_b.jpg") != photo_id("a__b.jpg")
    assert photo_id("老照片 1975.jpg") != photo_id("新照片 1975.jpg")


@pytest.mark.parametrize("relpath", [
    "my photo 1.jpg",
    "老照片 1975.jpg",
    "-rf.jpg",
    "--help/--version.png",
    "it's \"grandma\".jpg",
    "$HOME `id` $(rm -rf x).jpg",
    "Ünïcödé/ça va?.tif",
    "照片.jpg",
    "a/" * 80 + "deep.jpg",
    ".hidden-looking.jpg",
])
def test_photo_id_is_filesystem_safe(tmp_path, relpath):
    pid = photo_id(relpath)
    assert SAFE_ID.match(pid), pid  # ASCII letters, digits, . _ - only; never starts with '-' or '.'
    assert "/" not in pid and pid.isascii()
    assert len(pid) <= 80
    (tmp_path / pid).write_text("usable as a file name")
    assert (tmp_path / pid).read_text() == "usable as a file name"


def test_photo_id_keeps_readable_ascii_part():
    assert photo_id("老照片 1975.jpg").startswith("1975.jpg-")
    assert photo_id("box/img.jpg").startswith("box__img.jpg-")


# --------------------------------------------------------------------------------------------------
# discover_sources


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_discover_sources(tmp_path):
    root = tmp_path / "in"
    (root / "1975" / "summer").mkdir(parents=True)
    (root / ".thumbs").mkdir()
    for rel in ("a.jpg", "1975/b.png", "1975/summer/c.tif", "notes.txt", "Thumbs.db", ".DS_Store",
                ".thumbs/a.jpg", "1975/._b.png", "metadata.csv", "1975/draft.tmp"):
        (root / rel).write_bytes(b"x")
    with zipfile.ZipFile(root / "box.zip", "w") as zf:
        zf.writestr("inner/", b"")  # a directory entry: not a source
        zf.writestr("inner/d.jpg", b"x")
        zf.writestr("e.png", b"x")
    (root / "broken.zip").write_bytes(b"PK\x03\x04 this is not really a zip")

    sources = discover_sources(root, skip=(root / "metadata.csv",), ignore=("Thumbs.db", "*.tmp"))
    by_rel = {s.relpath: s for s in sources}
    assert len(by_rel) == len(sources)
    assert set(by_rel) == {"1975/b.png", "1975/summer/c.tif", "a.jpg", "box.zip/e.png", "box.zip/inner/d.jpg",
                           "broken.zip", "notes.txt"}
    member = by_rel["box.zip/inner/d.jpg"]
    assert member.archive == "box.zip" and member.member == "inner/d.jpg"
    assert member.photo_id == photo_id("box.zip/inner/d.jpg")
    plain = by_rel["1975/summer/c.tif"]
    assert plain.archive is None and plain.member is None and plain.photo_id == photo_id("1975/summer/c.tif")
    broken = by_rel["broken.zip"]  # a corrupt ZIP becomes one (failing) source
    assert broken.archive is None and not broken.is_image
    assert not by_rel["notes.txt"].is_image and plain.is_image


def test_discover_sources_plain_files_sorted(tmp_path):
    rels = ["b/z.jpg", "a/y.jpg", "c.jpg", "a.jpg", "a b/x.jpg"]
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [s.relpath for s in discover_sources(tmp_path)] == sorted(rels, key=PurePosixPath)


def test_discover_sources_zip_members_sorted(tmp_path):
    _zip(tmp_path / "box.zip", {"z.jpg": b"x", "a.jpg": b"x"})
    assert [s.relpath for s in discover_sources(tmp_path)] == ["box.zip/a.jpg", "box.zip/z.jpg"]


def test_discover_sources_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"x")
    os.symlink(outside, root / "linked_dir")
    os.symlink(outside / "secret.jpg", root / "linked.jpg")
    assert [s.relpath for s in discover_sources(root)] == ["a.jpg"]


def test_discover_sources_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="input_dir"):
        discover_sources(tmp_path / "nope")


def test_source_suffix_is_case_insensitive():
    assert Source("x", "A/B.JPEG").suffix == ".jpeg" and Source("x", "A/B.JPEG").is_image
    assert not Source("x", "a.gif").is_image


# --------------------------------------------------------------------------------------------------
# unpack_archive


@pytest.fixture
def work(tmp_path):
    """(zip folder, dest) with dest inside a parent folder we can watch."""
    (tmp_path / "zips").mkdir()
    (tmp_path / "work" / "sibling").mkdir(parents=True)
    (tmp_path / "work" / "sibling" / "keep.jpg").write_bytes(b"keep")
    return tmp_path / "zips", tmp_path / "work" / "dest"


def _assert_nothing_outside(dest: Path, before: dict) -> None:
    after = {k: v for k, v in _tree(dest.parent).items() if not (k == dest.name or k.startswith(dest.name + "/"))}
    assert after == before
    for p in dest.rglob("*"):
        p.resolve().relative_to(dest.resolve())  # raises if anything points outside


def test_unpack_good_members(work):
    zips, dest = work
    jpg, png = _png_bytes(1), _png_bytes(2)
    z = _zip(zips / "box.zip", {"a.jpg": jpg, "sub dir/b.png": png, "老照片.png": _png_bytes(3)})
    before = _tree(dest.parent)
    results = unpack_archive(z, dest, ZipLimits())
    assert {k: v["status"] for k, v in results.items()} == {"a.jpg": "ok", "sub dir/b.png": "ok", "老照片.png": "ok"}
    assert (dest / results["a.jpg"]["path"]).read_bytes() == jpg
    assert (dest / results["sub dir/b.png"]["path"]).read_bytes() == png
    paths = [results[k]["path"] for k in results]
    assert len(set(paths)) == 3 and all(not Path(p).is_absolute() for p in paths)
    assert json.loads((dest / MEMBERS_FILE).read_text(encoding="utf-8")) == results
    _assert_nothing_outside(dest, before)


@pytest.mark.parametrize(("name", "why"), [
    ("../x.jpg", ".."),
    ("../../x.jpg", ".."),
    ("a/../../x.jpg", ".."),
    ("..\\x.jpg", ".."),
    ("/tmp/abs.jpg", "absolute"),
    ("\\abs.jpg", "absolute"),
    ("C:/abs.jpg", "absolute"),
    ("inner.zip", "nested"),
    ("INNER.ZIP", "nested"),
    ("readme.txt", "not a supported image type"),
])
def test_unpack_refuses_unsafe_names(work, name, why):
    zips, dest = work
    z = _zip(zips / "evil.zip", {name: _png_bytes(), "ok.jpg": _png_bytes(1)})
    before = _tree(dest.parent)
    results = unpack_archive(z, dest, ZipLimits())
    assert results[name]["status"] == "failed" and results[name]["path"] is None
    assert why in results[name]["reason"]
    assert results["ok.jpg"]["status"] == "ok"
    assert sorted(p.name for p in dest.iterdir()) == sorted([MEMBERS_FILE, Path(results["ok.jpg"]["path"]).name])
    _assert_nothing_outside(dest, before)
    assert not (dest.parent / "x.jpg").exists() and not (dest.parent.parent / "x.jpg").exists()


def test_unpack_refuses_symlink_entry(work):
    zips, dest = work
    z = zips / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("photo.jpg")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    results = unpack_archive(z, dest, ZipLimits())
    assert results["photo.jpg"]["status"] == "failed" and "symbolic link" in results["photo.jpg"]["reason"]
    assert sorted(p.name for p in dest.iterdir()) == [MEMBERS_FILE]


def test_unpack_refuses_encrypted_entry(work):
    zips, dest = work
    z = zips / "secret.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("photo.jpg", _png_bytes())
        zf.getinfo("photo.jpg").flag_bits |= 0x1  # the central directory says: encrypted
    with zipfile.ZipFile(z) as zf:
        assert zf.getinfo("photo.jpg").flag_bits & 0x1
    results = unpack_archive(z, dest, ZipLimits())
    assert results["photo.jpg"]["status"] == "failed"
    assert "encrypted" in results["photo.jpg"]["reason"] and "decrypt" in results["photo.jpg"]["reason"]
    assert sorted(p.name for p in dest.iterdir()) == [MEMBERS_FILE]


def test_unpack_refuses_over_compressed_member(work):
    zips, dest = work
    z = _zip(zips / "bomb.zip", {"bomb.png": b"\0" * 200_000, "ok.png": _png_bytes()})
    results = unpack_archive(z, dest, ZipLimits(max_ratio=20))
    assert results["bomb.png"]["status"] == "failed"
    assert "ratio" in results["bomb.png"]["reason"] and "max_ratio" in results["bomb.png"]["reason"]
    assert results["ok.png"]["status"] == "ok"
    assert not list(dest.glob("bomb*"))


def test_unpack_refuses_oversized_member(work):
    zips, dest = work
    big = np.random.default_rng(0).bytes(300_000)
    z = _zip(zips / "big.zip", {"big.png": big}, zipfile.ZIP_STORED)
    results = unpack_archive(z, dest, ZipLimits(max_member_mb=0.1))
    assert results["big.png"]["status"] == "failed" and "max_member_mb" in results["big.png"]["reason"]
    assert not list(dest.glob("big*"))


def test_unpack_total_size_limit(work):
    zips, dest = work
    rng = np.random.default_rng(0)
    members = {f"{i}.png": rng.bytes(1000) for i in range(4)}  # incompressible
    z = _zip(zips / "many.zip", members, zipfile.ZIP_STORED)
    results = unpack_archive(z, dest, ZipLimits(max_total_mb=2500 / 2**20))
    assert [results[f"{i}.png"]["status"] for i in range(4)] == ["ok", "ok", "failed", "failed"]
    assert "max_total_mb" in results["2.png"]["reason"]
    written = sum(p.stat().st_size for p in dest.iterdir() if p.name != MEMBERS_FILE)
    assert written == 2000


def test_unpack_member_count_limit(work):
    zips, dest = work
    z = _zip(zips / "many.zip", {f"{i}.png": b"x" for i in range(3)})
    results = unpack_archive(z, dest, ZipLimits(max_members=2))
    assert [results[f"{i}.png"]["status"] for i in range(3)] == ["ok", "ok", "failed"]
    assert "max_members" in results["2.png"]["reason"]


def test_unpack_member_larger_than_declared_leaves_no_file(work):
    zips, dest = work
    data = np.random.default_rng(0).bytes(5000)
    z = _zip(zips / "liar.zip", {"liar.png": data}, zipfile.ZIP_STORED)
    raw = bytearray(z.read_bytes())
    # declare 100 bytes instead of 5000, in both the local header and the central directory
    local = raw.find(b"PK\x03\x04")
    central = raw.find(b"PK\x01\x02")
    raw[local + 22:local + 26] = (100).to_bytes(4, "little")
    raw[central + 24:central + 28] = (100).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    results = unpack_archive(z, dest, ZipLimits())
    assert results["liar.png"]["status"] == "failed"
    assert "could not extract" in results["liar.png"]["reason"] or "larger than" in results["liar.png"]["reason"]
    assert sorted(p.name for p in dest.iterdir()) == [MEMBERS_FILE]


def test_locate_source(work):
    zips, dest = work
    jpg = _png_bytes(5)
    z = _zip(zips / "box.zip", {"good.jpg": jpg, "../evil.jpg": jpg})
    unpack_archive(z, dest, ZipLimits())
    good = Source(photo_id("box.zip/good.jpg"), "box.zip/good.jpg", archive="box.zip", member="good.jpg")
    path, why = locate_source(good, dest)
    assert why == "" and path.read_bytes() == jpg
    evil = Source(photo_id("box.zip/../evil.jpg"), "box.zip/../evil.jpg", archive="box.zip", member="../evil.jpg")
    path, why = locate_source(evil, dest)
    assert path is None and ".." in why
    ghost = Source("g", "box.zip/ghost.jpg", archive="box.zip", member="ghost.jpg")
    path, why = locate_source(ghost, dest)
    assert path is None and "not found" in why
    plain = Source(photo_id("a.jpg"), "a.jpg")
    assert locate_source(plain, zips / "a.jpg") == (zips / "a.jpg", "")


# --------------------------------------------------------------------------------------------------
# inspect_file


def _record(tmp_path: Path, name: str, data: bytes | None = None, **kwargs) -> IngestRecord:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    options = {"max_pixels": 10**8, "max_file_mb": 100.0} | kwargs
    return inspect_file(Source(photo_id(name), name), path, **options)


def test_inspect_good_file(tmp_path):
    data = _png_bytes(7, size=24)
    record = _record(tmp_path, "good.png", data)
    assert record.status == "ok" and record.reason == ""
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert (record.width, record.height, record.bit_depth, record.mode) == (24, 24, 8, "RGB")
    assert re.fullmatch(r"[0-9a-f]{16}", record.phash)
    assert record.photo_id == photo_id("good.png") and record.source == "good.png"


def test_inspect_sixteen_bit_and_upright_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (30, 20)).save(tmp_path / "rot.jpg", exif=exif)
    record = _record(tmp_path, "rot.jpg")
    assert (record.width, record.height) == (20, 30)  # upright size
    cv2.imwrite(str(tmp_path / "deep.tif"), np.zeros((4, 5, 3), np.uint16))
    assert _record(tmp_path, "deep.tif").bit_depth == 16


def test_inspect_damaged_file(tmp_path):
    data = _png_bytes(1, size=64)
    record = _record(tmp_path, "bad.png", data[: len(data) // 2])
    assert record.status == "failed" and "truncated" in record.reason
    assert record.sha256 == hashlib.sha256(data[: len(data) // 2]).hexdigest()
    assert record.phash == "" and record.width == 0


def test_inspect_unsupported_file(tmp_path):
    record = _record(tmp_path, "notes.txt", b"hello")
    assert record.status == "failed" and record.reason == "not a supported image type (.txt)"
    assert record.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert _record(tmp_path, "README", b"x").reason == "not a supported image type (no extension)"


def test_inspect_damaged_zip(tmp_path):
    record = _record(tmp_path, "broken.zip", b"PK\x03\x04garbage")
    assert record.status == "failed" and "damaged ZIP" in record.reason


def test_inspect_oversized_file_is_not_decoded(tmp_path, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an oversized file")

    monkeypatch.setattr(ingest, "read_scan", no_decoding)
    data = np.random.default_rng(0).bytes(300_000)
    record = _record(tmp_path, "huge.jpg", data, max_file_mb=0.1)
    assert record.status == "failed" and "ingest.max_file_mb" in record.reason
    assert record.sha256 == hashlib.sha256(data).hexdigest()


def test_inspect_too_many_pixels(tmp_path):
    record = _record(tmp_path, "big.png", _png_bytes(0, size=32), max_pixels=1000)
    assert record.status == "failed" and "ingest.max_pixels" in record.reason


def test_inspect_refused_member_keeps_reason(tmp_path):
    source = Source("m", "box.zip/../x.jpg", archive="box.zip", member="../x.jpg")
    record = inspect_file(source, None, 10**8, 100.0, refusal="ZIP entry path escapes the archive ('..'); refused")
    assert record.status == "failed" and record.reason.startswith("ZIP entry path escapes")


def test_ingest_record_json_round_trip(tmp_path):
    record = _record(tmp_path, "a.png", _png_bytes())
    record.notes = ("multi-page file", "老照片")
    assert IngestRecord.from_json(record.to_json()) == record


def test_discover_sources_lists_files_folder_by_folder(tmp_path):
    """Sorted by folder parts ("a/b" before "a-c"), hidden names and special files left out."""
    for name in ("a-c.jpg", "a/b.jpg", "a/.thumbs/t.jpg", ".DS_Store", "B/x.png", "a/z/y.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    os.mkfifo(tmp_path / "a" / "pipe.jpg")
    assert [s.relpath for s in discover_sources(tmp_path)] == ["B/x.png", "a/b.jpg", "a/z/y.tif", "a-c.jpg"]
