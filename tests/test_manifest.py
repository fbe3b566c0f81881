"""Tests for photoarchive.manifest on a hand-made results/ tree (the workflow test covers a real run)."""

import csv
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from photoarchive.dedup import DedupRow
from photoarchive.imageio import write_image
from photoarchive.ingest import IngestRecord, Source, photo_id
from photoarchive.manifest import manifest_rows, read_manifest, write_manifest
from photoarchive.publish import published_names
from photoarchive.report import write_report
from photoarchive.stages import BatchRow, BatchTable

SOURCES = {name: Source(photo_id(name), name) for name in (
    "a_broken.jpg", "b_original.jpg", "c_copy.jpg", "d_stuck.png", "e_done.tif", "f_review.jpg", "g_new.jpg",
    "h_unpublished.jpg", "<script>x</script>.jpg",
)}
BATCH = "b0000"


def pid(name: str) -> str:
    return SOURCES[name].photo_id


def _write(path: Path, data: dict | str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict):
        data = json.dumps(data)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _finish_chain(results: Path, name: str, verdict: dict, upto: int = 7) -> None:
    """Write the outputs that prove the first `upto` stages finished for a unique photo."""
    p = pid(name)
    proofs = [  # in chain order (photoarchive.stages.PHOTO_CHAIN)
        (results / "stamp" / f"{p}.json", {"notes": []}),
        (results / "faces" / f"{p}.json", {"faces": [{}, {}]}),
        (results / "repair" / f"{p}.json", {"shares_text": "scratch 0.12%; dust 0.03%"}),
        (results / "enhance" / f"{p}.json", {"preset": "faded"}),
        (results / "matting" / f"{p}.json", {"backend": "classical"}),
        (results / "restore" / f"{p}.json", {"backend": "gpen", "model_file": "/models/GPEN-512.pth",
                                             "model_sha256": "f" * 64}),
        (results / "qa" / f"{p}.json", verdict),
    ]
    for path, data in proofs[:upto]:
        if data is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image(path, np.full((8, 8, 3), 0.5, np.float32))
        else:
            _write(path, data)


@pytest.fixture
def tree(tmp_path):
    results, logs = tmp_path / "results", tmp_path / "logs"
    ok = {"status": "ok", "sha256": "1" * 64, "width": 8, "height": 8, "phash": "0" * 16}
    for name, source in SOURCES.items():
        if name == "g_new.jpg":
            continue  # ingest has not run for it yet
        record = IngestRecord(source.photo_id, name, **ok)
        if name == "a_broken.jpg":
            record = IngestRecord(source.photo_id, name, "failed", reason="damaged or truncated image", sha256="2" * 64)
        _write(results / "ingest" / f"{source.photo_id}.json", record.to_json())
    ingested = [BatchRow(s.photo_id, "done") for n, s in SOURCES.items() if n != "g_new.jpg"]
    _write(results / "ingest" / "batches" / "c0000.json", BatchTable("ingest", "c0000", ingested, "t").to_json())
    rows = [DedupRow(pid("c_copy.jpg"), "duplicate", duplicate_of=pid("b_original.jpg"),
                     reason="byte-identical copy of b_original.jpg")]
    rows += [DedupRow(pid(n), "unique", batch=BATCH) for n in SOURCES if n not in ("a_broken.jpg", "c_copy.jpg",
                                                                                   "g_new.jpg")]
    table = results / "dedup" / "dedup.tsv"
    table.parent.mkdir(parents=True)
    with open(table, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)

    published = published_names(SOURCES.values())
    _finish_chain(results, "b_original.jpg", {"status": "processed", "reasons": []})
    _finish_chain(results, "d_stuck.png", {}, upto=4)  # stopped in matting
    failed = BatchRow(pid("d_stuck.png"), "failed", "MemoryError: out of memory")
    _write(results / "matting" / "batches" / f"{BATCH}.json", BatchTable("matting", BATCH, [failed], "t").to_json())
    _finish_chain(results, "e_done.tif", {"status": "processed", "reasons": []})
    _finish_chain(results, "f_review.jpg", {"status": "review", "reasons": ["face changed a lot (SSIM 0.31)"]})
    _finish_chain(results, "h_unpublished.jpg", {"status": "processed", "reasons": []})
    _finish_chain(results, "<script>x</script>.jpg", {"status": "review", "reasons": ["<b>noisy</b>"]})
    for name in ("b_original.jpg", "e_done.tif", "f_review.jpg", "<script>x</script>.jpg"):
        relname, ext = published[pid(name)]
        status = json.loads((results / "qa" / f"{pid(name)}.json").read_text())["status"]
        out = results / status / f"{relname}_restored.{ext}"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, np.full((8, 8, 3), 0.7, np.float32))
    return results, logs, published


def _by_source(rows) -> dict:
    return {r.source: r for r in rows}


