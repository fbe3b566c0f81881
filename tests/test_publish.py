"""Tests for photoarchive.publish: published names, stale copies, the metadata written at publish."""

import json
import shutil
from pathlib import PurePosixPath

import numpy as np
import pytest

from photoarchive import metadata as md
from photoarchive.imageio import read_scan, write_image
from photoarchive.ingest import Source, photo_id
from photoarchive.publish import publish_photo, published_names, remove_stale
from photoarchive.stages import file_path


def plain(relpath: str) -> Source:
    return Source(photo_id(relpath), relpath)


def member(archive: str, name: str) -> Source:
    return Source(photo_id(f"{archive}/{name}"), f"{archive}/{name}", archive=archive, member=name)


def names_of(*sources: Source) -> list[tuple[str, str]]:
    names = published_names(sources)
    return [names[s.photo_id] for s in sources]


def _assert_distinct(names: list[tuple[str, str]]) -> None:
    """Distinct even on a case-insensitive file system (macOS, Windows shares)."""
    keys = [(rel.casefold(), ext) for rel, ext in names]
    assert len(set(keys)) == len(keys), names


def test_published_name_keeps_subfolders():
    assert names_of(plain("1975/summer/beach 01.jpg")) == [("1975/summer/beach 01", "jpg")]
    assert names_of(plain("top.png")) == [("top", "png")]


def test_zip_member_lives_under_archive_name():
    assert names_of(member("boxes/box 3.zip", "inner/a.tiff")) == [("boxes/box 3/inner/a", "tif")]
    assert names_of(member("b.ZIP", "x.png")) == [("b/x", "png")]


@pytest.mark.parametrize(("suffix", "ext"), [
    (".jpg", "jpg"), (".jpeg", "jpg"), (".JPG", "jpg"), (".tif", "tif"), (".tiff", "tif"), (".TIFF", "tif"),
    (".png", "png"), (".webp", "png"), (".bmp", "png"),
])
def test_format_mapping(suffix, ext):
    assert names_of(plain(f"a/img{suffix}"))[0][1] == ext


def test_non_images_are_not_published():
    txt = plain("notes.txt")
    assert txt.photo_id not in published_names([txt, plain("a.jpg")])


def test_clash_gets_distinct_names():
    png, bmp, other = plain("a/img.png"), plain("a/img.bmp"), plain("b/img.png")
    names = names_of(png, bmp, other)
    _assert_distinct(names)
    assert names[0][0].startswith("a/img_png-") and names[1][0].startswith("a/img_bmp-")
    assert names[2] == ("b/img", "png")  # no clash: left alone
    upper, lower = names_of(plain("IMG.PNG"), plain("img.bmp"))
    assert upper[0].startswith("IMG_png-") and lower[0].startswith("img_bmp-")


@pytest.mark.parametrize("sources", [
    pytest.param([plain("box/x.jpg"), member("box.zip", "x.jpg")], id="folder-vs-zip"),
    pytest.param([member("box.zip", "x.jpg"), member("box.zip", "../../x.jpg")], id="dotdot-member"),
    pytest.param([plain("IMG.JPG"), plain("img.jpg")], id="case-only"),
])
def test_same_suffix_clash_gets_distinct_names(sources):
    _assert_distinct(names_of(*sources))


def test_disambiguated_name_does_not_clash_again():
    _assert_distinct(names_of(plain("img.png"), plain("img.bmp"), plain("img_png.png")))




@pytest.mark.parametrize("name", ["../../x.jpg", "../x.jpg", "/etc/x.jpg", "a/../../../x.jpg", "..\\..\\x.jpg",
                                  "./../x.jpg", "///x.jpg", "\\x.jpg", "..", "a/..",
                                  "//x.jpg", "\\\\x.jpg"])
