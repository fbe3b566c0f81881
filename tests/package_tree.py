"""A synthetic results tree with the pipeline's structure, for package tests and bench/bench_package.py.

It writes what the stages leave behind without running them, through the stages' own runner
(photoarchive.stages.run_batch): per-photo records with their keys, each stage's batch tables
(results/<stage>/batches/<batch>.json), the publish records listing the published files, and the
manifest. The image bytes are random or placeholders, which the package step does not care about (it
never decodes pixels). Inputs: `n` scans in three top-level folders, one byte-identical duplicate, one
empty (failed) file and optionally one ZIP with a member, unpacked as the pipeline does.
"""

from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from photoarchive.dedup import DedupRow, assign_batches
from photoarchive.ingest import ZipLimits, archive_id, discover_sources, locate_source, unpack_archive
from photoarchive.publish import published_names, published_paths
from photoarchive.stages import PHOTO_CHAIN, STAGES, run_batch

GPEN_SHA = "ab" * 32
DETECTOR_SHA = "cd" * 32
BATCH_SIZE = 8
MANIFEST_COLUMNS = ["photo_id", "source", "sha256", "status", "duplicate_of", "reason", "faces", "preset",
                    "restore_backend", "restore_model", "restore_model_sha256", "matting_backend", "damage",
                    "output", "log", "notes"]


def _run_stage(results: Path, stage: str, batch: str, records: dict[str, Callable[[], dict]]) -> None:
    """One batch of a stage through the stage runner: each photo's files (placeholders but for what
    `records[photo]()` writes itself), then its record as `records[photo]()` returns it."""

    def work(photo: str, key: str) -> dict:
        for path in STAGES[stage].paths(results, photo)[:-1]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{stage} placeholder".encode())
        return records[photo]()

    run_batch(results, stage, batch, sorted(records), lambda photo: {"synthetic": stage, "photo": photo}, work,
              STAGES[stage].table_path(results, batch))


def _publish(results: Path, status: str, relname: str, ext: str, size: int) -> dict:
    files = published_paths(results, status, relname, ext)
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return {"status": status, "files": [f.relative_to(results).as_posix() for f in files]}


