"""Broken, hostile and awkward input (issue 5): every file ends as `failed` with a reason a person
understands, or is handled correctly, and every good scan is processed.

The workflow tests share one pipeline run over the generated corpus (tests/hostile_corpus.py),
made with network access disabled. The other tests exercise the same guards without Snakemake:
exiftool argument safety, no shell anywhere, malicious model checkpoints, damaged catalogues and
the memory needed to check a 12000×9000 scan.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from hostile_corpus import (
    CONFIG,
    HEIGHT,
    HOSTILE_ARCHIVE_ID,
    HOSTILE_DESCRIPTION,
    HOSTILE_TITLE,
    ICC,
    LONG_NAME,
    WIDTH,
    big_scan,
    can_unshare,
    make_corpus,
    network_guard,
    picture,
    workflow_command,
    workflow_env,
    write_config,
)
from workflow import REPO, snapshot

from photoarchive import metadata as md
from photoarchive.dedup import hamming
from photoarchive.imageio import read_scan
from photoarchive.ingest import Source, inspect_file, perceptual_hash, photo_id
from photoarchive.manifest import read_manifest

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")


# ------------------------------------------------------------------------------------------------
# One pipeline run over the corpus


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The whole pipeline over the hostile corpus, offline (a network namespace where available)."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = make_corpus(root / "in", root / "outside")
    before = snapshot(root / "in")
    work = root / "work"
    config = write_config(work / "config.yaml", {**CONFIG, "input_dir": str(root / "in")})
    guard = network_guard(root / "guard")
    prefix = ("unshare", "-n") if can_unshare("-n") else ()
    pwned_before = {p: p.exists() for p in (Path("/tmp/pwned"), Path("/tmp/pwned.jpg"))}
    result = subprocess.run(workflow_command(work, config, prefix=prefix), capture_output=True, text=True,
                            env=workflow_env(guard), timeout=900)
    assert result.returncode == 0, result.stderr[-6000:]
    rows: dict[str, dict[str, str]] = {}
    for row in read_manifest(work / "results" / "manifest.csv"):  # a ZIP may hold a name twice: "name#2"
        n = sum(1 for key in rows if key.split("#")[0] == row["source"])
        rows[row["source"] + (f"#{n + 1}" if n else "")] = row
    return SimpleNamespace(root=root, corpus=corpus, before=before, work=work, rows=rows, stderr=result.stderr,
                           netlog=Path(guard["PHOTOARCHIVE_NETLOG"]), isolated=bool(prefix),
                           pwned_before=pwned_before)


def _finished(run):
    return {k: c for k, c in run.corpus.cases.items() if c.expect == "finished"}


def _output(run, relpath: str) -> Path:
    out = Path(run.rows[relpath]["output"])
    return out if out.is_absolute() else run.work / out


def _luma(pixels: np.ndarray) -> np.ndarray:
    return pixels if pixels.ndim == 2 else pixels @ np.array([0.299, 0.587, 0.114], np.float32)


def _orientation_problem(pixels: np.ndarray, upright: np.ndarray) -> str:
    """'' when `pixels` shows `upright` the right way up, else what is wrong."""
    if pixels.shape[:2] != upright.shape[:2]:
        return f"shape {pixels.shape[:2]} instead of {upright.shape[:2]}"
    a = _luma(pixels) - _luma(pixels).mean()
    variants = {"upright": upright, "mirrored": upright[:, ::-1], "flipped": upright[::-1],
                "rotated 180°": upright[::-1, ::-1]}
    scores = {}
    for name, variant in variants.items():
        b = _luma(variant) - _luma(variant).mean()
        scores[name] = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    best = max(scores, key=scores.get)
    return "" if best == "upright" and scores["upright"] > 0.8 else f"looks {best} ({scores})"


def _icc(path: Path) -> bytes:
    return subprocess.run(["exiftool", "-b", "-ICC_Profile", str(path)], capture_output=True, check=True).stdout


@pytest.mark.slow
def test_run_made_no_network_access(run):
    assert not run.netlog.exists() or run.netlog.read_text() == ""


@pytest.mark.slow
def test_every_input_file_is_accounted_for(run):
    assert set(run.rows) == set(run.corpus.cases)
    assert "links/outside.jpg" not in run.rows  # symbolic links are not followed (and not listed)


@pytest.mark.slow
def test_bad_inputs_fail_with_a_reason(run):
    problems = []
    for relpath, case in run.corpus.cases.items():
        row = run.rows[relpath]
        if case.expect not in ("failed", "duplicate"):
            continue
        if row["status"] != case.expect or not re.search(case.reason, row["reason"]):
            problems.append(f"{case.what} ({relpath!r}): {row['status']} {row['reason']!r}, "
                            f"expected {case.expect} matching {case.reason!r}")
        elif case.expect == "failed" and not row["log"]:
            problems.append(f"{relpath!r}: no log file named")
    assert not problems, "\n".join(problems)
    failed_txt = (run.work / "results" / "failed.txt").read_text(encoding="utf-8")
    failed = [r["source"] for r in run.rows.values() if r["status"] == "failed"]
    assert len(failed_txt.splitlines()) == 1 + len(failed) + sum(s.count("\n") for s in failed)


@pytest.mark.slow
def test_every_good_scan_is_processed(run):
    problems = []
    for relpath, case in _finished(run).items():
        row = run.rows[relpath]
        if row["status"] not in ("processed", "review") or not _output(run, relpath).is_file():
            problems.append(f"{case.what} ({relpath!r}): {row['status']} {row['reason']!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_outputs_are_upright_with_orientation_reset(run):
    problems = []
    with md.exiftool_session() as et:
        for relpath, case in _finished(run).items():
            out = _output(run, relpath)
            problem = _orientation_problem(read_scan(out, 10**8).pixels, picture(case.seed))
            if problem:
                problems.append(f"{relpath!r} (stored with orientation {case.orientation}): {problem}")
            tags = md.read_tags(et, out)
            if tags.get("IFD0:Orientation", 1) != 1 or "XMP-tiff:Orientation" in tags:
                problems.append(f"{relpath!r}: orientation tag not reset: {tags.get('IFD0:Orientation')}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_sixteen_bit_scans_stay_sixteen_bit(run):
    for relpath, case in _finished(run).items():
        out = _output(run, relpath)
        array = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        if not case.sixteen_bit:
            assert array.dtype == np.uint8, relpath
            continue
        assert out.suffix in (".png", ".tif") and array.dtype == np.uint16, relpath
        assert np.mean(array % 257 != 0) > 0.5, f"{relpath}: 8-bit values stored in 16 bits"
        foreground = out.with_name(out.name.replace("_restored" + out.suffix, "_fg.png"))
        assert cv2.imread(str(foreground), cv2.IMREAD_UNCHANGED).dtype == np.uint16, foreground
        notes = (run.work / "results" / "stamp" / f"{run.rows[relpath]['photo_id']}.json").read_text()
        assert '"bit_depth": 16' in notes


@needs_exiftool
@pytest.mark.slow
def test_icc_profiles_are_kept_on_colour_outputs_only(run):
    for relpath, case in _finished(run).items():
        out = _output(run, relpath)
        matte = out.with_name(out.name.replace("_restored" + out.suffix, "_matte.png"))
        assert _icc(matte) == b"", f"{matte}: an alpha matte carries an ICC profile"
        if case.icc:
            assert _icc(out) == ICC, relpath
            foreground = out.with_name(out.name.replace("_restored" + out.suffix, "_fg.png"))
            assert _icc(foreground) == ICC, foreground


@pytest.mark.slow
def test_notes_say_what_happened(run):
    for relpath, case in _finished(run).items():
        if case.notes:
            assert re.search(case.notes, run.rows[relpath]["notes"]), (relpath, run.rows[relpath]["notes"])


@pytest.mark.slow
def test_awkward_names_are_published_under_recognisable_names(run):
    processed = run.work / "results"
    names = {p.relative_to(processed).as_posix().split("/", 1)[1] for p in processed.glob("*/names/*_restored.*")}
    assert names == {"names/老照片 1975_restored.jpg", "names/-n -TagsFromFile -all=_restored.jpg",
                     "names/it's \"q\" $HOME $(touch pwned) (a,b)|x_restored.jpg", "names/line_break_restored.jpg"}
    long = _output(run, LONG_NAME)
    assert long.name.startswith("palette üü") and long.name.endswith(f"-{photo_id(LONG_NAME)[-8:]}_restored.png")
    assert len(long.name.encode()) <= 255 - 40
    assert {r["output"].split("/")[-2] for r in run.rows.values() if r["source"].endswith("img001.jpg")} == {"a", "b"}


@needs_exiftool
@pytest.mark.slow
def test_catalogue_values_are_stored_literally_or_reported(run):
    with md.exiftool_session() as et:
        tags = {relpath: md.read_tags(et, _output(run, relpath)) for relpath in run.corpus.metadata
                if relpath in run.rows}
    plain = tags["good/plain.jpg"]
    assert plain["XMP-dc:Title"] == HOSTILE_TITLE  # a line break and option look-alikes, literally
    assert plain["ExifIFD:DateTimeOriginal"] == "1975:06:01 00:00:00"
    assert plain["XMP-dc:Description"] == "lang " * 400 + "…"  # shortened to 2000 characters
    assert tags["a/img001.jpg"]["XMP-dc:Description"] == HOSTILE_DESCRIPTION.replace("\r\n", "\n")
    assert tags["b/img001.jpg"]["XMP-dc:Title"] == "-TagsFromFile"
    assert tags["b/img001.jpg"]["XMP-dc:Description"] == "-all="
    dash = tags["names/-n -TagsFromFile -all=.jpg"]
    assert dash["XMP-dc:Title"] == HOSTILE_ARCHIVE_ID
    assert dash["XMP-photoshop:DateCreated"] == 1962
    for relpath in ("a/img001.jpg", "b/img001.jpg"):  # bad dates: not written, and said so
        assert "ExifIFD:DateTimeOriginal" not in tags[relpath] and "XMP-photoshop:DateCreated" not in tags[relpath]
        assert "not understood" in run.rows[relpath]["notes"]
    for relpath, t in tags.items():  # the scan's own tags came from the right file
        assert t.get("IFD0:Make") in ("Hostile Corpus Scanner", None), relpath
        assert t["XMP-photoarchive:SourceFile"] == relpath
    assert tags["names/-n -TagsFromFile -all=.jpg"]["IFD0:Make"] == "Hostile Corpus Scanner"
    assert "columns missing, left empty: people, archive_id" in run.stderr
    assert "metadata.csv names 'ghost/not here.jpg'" in run.stderr
    for path, existed in run.pwned_before.items():
        assert path.exists() == existed, f"{path} was created: a value was executed"
    assert not list(run.root.rglob("pwned*"))


@pytest.mark.slow
def test_nothing_is_written_outside_the_work_area(run):
    assert sorted(p.name for p in (run.root / "outside").iterdir()) == ["target.jpg"]
    assert not [p for p in run.root.rglob("escape*")]
    assert not list(run.root.rglob("evil*"))
    for path in (run.work / "results").rglob("*"):
        assert not path.is_symlink(), path
    unpacked = next((run.work / "results" / "unpacked").glob("zips__hostile.zip-*"))
    extracted = sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*")
                       if p.is_file() and p.name != ".snakemake_timestamp")
    assert len(extracted) == 3 and extracted[0] == "members.json", extracted
    assert extracted[1].startswith("ok/inner_scan-") and extracted[2].startswith("twice-"), extracted
    assert not list((run.work / "results").rglob(".*.part*"))  # no temporary file left anywhere


@pytest.mark.slow
def test_inputs_are_untouched(run):
    assert snapshot(run.root / "in") == run.before


@pytest.mark.slow
def test_duplicate_is_listed_not_processed(run):
    assert run.rows["b/img001 copy.jpg"]["duplicate_of"] == "a/img001.jpg"
    assert not run.rows["b/img001 copy.jpg"]["output"]


# ------------------------------------------------------------------------------------------------
# The corpus itself


def test_good_pictures_are_not_near_duplicates_of_each_other():
    hashes = {seed: perceptual_hash(picture(seed)) for seed in range(17)}
    close = [(a, b) for a in hashes for b in hashes if a < b and hamming(hashes[a], hashes[b]) <= 12]
    assert not close


# ------------------------------------------------------------------------------------------------
# exiftool: argument lists only, nothing in a name or value becomes an option


def test_no_shell_anywhere():
    """No subprocess with shell=True, os.system or os.popen in the package or scripts; rules use `script:`."""
    offenders = []
    for path in [*(REPO / "photoarchive").rglob("*.py"), *(REPO / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
                    offenders.append(f"{path.name}: {name}")
                if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                       for k in node.keywords):
                    offenders.append(f"{path.name}: {name}(shell=...)")
    for path in [REPO / "Snakefile", *(REPO / "rules").glob("*.smk")]:
        if re.search(r"^\s+(shell|run):", path.read_text(encoding="utf-8"), re.MULTILINE):
            offenders.append(f"{path.name}: shell/run directive")
    assert not offenders


@needs_exiftool
@pytest.mark.parametrize("name", ["-n -TagsFromFile x.jpg", "100%d %f %e %c.jpg", "line\nbreak.jpg",
                                  "quote's \"$HOME\" `id`.jpg", "#comment.jpg", "老照片 1975.jpg"])
def test_exiftool_gets_plain_argument_lines(tmp_path, name, monkeypatch):
    """Each exiftool argument is one line (pyexiftool sends them through -@), whatever the scan is called."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "RightFile"
    source = tmp_path / name
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(source, "JPEG", exif=exif.tobytes())
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "decoy.jpg", "JPEG")  # %-code targets
    target = tmp_path / "target.png"
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(target)
    sent: list[str] = []
    with md.exiftool_session() as et:
        execute = et.execute
        monkeypatch.setattr(et, "execute", lambda *args, **kw: sent.extend(args) or execute(*args, **kw))
        md.stamp_scan(et, source, target, photo_id="p", source=name, sha256="0",
                      archival={"title": HOSTILE_TITLE, "description": HOSTILE_DESCRIPTION,
                                "people": "-o; -delete", "archive_id": HOSTILE_ARCHIVE_ID})
        tags = md.read_tags(et, target)
    assert all("\n" not in a and "\r" not in a for a in sent), sent
    assert tags["IFD0:Make"] == "RightFile"
    assert tags["XMP-dc:Title"] == HOSTILE_TITLE
    assert tags["XMP-dc:Description"] == HOSTILE_DESCRIPTION.replace("\r\n", "\n")
    assert tags["XMP-iptcExt:PersonInImage"] == ["-o", "-delete"]
    assert tags["XMP-photoarchive:SourceFile"] == name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "decoy.jpg", "target.png"])


