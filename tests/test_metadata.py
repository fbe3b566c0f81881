"""Tests for photoarchive.metadata: dates, escaping, the exiftool stamp chain, metadata.csv."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from photoarchive import SOFTWARE
from photoarchive import metadata as md
from photoarchive.imageio import write_image

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool is not installed")


# --------------------------------------------------------------------------------------------------
# parse_date / escape_value


@pytest.mark.parametrize(("text", "expected"), [
    ("1975-06-15", ("1975:06:15 00:00:00", "1975:06:15")),
    (" 1975/6/5 ", ("1975:06:05 00:00:00", "1975:06:05")),
    ("1975:06:15", ("1975:06:15 00:00:00", "1975:06:15")),
    ("1975-06-15 14:30", ("1975:06:15 14:30:00", "1975:06:15 14:30:00")),
    ("1975-06-15T14:30:05", ("1975:06:15 14:30:05", "1975:06:15 14:30:05")),
    ("1975-06", (None, "1975:06")),
    ("1975", (None, "1975")),
    ("1975-13", (None, None)),
    ("1975-02-30", (None, None)),
    ("1975-06-15 25:00", (None, None)),
    ("June 1975", (None, None)),
    ("75-06-15", (None, None)),
    ("1975-06-15; rm -rf /", (None, None)),
    ("", (None, None)),
])
def test_parse_date(text, expected):
    assert md.parse_date(text) == expected


def test_escape_value_neutralises_line_breaks_and_controls():
    assert md.escape_value("a\nb") == "a\\nb"
    assert md.escape_value("a\r\nb\rc") == "a\\nb\\nc"
    assert md.escape_value("C:\\new") == "C:\\\\new"  # a backslash cannot start an escape
    escaped = md.escape_value("x\x00y\x1bz\x7f\tq")
    assert "\n" not in escaped and all(ord(ch) >= 0x20 or ch == "\t" for ch in escaped)
    assert escaped == "x y z \tq"
    assert md.escape_value(42) == "42"


def test_escape_value_shortens_long_values():
    escaped = md.escape_value("x" * 5000)
    assert len(escaped) == md.MAX_VALUE_CHARS + 1 and escaped.endswith("…")


def test_archival_args_notes_bad_date_and_splits_people():
    args, notes = md.archival_args({"date": "sometime in 1975", "people": " Ann ; ;Bob Smith;", "title": "  "})
    assert args == ["-XMP-iptcExt:PersonInImage=Ann", "-XMP-iptcExt:PersonInImage=Bob Smith"]
    assert len(notes) == 1 and "sometime in 1975" in notes[0]
    args, notes = md.archival_args({"date": "1975", "title": "t" * (md.MAX_VALUE_CHARS + 1)})
    assert "-XMP-photoshop:DateCreated=1975" in args
    assert not any("DateTimeOriginal" in a for a in args)  # EXIF cannot hold a bare year
    assert any("shortened" in n for n in notes)


# --------------------------------------------------------------------------------------------------
# The stamp chain on real files, read back with exiftool

# A title that would be options if it reached exiftool's argument list as lines ({folder} is filled in)
TITLE = "Wedding, 1975\nsecond line -tagsFromFile /etc/passwd -all:all\r\n-o\n{folder}/leak.jpg | {{a,b}} C:\\new"
PARAMS = {"preset": "auto", "odd": "a,b|c{d}[e]\nf"}


def _icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def et():
    """One exiftool process for the whole module (starting one costs most of a second)."""
    with md.exiftool_session() as session:
        yield session


@pytest.fixture(scope="module")
def chain(tmp_path_factory, et):
    """Scan → working master → published JPEG and matte (the working files between carry no tags; the
    stages' provenance is written at publish); tags of each, read back."""
    folder = tmp_path_factory.mktemp("chain")
    exif = Image.Exif()
    exif[0x0112] = 6  # the scan is stored rotated
    exif[0x010F] = "ScanCo"
    Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(folder / "scan.jpg", exif=exif, icc_profile=_icc())
    upright = np.full((4, 6, 3), 0.5, np.float32)
    master, published, matte = folder / "-master.png", folder / "out.jpg", folder / "matte.png"
    for path in (master, published, matte):
        write_image(path, upright)
    (folder / "bystander.jpg").write_bytes((folder / "scan.jpg").read_bytes())
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name in ("scan.jpg", "bystander.jpg")}
    title = TITLE.format(folder=folder)
    archival = {"file": "box/scan.jpg", "date": "1975-06-15", "title": title, "description": "On the steps",
                "people": "Ann Smith; Bob", "archive_id": "A-17"}
    notes = md.stamp_scan(et, folder / "scan.jpg", master, photo_id="scan-1234", source="box/scan.jpg",
                          sha256="ab" * 32, archival=archival)
    repaired = md.Provenance(stage="repair", backend="classical", parameters={"sensitivity": 50},
                             when="2026:01:02 03:04:05+00:00")
    prov = md.Provenance(stage="enhance", backend="classical", fallback=True, parameters=PARAMS)
    md.stamp_published(et, master, published, [repaired, prov], {"format": "jpg", "quality": 95},
                       review=(5, "Accepted"))
    md.stamp_published(et, master, matte, [repaired, md.Provenance(stage="matting", backend="classical")],
                       keep_icc=False)
    tags = {name: md.read_tags(et, folder / name) for name in ("-master.png", "out.jpg", "matte.png")}
    return {"folder": folder, "tags": tags, "notes": notes, "before": before, "prov": prov,
            "title": title.replace("\r\n", "\n")}


