"""The whole pipeline on the bundled demo archive: statuses, metadata, untouched inputs, resuming."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from workflow import REPO, copy_demo, planned_jobs, snakemake, snapshot

from photoarchive.imageio import read_scan, write_image
from photoarchive.metadata import SOURCE_ENHANCED, SOURCE_PRINT, exiftool_session, read_tags
from photoarchive.models.damage_unet import DamageUNet
from photoarchive.stages import PHOTO_CHAIN, STAGES, BatchTable, read_record

pytestmark = pytest.mark.slow

# Expected outcome of each demo file (see demo/README.md).
DUPLICATES = {
    "family/img001_rescan.jpg": "family/img001.jpg",
    "unsorted/grandmother_copy.jpg": "family/Großmutter 1951.jpg",
}
ALL_DEMO = {
    "box_1962.zip/box/1962/beach_1962.jpg", "box_1962.zip/box/1962/cat_1962.jpg",
    "documents/camera_1975.tif", "documents/img001.jpg", "family/Großmutter 1951.jpg",
    "family/coffee_damaged.png", "family/img001.jpg", *DUPLICATES,
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One full run of the pipeline on a private copy of the demo archive."""
    root = tmp_path_factory.mktemp("demo_run")
    scans = copy_demo(root / "scans")
    before = snapshot(scans)
    work = root / "work"
    work.mkdir()
    config = {"input_dir": str(scans)}
    snakemake(work, config=config)
    return {"root": root, "scans": scans, "work": work, "config": config, "before": before}


def manifest(work: Path) -> dict[str, dict[str, str]]:
    with open(work / "results" / "manifest.csv", encoding="utf-8", newline="") as fh:
        return {row["source"]: row for row in csv.DictReader(fh)}


def test_every_demo_file_is_accounted_for(demo_run):
    rows = manifest(demo_run["work"])
    assert set(rows) == ALL_DEMO
    for source, row in rows.items():
        assert row["status"] in ("processed", "review", "duplicate"), (source, row["reason"])
        assert row["reason"], source
        assert len(row["sha256"]) == 64
    for dup, canonical in DUPLICATES.items():
        assert rows[dup]["status"] == "duplicate"
        assert rows[dup]["duplicate_of"] == canonical
    assert "byte-identical" in rows["unsorted/grandmother_copy.jpg"]["reason"]
    assert "near-duplicate" in rows["family/img001_rescan.jpg"]["reason"]
    assert int(rows["family/Großmutter 1951.jpg"]["faces"]) == 1
    assert rows["family/Großmutter 1951.jpg"]["restore_backend"] == "classical"  # no weights in CI
    assert rows["family/Großmutter 1951.jpg"]["matting_backend"] == "classical"
    assert {r["damage_detector"] for r in rows.values() if r["status"] != "duplicate"} == {"classical (fallback)"}


def test_published_files_exist_beside_each_other(demo_run):
    results = demo_run["work"] / "results"
    for row in manifest(demo_run["work"]).values():
        if row["status"] not in ("processed", "review"):
            assert not row["output"]
            continue
        out = Path(row["output"])
        out = out if out.is_absolute() else demo_run["work"] / out
        assert out.is_file() and out.parent.is_relative_to(results / row["status"])
        stem = out.name.removesuffix(out.suffix).removesuffix("_restored")
        assert (out.parent / f"{stem}_matte.png").is_file()
        assert (out.parent / f"{stem}_fg.png").is_file()
        assert (out.parent / f"{stem}_damage.png").is_file()
        assert row["damage"]  # the repaired share per damage type ("none" when nothing was repaired)
    assert (results / "processed" / "documents" / "camera_1975_restored.tif").is_file()
    assert (results / "processed" / "box_1962" / "box" / "1962" / "beach_1962_restored.jpg").exists() or (
        results / "review" / "box_1962" / "box" / "1962" / "beach_1962_restored.jpg").exists()
    # the report's thumbnails are files, one before/after pair per published photo, linked by its row files
    thumbs = sorted(p.name for p in (results / "thumbs").glob("b*/*.jpg"))
    assert len(thumbs) == 2 * 7 and sum(name.endswith("_before.jpg") for name in thumbs) == 7
    rows = (results / "report-data" / "rows-0000.js").read_text(encoding="utf-8")
    assert all(name in rows for name in thumbs)
    assert '<html lang="en">' in (results / "report.html").read_text(encoding="utf-8")