# ------------------------------------------------------------------------------------------------
# Catalogue files that are damaged rather than hostile


@pytest.mark.parametrize(("data", "problem"), [
    ("file,title\nsc\xe8ne.jpg,Caf\xe9\n".encode("cp1252"), "not UTF-8"),
    (b"file,title\nscan.jpg,ok\x00\n", "NUL bytes"),
    (b'file,title\nscan.jpg,"never closed\n', ""),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "no 'file' column"),
    (b"", "no 'file' column"),
])
def test_damaged_catalogue_never_stops_the_pipeline(tmp_path, data, problem):
    path = tmp_path / "metadata.csv"
    path.write_bytes(data)
    rows, problems = md.read_metadata_csv(path)
    assert isinstance(rows, dict)
    assert any(problem in p for p in problems) if problem else True
    if b"\xe8" in data:
        assert rows["scène.jpg"]["title"] == "Café"


# ------------------------------------------------------------------------------------------------
# Malicious model checkpoints are refused without running their code


class _Payload:
    """Pickles into 'touch this file' when unpickled without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def malicious_checkpoint(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "models" / "evil.pth"
    path.parent.mkdir()
    torch.save({"weight": torch.zeros(1), "payload": _Payload(marker)}, path)
    torch.load(path, weights_only=False)  # the control: a plain unpickling runs the payload
    assert marker.exists()
    marker.unlink()
    return path, marker


def test_malicious_gpen_checkpoint_is_refused(malicious_checkpoint):
    from photoarchive.models.gpen import load_gpen

    path, marker = malicious_checkpoint
    with pytest.raises(ValueError, match="weights_only"):
        load_gpen(path)
    assert not marker.exists()


def test_malicious_retinaface_checkpoint_is_refused(malicious_checkpoint):
    from photoarchive.faces import FaceDetector

    path, marker = malicious_checkpoint
    with pytest.raises(ValueError, match="weights_only"):
        FaceDetector({"detector": "retinaface", "retinaface_file": path.name, "device": "cpu"}, path.parent)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Size limits


def test_bomb_is_refused_before_decoding(tmp_path):
    from hostile_corpus import _bomb_png

    (tmp_path / "bomb.png").write_bytes(_bomb_png(60_000, 60_000))
    record = inspect_file(Source(photo_id("bomb.png"), "bomb.png"), tmp_path / "bomb.png", 200_000_000, 2048)
    assert record.status == "failed" and "60000×60000" in record.reason and "ingest.max_pixels" in record.reason


# Peak memory of this process alone: VmHWM of its own address space. (ru_maxrss would not do: Linux carries
# the parent's high-water mark across exec, so a child of a 2 GB pytest process reports at least 2 GB.)
_MEASURE = """
import json, sys
from pathlib import Path
from photoarchive.ingest import Source, inspect_file
r = inspect_file(Source("big-00000000", "big.jpg"), Path(sys.argv[1]), 200_000_000, 2048)
hwm_kb = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
print(json.dumps({"status": r.status, "width": r.width, "height": r.height, "reason": r.reason,
                  "peak_mb": hwm_kb / 1024}))