def make_tree(root: Path, n: int = 4, size: int = 4000, with_zip: bool = True, seed: int = 0) -> dict:
    """Write `root/scans` (the input folder) and `root/results`; return their paths and the sources."""
    rng = hashlib.sha256(str(seed).encode()).digest()
    scans, results = root / "scans", root / "results"
    for i in range(n):
        path = scans / f"coll{i % 3}" / f"photo {i:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng + os.urandom(size))
    (scans / "coll1" / "copy of photo 0000.jpg").write_bytes((scans / "coll0" / "photo 0000.jpg").read_bytes())
    (scans / "coll2").mkdir(parents=True, exist_ok=True)
    (scans / "coll2" / "empty.jpg").write_bytes(b"")
    if with_zip:
        with zipfile.ZipFile(scans / "box.zip", "w") as zf:
            zf.writestr("inner/beach.jpg", os.urandom(size))
    sources = discover_sources(scans)
    for s in sources:
        if s.archive and not (results / "unpacked" / archive_id(s.archive)).exists():
            unpack_archive(scans / s.archive, results / "unpacked" / archive_id(s.archive), ZipLimits())
    published = published_names(sources)
    by_sha: dict[str, str] = {}
    rows, dedup, ingest, finished = [], [], {}, {}
    for k, s in enumerate(sources):
        pid = s.photo_id
        original = (locate_source(s, results / "unpacked" / archive_id(s.archive))[0] if s.archive
                    else scans / s.relpath)
        data = original.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(photo_id=pid, source=s.relpath, sha256=sha)
        if not data:
            ingest[pid] = {"photo_id": pid, "source": s.relpath, "status": "failed", "reason": "empty file (0 bytes)",
                           "sha256": sha}
            row.update(status="failed", reason="empty file (0 bytes)", log="logs/ingest")
            rows.append(row)
            continue
        ingest[pid] = {"photo_id": pid, "source": s.relpath, "status": "ok", "reason": "", "sha256": sha, "width": 64,
                       "height": 48, "bit_depth": 8, "mode": "RGB", "notes": []}
        if sha in by_sha:
            dedup.append(DedupRow(pid, "duplicate", by_sha[sha], f"byte-identical copy of {by_sha[sha]}"))
            row.update(status="duplicate", duplicate_of=by_sha[sha], reason=f"byte-identical copy of {by_sha[sha]}")
            rows.append(row)
            continue
        by_sha[sha] = s.relpath
        dedup.append(DedupRow(pid, "unique", pixels=64 * 48))
        status = "review" if k % 2 else "processed"
        finished[pid] = status
        relname, ext = published[pid]
        row.update(status=status, reason="all checks passed", faces="0", preset="natural", restore_backend="gpen",
                   restore_model="GPEN-BFR-512.pth", restore_model_sha256=GPEN_SHA, matting_backend="classical",
                   damage="dust 1%", output=f"results/{status}/{relname}_restored.{ext}")
        rows.append(row)
    ids = sorted(ingest)
    for start in range(0, len(ids), 100):  # ingest chunks, as rules/common.smk cuts them
        _run_stage(results, "ingest", f"c{start // 100:04d}", {pid: ingest[pid].copy for pid in ids[start:start + 100]})
    batch_of = assign_batches(sorted(finished), BATCH_SIZE)
    for row in dedup:
        row.batch = batch_of.get(row.photo_id, "")
    for batch in sorted(set(batch_of.values())):
        photos = [pid for pid in sorted(finished) if batch_of[pid] == batch]
        for stage in PHOTO_CHAIN:
            _run_stage(results, stage, batch, {pid: _records(results, pid, finished[pid], published[pid], size)[stage]
                                               for pid in photos})
    (results / "dedup").mkdir(parents=True, exist_ok=True)
    with open(results / "dedup" / "dedup.tsv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow([f.name for f in fields(DedupRow)])
        writer.writerows([getattr(r, f.name) for f in fields(DedupRow)] for r in dedup)
    with open(results / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {"scans": scans, "results": results, "sources": sources, "rows": rows}


def _records(results: Path, pid: str, status: str, name: tuple[str, str], size: int) -> dict[str, Callable[[], dict]]:
    """What each stage of the chain records for a finished photo (publish also writes the published files)."""
    def made_by(stage: str, backend: str = "classical") -> dict:
        return {"stage": stage, "backend": backend, "fallback": False, "model_file": "", "model_sha256": "",
                "parameters": {}, "source_type": "", "models": {}, "faces": [], "when": "2026:01:01 00:00:00+00:00"}

    # complete records, as photoarchive/records.py declares them (run_batch refuses anything less)
    fixed = {
        "stamp": {"notes": [], "bit_depth": 8},
        "faces": {"detector": "retinaface_mobile", "model_file": "rf.onnx", "model_sha256": DETECTOR_SHA,
                  "fallback_reason": None, "faces": [], "skipped": []},
        "repair": {"enabled": True, "shares": {"dust": 0.01}, "shares_text": "dust 1%", "parameters": {},
                   "provenance": made_by("repair")},
        "enhance": {"requested": "auto", "preset": "natural", "reasons": [], "knobs": {},
                    "parameters": {"denoise": {"h": 3.0}}, "measures_before": {}, "tone_kept": False,
                    "provenance": made_by("enhance")},
        "matting": {"backend": "classical", "fallback": True, "model_file": None, "model_sha256": None,
                    "model_runtime": None, "seconds": 0.1, "person_found": False, "person_source": "none",
                    "person_coverage": 0.0, "person_model": None, "coverage": 0.0, "notes": [],
                    "provenance": made_by("matting")},
        "restore": {"backend": "gpen", "size": 512, "model_file": "models/GPEN-BFR-512.pth", "model_sha256": GPEN_SHA,
                    "faces": [], "errors": [], "provenance": made_by("restore", "gpen")},
        "qa": {"photo_id": pid, "status": status, "reasons": ["all checks passed"], "metrics": {}},
    }
    return {**{stage: record.copy for stage, record in fixed.items()},
            "publish": lambda: _publish(results, status, *name, size)}