@needs_exiftool
def test_stamp_scan_fields(chain):
    t = chain["tags"]["-master.png"]
    assert chain["notes"] == []
    assert t["XMP-iptcExt:DigitalSourceType"] == md.SOURCE_PRINT
    assert t["XMP-photoarchive:PhotoID"] == "scan-1234"
    assert t["XMP-photoarchive:SourceFile"] == "box/scan.jpg"
    assert t["XMP-photoarchive:SourceSHA256"] == "ab" * 32
    assert t["IFD0:Make"] == "ScanCo"  # the scan's own tags are copied
    assert t["IFD0:Orientation"] == 1  # pixels are upright now
    assert "XMP-tiff:Orientation" not in t
    assert t["ExifIFD:DateTimeOriginal"] == "1975:06:15 00:00:00"
    assert t["XMP-exif:DateTimeOriginal"] == "1975:06:15 00:00:00"
    assert t["XMP-photoshop:DateCreated"] == "1975:06:15"
    assert t["XMP-iptcExt:PersonInImage"] == ["Ann Smith", "Bob"]
    assert t["XMP-dc:Description"] == "On the steps" and t["XMP-dc:Identifier"] == "A-17"


@needs_exiftool
@pytest.mark.parametrize("name", ["-master.png", "out.jpg", "matte.png"])
def test_title_is_stored_literally(chain, name):
    assert "\n-o\n" in chain["title"] and "C:\\new" in chain["title"]
    assert chain["tags"][name]["XMP-dc:Title"] == chain["title"]


@needs_exiftool
def test_stamping_touches_no_other_file(chain):
    folder = chain["folder"]
    assert sorted(p.name for p in folder.iterdir()) == ["-master.png", "bystander.jpg", "matte.png", "out.jpg",
                                                        "scan.jpg"]
    for name, data in chain["before"].items():
        assert (folder / name).read_bytes() == data
    for name in ("-master.png", "out.jpg", "matte.png"):
        assert not any("passwd" in str(v) and k != "XMP-dc:Title" for k, v in chain["tags"][name].items())


@needs_exiftool
def test_published_fields_come_from_the_last_stage_and_the_master(chain):
    for t in (chain["tags"]["out.jpg"],):  # publish's format change does not change what made the picture
        assert t["XMP-iptcExt:DigitalSourceType"] == md.SOURCE_ENHANCED
        assert t["XMP-photoarchive:Stage"] == "enhance"
        assert t["XMP-photoarchive:Backend"] == "classical"
        assert str(t["XMP-photoarchive:Fallback"]).lower() == "true"
        assert t["XMP-photoarchive:Software"] == SOFTWARE
        assert json.loads(t["XMP-photoarchive:Parameters"]) == PARAMS
        assert t["XMP-photoarchive:PhotoID"] == "scan-1234"  # inherited from the master
        assert t["XMP-photoarchive:SourceSHA256"] == "ab" * 32
        assert t["XMP-iptcExt:PersonInImage"] == ["Ann Smith", "Bob"]
        assert t["ExifIFD:DateTimeOriginal"] == "1975:06:15 00:00:00"
        assert t["IFD0:Orientation"] == 1
        assert t["XMP-xmp:Rating"] == 5 and t["XMP-xmp:Label"] == "Accepted"  # the reviewer's decision
    matte = chain["tags"]["matte.png"]
    assert matte["XMP-photoarchive:Stage"] == "matting" and matte["XMP-photoarchive:PhotoID"] == "scan-1234"
    assert "XMP-xmp:Rating" not in matte and "ICC_Profile:ProfileDescription" not in matte