"""


@pytest.mark.slow
def test_very_large_legit_scan_is_checked_within_the_ingest_memory(tmp_path):
    """A 12000×9000 (108 MP) scan passes ingest with the default limit, inside the rule's mem_mb."""
    import json

    scan = big_scan(tmp_path / "scan 12000x9000.jpg")
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(scan)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert (result["status"], result["width"], result["height"]) == ("ok", 12000, 9000), result
    mem_mb = int(re.search(r"rule ingest:.*?mem_mb=(\d+)", (REPO / "rules" / "ingest.smk").read_text(),
                           re.DOTALL).group(1))
    assert result["peak_mb"] < mem_mb, result


def test_reading_a_shrunk_copy_keeps_the_full_size(tmp_path):
    from photoarchive.imageio import write_image

    write_image(tmp_path / "a.png", np.random.default_rng(0).random((HEIGHT * 30, WIDTH * 30, 3)).astype(np.float32))
    scan = read_scan(tmp_path / "a.png", 10**8, max_side=100)
    assert scan.full_shape == (HEIGHT * 30, WIDTH * 30) and max(scan.shape) == 100


# ------------------------------------------------------------------------------------------------
# Names and colour profiles, without the workflow


def test_published_names_are_safe_for_snakemake_and_the_file_system():
    from photoarchive.publish import published_names

    names = ["a/scan {1975}.jpg", "a/line\nbreak.jpg", LONG_NAME, "box.zip"]
    sources = [Source(photo_id(n), n) for n in names[:3]]
    sources.append(Source(photo_id("box.zip/" + "d" * 300 + "/x.jpg"), "box.zip/" + "d" * 300 + "/x.jpg",
                          archive="box.zip", member="d" * 300 + "/x.jpg"))
    published = published_names(sources)
    rel = {s.relpath: published[s.photo_id][0] for s in sources}
    assert rel["a/scan {1975}.jpg"] == "a/scan (1975)" and rel["a/line\nbreak.jpg"] == "a/line_break"
    for relname in rel.values():
        assert all(len(part.encode()) + 40 <= 255 for part in relname.split("/")), relname
    assert len(set(rel.values())) == len(rel)