def tables(results: Path, stage: str) -> dict[str, BatchTable]:
    return {t.stem: BatchTable.read(t) for t in sorted((results / stage / "batches").glob("*.json"))}


def record_times(results: Path) -> dict[str, int]:
    """{file: mtime} of every per-photo file the stages made (records, images, masks, published files)."""
    listed = {f for stage in STAGES for table in tables(results, stage).values() for row in table.rows
              for f in row.files}
    return {f: (results / f).stat().st_mtime_ns for f in listed if (results / f).exists()}


def test_batch_tables_name_every_record_and_published_file(demo_run):
    """One job per batch in every stage: its table lists each photo's files, published ones included."""
    results = demo_run["work"] / "results"
    rows = manifest(demo_run["work"])
    (chunk,) = tables(results, "ingest").values()  # 9 files: one ingest job
    assert sorted(r.photo_id for r in chunk.rows) == sorted(r["photo_id"] for r in rows.values())
    assert {r.status for r in chunk.rows} == {"done"} and all(r.files == [f"ingest/{r.photo_id}.json"]
                                                              for r in chunk.rows)
    (published,) = tables(results, "publish").values()  # 7 unique photos, batch_size 8: one batch
    listed = {f for r in published.rows for f in r.files}
    outputs = {Path(r["output"]).relative_to("results").as_posix() for r in rows.values() if r["output"]}
    assert len(outputs) == 7 and outputs <= listed
    assert len(listed) == 7 + 4 * 7  # each unique photo's record, restored image, matte, cut-out, damage mask
    for stage in PHOTO_CHAIN:
        assert len(tables(results, stage)) == 1, stage


def test_inputs_are_untouched(demo_run):
    assert snapshot(demo_run["scans"]) == demo_run["before"]


def test_sixteen_bit_scan_stays_sixteen_bit(demo_run):
    row = manifest(demo_run["work"])["documents/camera_1975.tif"]
    scan = read_scan(demo_run["work"] / row["output"], 10**9)
    assert scan.bit_depth == 16


def test_tags_read_back_from_outputs(demo_run):
    work = demo_run["work"]
    row = manifest(work)["family/Großmutter 1951.jpg"]
    photo = row["photo_id"]
    with exiftool_session() as et:
        final = read_tags(et, work / row["output"])
        master = read_tags(et, work / "results" / "stamp" / f"{photo}.png")
        matte = read_tags(et, Path(str(work / row["output"]).replace("_restored.jpg", "_matte.png")))
    # catalogue fields from demo/metadata.csv, inherited all the way to the published JPEG
    with open(REPO / "demo" / "metadata.csv", encoding="utf-8") as fh:
        catalogue = {r["file"]: r for r in csv.DictReader(fh)}["family/Großmutter 1951.jpg"]
    assert final["XMP-dc:Title"] == catalogue["title"]
    assert master["XMP-iptcExt:DigitalSourceType"] == SOURCE_PRINT
    assert final["XMP-iptcExt:DigitalSourceType"] == SOURCE_ENHANCED  # classical restorer: not a model
    assert final["XMP-photoarchive:SourceSHA256"] == row["sha256"]
    assert final["XMP-photoarchive:Backend"] == "classical"
    assert str(final["XMP-photoarchive:Fallback"]) == "True"  # auto without GPEN weights
    stages = [h["Parameters"].split(";")[0] for h in final["XMP-xmpMM:History"]]
    assert stages == ["stage=ingest", "stage=repair", "stage=enhance", "stage=restore", "stage=publish"]
    repair = final["XMP-xmpMM:History"][1]["Parameters"]
    assert "backend=classical (classical fallback: model weights absent)" in repair  # no damage_unet.pt
    # what found and guarded the faces: the packaged detector and the identity embedding, with their hashes
    models = json.loads(final["XMP-photoarchive:Models"])
    assert models["detector"]["file"].startswith("retinaface-mobilenet0.25.onnx")
    assert len(models["detector"]["sha256"]) == 64 and len(models["identity"]["sha256"]) == 64
    faces = json.loads(final["XMP-photoarchive:Faces"])
    assert [f["detector"] for f in faces] == ["retinaface_mobile"] * int(row["faces"])
    assert all(len(f["landmarks"]) == 5 and f["identity_distance"] is not None for f in faces)
    history = final["XMP-xmpMM:History"][-1]["Parameters"]
    assert '"qa"' in history and '"identity_distance"' in history  # QA's own measurement, at publish
    assert all(h["SoftwareAgent"].startswith("photoarchive ") for h in final["XMP-xmpMM:History"])
    assert matte["XMP-photoarchive:Stage"] == "matting"
    assert matte["XMP-dc:Title"] == catalogue["title"]