@needs_exiftool
def test_history_has_one_entry_per_stage_in_order(chain):
    tags = chain["tags"]
    stages = {"-master.png": ["ingest"], "out.jpg": ["ingest", "repair", "enhance", "publish"],
              "matte.png": ["ingest", "repair", "matting"]}
    for name, expected in stages.items():
        history = tags[name]["XMP-xmpMM:History"]
        history = history if isinstance(history, list) else [history]
        assert [h["Parameters"].split(";")[0] for h in history] == [f"stage={s}" for s in expected]
        assert all(h["SoftwareAgent"] == SOFTWARE for h in history)
    history = tags["out.jpg"]["XMP-xmpMM:History"]
    assert [h["Action"] for h in history] == ["converted", "edited", "edited", "converted"]
    assert history[2]["Parameters"] == chain["prov"].summary()  # struct separators survive escaping
    assert "classical fallback" in history[2]["Parameters"]
    assert str(history[1]["When"]).startswith("2026:01:02 03:04:05")  # when the stage ran, not when published


@needs_exiftool
@pytest.mark.parametrize("name", ["-master.png", "out.jpg"])
def test_icc_profile_is_kept(chain, name):
    assert chain["tags"][name]["ICC_Profile:ProfileDescription"] == "sRGB built-in"
    with Image.open(chain["folder"] / name) as im:
        profile = ImageCms.ImageCmsProfile(ImageCms.core.profile_frombytes(im.info["icc_profile"]))
    assert ImageCms.getProfileDescription(profile).strip() == "sRGB built-in"


@needs_exiftool
def test_stamp_scan_with_partial_date_and_no_archival(tmp_path, et):
    Image.new("RGB", (4, 4)).save(tmp_path / "scan.jpg")
    write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    write_image(tmp_path / "b.png", np.zeros((4, 4, 3), np.float32))
    notes = md.stamp_scan(et, tmp_path / "scan.jpg", tmp_path / "a.png", photo_id="p", source="s.jpg",
                          sha256="0" * 64, archival={"date": "1975-06", "title": "x"})
    md.stamp_scan(et, tmp_path / "scan.jpg", tmp_path / "b.png", photo_id="p", source="s.jpg", sha256="0" * 64)
    a, b = md.read_tags(et, tmp_path / "a.png"), md.read_tags(et, tmp_path / "b.png")
    assert notes == []
    assert str(a["XMP-photoshop:DateCreated"]) == "1975:06"
    assert "ExifIFD:DateTimeOriginal" not in a
    assert "XMP-dc:Title" not in b and b["XMP-iptcExt:DigitalSourceType"] == md.SOURCE_PRINT


@pytest.fixture
def unwritable(tmp_path):
    """A scan, and a target that exiftool cannot write (text named .png)."""
    (tmp_path / "not-an-image.png").write_text("text")
    Image.new("RGB", (4, 4)).save(tmp_path / "scan.jpg")
    return tmp_path / "scan.jpg", tmp_path / "not-an-image.png"


@needs_exiftool
def test_failed_write_raises_and_leaves_target(unwritable, et):
    scan, target = unwritable
    with pytest.raises(Exception):  # noqa: B017 - any error stops the job
        md.stamp_scan(et, scan, target, photo_id="p", source="s", sha256="0")
    assert target.read_text() == "text"


@needs_exiftool
def test_failed_write_says_which_file_and_why(unwritable, et):
    scan, target = unwritable
    with pytest.raises(RuntimeError) as info:
        md.stamp_scan(et, scan, target, photo_id="p", source="s", sha256="0")
    assert "not-an-image.png" in str(info.value) and "error" in str(info.value).lower()  # exiftool's stderr


# --------------------------------------------------------------------------------------------------
# metadata.csv


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "metadata.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_metadata_csv_full(tmp_path):
    path = _csv(tmp_path, "\ufefffile,date,title,description,people,archive_id\n"
                          "./box/a.jpg,1975,\"Beach, \"\"1975\"\"\",d,Ann;Bob,A1\n"
                          "box\\b.jpg,,Other,,,\n")
    rows, problems = md.read_metadata_csv(path)
    assert problems == []
    assert set(rows) == {"box/a.jpg", "box/b.jpg"}
    assert rows["box/a.jpg"]["title"] == 'Beach, "1975"' and rows["box/a.jpg"]["people"] == "Ann;Bob"


def test_read_metadata_csv_without_file_column(tmp_path):
    rows, problems = md.read_metadata_csv(_csv(tmp_path, "path,title\na.jpg,x\n"))
    assert rows == {}
    assert len(problems) == 1 and "'file'" in problems[0] and "ignored" in problems[0]