def test_member_name_never_escapes(name):
    source = member("sub/box.zip", name if name.endswith(".jpg") else name + "/y.jpg")
    rel, _ = published_names([source])[source.photo_id]
    path = PurePosixPath(rel)
    assert not path.is_absolute() and not rel.startswith("/")
    assert ".." not in path.parts and "\\" not in rel
    assert path.parts[:2] == ("sub", "box")  # stays under the archive's folder


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")
def test_publish_writes_the_recorded_provenance_once(tmp_path):
    """The working files carry no tags; publish gives each published file the master's tags and the history
    of the stages that made it, and leaves the working files as they were."""
    results, photo = tmp_path / "results", "p-0123abcd"
    pixels = np.full((8, 8, 3), 0.5, np.float32)
    for stage, index in (("stamp", 0), ("repair", 0), ("enhance", 0), ("restore", 0), ("matting", 1)):
        write_image(file_path(results, stage, photo, index), pixels)
    write_image(file_path(results, "matting", photo, 0), np.full((8, 8), 1.0, np.float32))
    write_image(file_path(results, "repair", photo, 1), np.zeros((8, 8), np.float32))
    with md.exiftool_session() as et:
        scan = tmp_path / "scan.jpg"
        write_image(scan, pixels)
        md.stamp_scan(et, scan, file_path(results, "stamp", photo), photo_id=photo, source="box/scan.jpg",
                      sha256="ab" * 32, archival={"title": "On the steps"})
        for stage in ("repair", "enhance", "matting", "restore"):
            prov = md.Provenance(stage=stage, backend="classical", parameters={"stage": stage})
            file_path(results, stage, photo, -1).write_text(json.dumps({"provenance": prov.to_dict()}))
        file_path(results, "qa", photo).parent.mkdir(parents=True)
        file_path(results, "qa", photo).write_text(json.dumps({"status": "processed", "reasons": []}))
        working = {p: p.read_bytes() for p in results.rglob("*.png")}
        image, matte, foreground, damage = publish_photo(et, results, photo, "processed", "box/scan", "jpg", 90,
                                                         {"decision": "accept"})
        tags = {path.name: md.read_tags(et, path) for path in (image, matte, foreground, damage)}
    assert all(path.read_bytes() == data for path, data in working.items())  # working files untouched, untagged
    stages = {name: [h["Parameters"].split(";")[0].removeprefix("stage=") for h in t["XMP-xmpMM:History"]]
              for name, t in tags.items()}
    assert stages == {"scan_restored.jpg": ["ingest", "repair", "enhance", "restore", "publish"],
                      "scan_matte.png": ["ingest", "repair", "enhance", "matting"],
                      "scan_fg.png": ["ingest", "repair", "enhance", "matting"],
                      "scan_damage.png": ["ingest", "repair"]}
    assert {name: t["XMP-photoarchive:Stage"] for name, t in tags.items()} == {
        "scan_restored.jpg": "restore", "scan_matte.png": "matting", "scan_fg.png": "matting",
        "scan_damage.png": "repair"}
    assert all(t["XMP-dc:Title"] == "On the steps" and t["XMP-photoarchive:SourceSHA256"] == "ab" * 32
               for t in tags.values())
    assert tags["scan_restored.jpg"]["XMP-xmp:Label"] == "Accepted"
    assert read_scan(image, 10**6).pixels.shape == (8, 8, 3)


def test_remove_stale(tmp_path):
    results = tmp_path / "results"
    files = {
        "review/1975/img_restored.jpg": True,  # this photo, other status: removed
        "review/1975/img_matte.png": True,
        "review/1975/img_fg.png": True,
        "review/1975/img_damage.png": True,
        "processed/1975/img_restored.jpg": False,  # the current status: kept
        "review/1975/img_restored.png": False,  # another extension: another photo
        "review/1975/img2_restored.jpg": False,  # another photo
        "review/img_restored.jpg": False,  # another folder
    }
    for rel in files:
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_bytes(b"x")
    removed = remove_stale(results, "processed", "1975/img", "jpg")
    assert sorted(p.relative_to(results).as_posix() for p in removed) == sorted(r for r, gone in files.items() if gone)
    for rel, gone in files.items():
        assert (results / rel).exists() != gone, rel
    assert remove_stale(results, "processed", "1975/img", "jpg") == []  # nothing left to remove
    # and the other way round
    removed = remove_stale(results, "review", "1975/img", "jpg")
    assert [p.relative_to(results).as_posix() for p in removed] == ["processed/1975/img_restored.jpg"]