def test_second_run_does_nothing(demo_run):
    assert planned_jobs(demo_run["work"], config=demo_run["config"]) == {}


def test_scheduling_knobs_redo_no_photo(demo_run, tmp_path):
    """Batch and chunk sizes only cut the work into jobs: with other sizes every photo's work is kept."""
    work = tmp_path / "work"
    shutil.copytree(demo_run["work"], work, symlinks=True)  # copy2: times kept
    before = record_times(work / "results")
    other = tmp_path / "scheduling.yaml"
    other.write_text("scheduling:\n  batch_size: 2\n  ingest_chunk_size: 3\n")
    # one --configfile option with both files: a second option would replace the first
    snakemake(work, "--configfile", str(REPO / "config.yaml"), str(other), config=demo_run["config"])
    results = work / "results"
    assert [len(t.rows) for t in tables(results, "ingest").values()] == [3, 3, 3]
    new = tables(results, "qa")  # 7 unique photos: 2 batches (hash buckets) of 2 to 4
    assert len(new) > 1 and sum(len(t.rows) for t in new.values()) == 7
    assert {r.status for t in new.values() for r in t.rows} == {"done"}
    assert {f: t for f, t in record_times(results).items() if f in before} == before


def test_weights_placed_in_models_re_run_the_stages_that_load_them(demo_run, tmp_path):
    """Model files are inputs of the rules that load them: GPEN weights and the learned damage detector placed
    in models/ after a run plan restore and repair again (their SHA-256 in each photo's key redoes the photos)."""
    work = tmp_path / "work"
    shutil.copytree(demo_run["work"], work, symlinks=True)
    assert planned_jobs(work, config=demo_run["config"]) == {}
    (work / "models").mkdir(exist_ok=True)
    (work / "models" / "GPEN-BFR-512.pth").write_bytes(b"weights placed after the run")
    (work / "models" / "damage_unet.pt").write_bytes(b"weights placed after the run")
    plan = planned_jobs(work, config=demo_run["config"])
    batches = len(tables(work / "results", "restore"))
    assert plan.get("restore_faces") == batches and plan.get("repair") == batches, plan
    assert "detect_faces" not in plan and "stamp" not in plan, plan
    # Weights there do not upset the linter (a user's `make test` after `make demo` trained the detector).
    linted = snakemake(work, "--lint", config=demo_run["config"], check=False)
    assert linted.returncode == 0, linted.stdout[-3000:] + linted.stderr[-3000:]


def test_the_learned_damage_detector_runs_from_models(demo_run, tmp_path):
    """damage_unet.pt in models/ (a tiny random net of the real architecture here): repair takes scratches
    and dust from it, and its records, log, manifest and XMP name it and its SHA-256."""
    work = tmp_path / "work"
    shutil.copytree(demo_run["work"], work, symlinks=True)
    logs = sorted((work / "logs" / "repair").glob("*.log"))
    assert logs and all("classical detector runs as a fallback" in f.read_text(encoding="utf-8") for f in logs)
    torch.manual_seed(0)
    weights = work / "models" / "damage_unet.pt"
    weights.parent.mkdir(exist_ok=True)
    torch.save(DamageUNet().state_dict(), weights)
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    snakemake(work, config=demo_run["config"])
    rows = [r for r in manifest(work).values() if r["status"] != "duplicate"]
    assert rows and {r["damage_detector"] for r in rows} == {"learned"}
    for row in rows:
        record = read_record(work / "results", "repair", row["photo_id"])
        assert (record["detector"], record["model_sha256"]) == ("learned", sha256)
    assert any("learned detector" in f.read_text(encoding="utf-8") for f in (work / "logs" / "repair").glob("*.log"))
    with exiftool_session() as et:
        final = read_tags(et, work / manifest(work)["family/Großmutter 1951.jpg"]["output"])
    repair = final["XMP-xmpMM:History"][1]["Parameters"]
    assert "backend=learned;" in repair and f"model=damage_unet.pt sha256={sha256}" in repair