def test_read_metadata_csv_missing_columns(tmp_path):
    rows, problems = md.read_metadata_csv(_csv(tmp_path, " file , title \na.jpg,Hello\n"))
    assert rows["a.jpg"]["title"] == "Hello"
    assert len(problems) == 1
    for column in ("date", "description", "people", "archive_id"):
        assert column in problems[0]
    assert "title" not in problems[0].split("left empty:")[1]


def test_read_metadata_csv_duplicates_and_empty_file_values(tmp_path):
    rows, problems = md.read_metadata_csv(_csv(tmp_path, "file,title\na.jpg,First\n./a.jpg,Second\n,Orphan\n"))
    assert rows["a.jpg"]["title"] == "First"
    assert any("metadata.csv:3" in p and "second row for a.jpg" in p for p in problems)
    assert any("metadata.csv:4" in p and "empty 'file'" in p for p in problems)


def test_read_metadata_csv_absent(tmp_path):
    assert md.read_metadata_csv(None) == ({}, [])
    assert md.read_metadata_csv(tmp_path / "nope.csv") == ({}, [])


def test_jpeg_trailer_detection_decides_the_fast_read(tmp_path):
    """exiftool's -fast skips a JPEG's trailer when reading: scans with one are stamped the full way."""
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (16, 16), (200, 100, 50)).save(plain, quality=90)
    trailer = tmp_path / "trailer.jpg"
    trailer.write_bytes(plain.read_bytes() + b"AXS!trailer data after the end of image")
    png = tmp_path / "scan.png"
    Image.new("RGB", (16, 16)).save(png)
    assert md._has_jpeg_trailer(plain) is False
    assert md._has_jpeg_trailer(trailer) is True
    assert md._has_jpeg_trailer(png) is False


def test_writes_use_fast_except_for_a_jpeg_with_a_trailer(tmp_path, monkeypatch):
    calls = []
    real_run = md._run

    def spy(et, args, target, fast=True):
        calls.append(fast)
        return real_run(et, args, target, fast)

    monkeypatch.setattr(md, "_run", spy)
    source = tmp_path / "scan.jpg"
    Image.new("RGB", (16, 16), (200, 100, 50)).save(source, quality=90)
    with_trailer = tmp_path / "scan_trailer.jpg"
    with_trailer.write_bytes(source.read_bytes() + b"trailer")
    for scan in (source, with_trailer):
        target = tmp_path / f"{scan.stem}.png"
        write_image(target, np.full((16, 16, 3), 0.5, np.float32))
        with md.exiftool_session() as et:
            md.stamp_scan(et, scan, target, photo_id="p", source=scan.name, sha256="0" * 64)
            md.stamp_published(et, target, target, [md.Provenance(stage="enhance")])
            assert md.read_tags(et, target)["XMP-photoarchive:Stage"] == "enhance"
    assert calls == [True, True, False, True]


def test_read_metadata_csv_reports_what_does_not_fit_the_schema_and_keeps_values(tmp_path):
    long_title = "x" * (md.MAX_VALUE_CHARS + 1)
    rows, problems = md.read_metadata_csv(_csv(
        tmp_path, "file,date,title,people,remark\n"
                  "a.jpg,circa 1950,ok,Ann,r\n"
                  "b.jpg,1975-13-45,ok,,\n"
                  f"c.jpg,1962-07,{long_title},Bob;{'y' * 2001},\n"
                  "d.jpg,circa 1950,,,\n"))
    assert set(md.METADATA_SCHEMA) == set(md.METADATA_COLUMNS) and md.METADATA_COLUMNS[0] == "file"
    assert rows["a.jpg"] == {"file": "a.jpg", "date": "circa 1950", "title": "ok", "people": "Ann", "remark": "r"}
    assert rows["c.jpg"]["title"] == long_title and rows["b.jpg"]["date"] == "1975-13-45"  # stored as read
    text = "\n".join(problems)
    assert "columns not used: remark" in text
    assert ("3 row(s): date not understood (use YYYY, YYYY-MM or YYYY-MM-DD); not written (line 2 'circa 1950', "
            "line 3 '1975-13-45', line 5 'circa 1950')") in text
    assert f"1 row(s): title longer than 2000 characters; shortened (line 4 '{'x' * 40}…')" in text
    assert "1 row(s): a name in people longer than 2000 characters; shortened (line 4 'Bob;yyy" in text
    assert "1962-07" not in text and "columns missing, left empty: description, archive_id" in text
    assert len(problems) == 5