def test_manifest_rows(tree):
    results, logs, published = tree
    rows = manifest_rows(results, list(SOURCES.values()), published, logs)
    assert [r.source for r in rows] == sorted(SOURCES)  # one row per input, sorted
    by = _by_source(rows)

    broken = by["a_broken.jpg"]
    assert broken.status == "failed" and broken.reason == "damaged or truncated image"
    assert broken.log == str(logs / "ingest" / "c0000.log") and broken.sha256 == "2" * 64

    new = by["g_new.jpg"]
    assert new.status == "failed" and "ingest" in new.reason and new.log == str(logs / "ingest")

    copy = by["c_copy.jpg"]
    assert copy.status == "duplicate" and copy.duplicate_of == "b_original.jpg"  # the path people know
    assert copy.reason == "byte-identical copy of b_original.jpg"

    stuck = by["d_stuck.png"]
    log = logs / "matting" / f"{BATCH}.log"  # the batch's job log; its table says why this photo failed
    assert "(MemoryError: out of memory)" in stuck.reason
    assert stuck.status == "failed" and stuck.reason.startswith("stopped in matting")
    assert str(log) in stuck.reason and stuck.log == str(log)
    assert stuck.preset == "faded" and stuck.faces == "2"  # what finished is still reported

    done = by["e_done.tif"]
    relname, ext = published[pid("e_done.tif")]
    assert done.status == "processed" and done.reason == "all QA checks passed"
    assert done.output == str(results / "processed" / f"{relname}_restored.{ext}") and Path(done.output).exists()
    assert (done.faces, done.preset, done.matting_backend) == ("2", "faded", "classical")
    assert done.damage == "scratch 0.12%; dust 0.03%"
    assert (done.restore_backend, done.restore_model, done.restore_model_sha256) == ("gpen", "GPEN-512.pth", "f" * 64)
    assert done.log == ""

    review = by["f_review.jpg"]
    assert review.status == "review" and review.reason == "face changed a lot (SSIM 0.31)"
    assert "/review/" in review.output

    unpublished = by["h_unpublished.jpg"]
    assert unpublished.status == "failed" and "not published yet" in unpublished.reason


def test_manifest_before_dedup(tree):
    results, logs, published = tree
    (results / "dedup" / "dedup.tsv").unlink()
    by = _by_source(manifest_rows(results, list(SOURCES.values()), published, logs))
    assert by["e_done.tif"].status == "failed" and "dedup" in by["e_done.tif"].reason
    assert by["a_broken.jpg"].reason == "damaged or truncated image"


def test_write_manifest_and_report(tree):
    results, logs, published = tree
    rows = write_manifest(results, list(SOURCES.values()), published, logs)
    on_disk = read_manifest(results / "manifest.csv")
    assert [r["source"] for r in on_disk] == [r.source for r in rows]
    assert [r["status"] for r in on_disk] == [r.status for r in rows]
    failed = (results / "failed.txt").read_text(encoding="utf-8").splitlines()
    assert failed[0].startswith("#")
    assert sorted(line.split("\t")[0] for line in failed[1:]) == sorted(r.source for r in rows if r.status == "failed")

    report = results / "report.html"
    write_report(results / "manifest.csv", results, report)
    page = report.read_text(encoding="utf-8")
    chunks = [p.read_text(encoding="utf-8") for p in sorted((results / "report-data").glob("rows-*.js"))]
    records = [r for chunk in chunks for r in json.loads(chunk[chunk.index(",") + 1:chunk.rindex(")")])]
    assert [(r[0], r[1]) for r in records] == [(r.source, r.status) for r in rows]  # every row, in order
    data = "".join(chunks)
    for text in (page, data):  # names and reasons never reach the page as markup
        assert "<script>x</script>" not in text and "<b>noisy</b>" not in text
        assert "base64" not in text  # thumbnails are files (tests/test_report.py)
    assert "&lt;b&gt;noisy&lt;/b&gt;" in page  # the reason, escaped, in the counts per reason


def test_manifest_applies_review_decisions(tree):
    results, logs, published = tree
    decisions = {pid("f_review.jpg"): {"decision": "accept", "reviewer": "Ann", "time": "2026-12-01T00:20:00+00:00"},
                 pid("<script>x</script>.jpg"): {"decision": "reject", "reviewer": "Bo", "time": "T", "note": "blurry"}}
    for name, status in (("f_review.jpg", "processed"), ("<script>x</script>.jpg", "rejected")):
        relname, ext = published[pid(name)]
        out = results / status / f"{relname}_restored.{ext}"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, np.full((8, 8, 3), 0.7, np.float32))
    by = _by_source(manifest_rows(results, list(SOURCES.values()), published, logs, decisions))
    accepted, rejected = by["f_review.jpg"], by["<script>x</script>.jpg"]
    assert accepted.status == "processed" and "/processed/" in accepted.output and accepted.decision == "accept"
    assert accepted.reason == "accepted by Ann 2026-12-01T00:20:00+00:00; QA: face changed a lot (SSIM 0.31)"
    assert rejected.status == "rejected" and "/rejected/" in rejected.output
    assert rejected.reason == "rejected by Bo T: blurry; QA: <b>noisy</b>"
    assert by["e_done.tif"].decision == "" and by["e_done.tif"].status == "processed"