def _icc_header(space: bytes) -> bytes:
    """A 128-byte ICC header with an empty tag table: names a colour space, unusable for conversion."""
    header = bytearray(132)
    header[0:4] = (132).to_bytes(4, "big")
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:16], header[16:20], header[20:24], header[36:40] = b"prtr", space, b"Lab ", b"acsp"
    return bytes(header)


@pytest.mark.parametrize(("mode", "space"), [("CMYK", b"CMYK"), ("L", b"GRAY")])
def test_non_rgb_icc_profile_is_not_copied_to_rgb_outputs(tmp_path, mode, space):
    from PIL import Image

    path = tmp_path / "scan.jpg"
    Image.fromarray((picture(3) * 255).astype(np.uint8)).convert(mode).save(path, "JPEG",
                                                                            icc_profile=_icc_header(space))
    scan = read_scan(path, 10**8)
    assert scan.icc_space == space.decode().strip() and not scan.keep_icc
    assert any("without colour management" in n for n in scan.notes), scan.notes
    assert any("ICC profile is not copied" in n for n in scan.notes), scan.notes
    if shutil.which("exiftool"):
        from photoarchive.imageio import write_image

        target = tmp_path / "master.png"
        write_image(target, scan.pixels)
        with md.exiftool_session() as et:
            md.stamp_scan(et, path, target, photo_id="p", source="scan.jpg", sha256="0", keep_icc=scan.keep_icc)
        assert _icc(target) == b""


def test_rgb_icc_profile_is_kept(tmp_path):
    from PIL import Image

    path = tmp_path / "scan.jpg"
    Image.fromarray((picture(3) * 255).astype(np.uint8)).save(path, "JPEG", icc_profile=ICC)
    scan = read_scan(path, 10**8)
    assert scan.icc_space == "RGB" and scan.keep_icc and not any("ICC" in n for n in scan.notes)


def test_colliding_photo_ids_are_made_unique(tmp_path, monkeypatch):
    from photoarchive import ingest

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(ingest, "photo_id", lambda rel: "same-00000000" if rel != "c.jpg" else "c-11111111")
    ids = [s.photo_id for s in ingest.discover_sources(tmp_path)]
    assert len(set(ids)) == 3 and ids[2] == "c-11111111"
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+-[0-9a-f]{8}", i) for i in ids)  # the rules' wildcard pattern