def test_second_run_after_a_retune_of_one_photo_redoes_that_photo_alone(demo_run, tmp_path):
    """A per-photo control (here the catalogue's enhance preset) changes that photo's key only."""
    work = tmp_path / "work"
    shutil.copytree(demo_run["work"], work, symlinks=True)
    scans = tmp_path / "scans"
    shutil.copytree(demo_run["scans"], scans, symlinks=True)
    catalogue = (scans / "metadata.csv").read_text(encoding="utf-8").splitlines()
    (scans / "metadata.csv").write_text("\n".join(
        [catalogue[0] + ",enhance_preset"] + [line + (",strong" if line.startswith("documents/img001.jpg,")
                                                      else ",") for line in catalogue[1:]]) + "\n",
        encoding="utf-8")
    before = record_times(work / "results")
    snakemake(work, config={"input_dir": str(scans)})
    photo = manifest(work)["documents/img001.jpg"]["photo_id"]
    changed = {f for f, t in record_times(work / "results").items() if before.get(f) != t}
    assert f"enhance/{photo}.json" in changed
    assert all(f.split("/")[-1].startswith(photo) for f in changed if not f.startswith(("processed/", "review/")))


def test_deleting_a_published_file_redoes_only_that(demo_run):
    work = demo_run["work"]
    row = manifest(work)["family/img001.jpg"]
    (work / row["output"]).unlink()
    jobs = planned_jobs(work, config=demo_run["config"])
    assert jobs.get("publish") == 1
    assert not {"ingest", "stamp", "enhance", "matte", "restore_faces", "qa"} & set(jobs)
    before = record_times(work / "results")
    snakemake(work, config=demo_run["config"])
    assert (work / row["output"]).is_file()
    after = record_times(work / "results")
    changed = {f for f in after if before.get(f) != after[f]}
    base = Path(row["output"]).relative_to("results").as_posix().removesuffix("_restored.jpg")
    assert changed == {f"{base}_restored.jpg", f"{base}_matte.png", f"{base}_fg.png", f"{base}_damage.png",
                       f"publish/{row['photo_id']}.json"}  # that photo republished, no other


def test_deleting_one_record_redoes_that_photo_alone(demo_run):
    """A photo's record deleted by hand: its batch runs again and redoes that photo; the later stages
    find its result unchanged (same key) and keep everything."""
    work = demo_run["work"]
    results = work / "results"
    photo = manifest(work)["documents/img001.jpg"]["photo_id"]
    (results / "enhance" / f"{photo}.json").unlink()
    jobs = planned_jobs(work, config=demo_run["config"])
    assert jobs.get("enhance") == 1
    assert not {"ingest", "stamp", "detect_faces", "repair"} & set(jobs), jobs
    before = record_times(results)
    snakemake(work, config=demo_run["config"])
    after = record_times(results)
    assert {f for f in after if before.get(f) != after[f]} == {f"enhance/{photo}.png", f"enhance/{photo}.json"}
    assert planned_jobs(work, config=demo_run["config"]) == {}


def test_new_scan_is_processed_alone(demo_run):
    """Runs last: it adds a scan to this module's archive copy."""
    scans, work, config = demo_run["scans"], demo_run["work"], demo_run["config"]
    snakemake(work, config=config)  # bring back what the tests above deleted
    before = record_times(work / "results")
    page = read_scan(REPO / "demo" / "documents" / "img001.jpg", 10**9).pixels
    write_image(scans / "new_arrival.png", page[::-1].copy())  # a new photo (the page upside down)
    jobs = planned_jobs(work, config=config)
    assert jobs.get("ingest") == 1 and jobs.get("dedup") == 1
    snakemake(work, config=config)
    rows = manifest(work)
    assert rows["new_arrival.png"]["status"] in ("processed", "review")
    assert len(list((work / "results" / "stamp").glob("*.png"))) == 8  # 7 unique demo photos + the new one
    # the new photo joins the one batch; its batch mates' work is kept, file for file
    (qa,) = tables(work / "results", "qa").values()
    assert [r.status for r in qa.rows] == ["done"] * 8
    after = record_times(work / "results")
    assert {f: after[f] for f in before} == before
