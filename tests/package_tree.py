"""A synthetic results tree with the pipeline's structure, for package tests and bench/bench_package.py.

It writes what the stages leave behind (stage JSON records, published files, the manifest) without
running them: the payload bytes are random, which the package step does not care about (it never
decodes pixels). Inputs: `n` scans in three top-level folders, one byte-identical duplicate, one
empty (failed) file and optionally one ZIP with a member, unpacked as the pipeline does.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import zipfile
from pathlib import Path

from photoarchive.ingest import ZipLimits, archive_id, discover_sources, locate_source, unpack_archive
from photoarchive.publish import published_names

GPEN_SHA = "ab" * 32
DETECTOR_SHA = "cd" * 32
MANIFEST_COLUMNS = ["photo_id", "source", "sha256", "status", "duplicate_of", "reason", "faces", "preset",
                    "restore_backend", "restore_model", "restore_model_sha256", "matting_backend", "damage",
                    "output", "log", "notes"]


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


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
    rows, dedup, batches = [], [], {}
    for k, s in enumerate(sources):
        pid = s.photo_id
        original = (locate_source(s, results / "unpacked" / archive_id(s.archive))[0] if s.archive
                    else scans / s.relpath)
        data = original.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(photo_id=pid, source=s.relpath, sha256=sha)
        if not data:
            _write_json(results / "ingest" / f"{pid}.json", {"photo_id": pid, "source": s.relpath, "status": "failed",
                                                            "reason": "empty file (0 bytes)", "sha256": sha})
            row.update(status="failed", reason="empty file (0 bytes)", log=f"logs/ingest/{pid}.log")
            rows.append(row)
            continue
        _write_json(results / "ingest" / f"{pid}.json", {"photo_id": pid, "source": s.relpath, "status": "ok",
                                                        "reason": "", "sha256": sha, "width": 64, "height": 48,
                                                        "bit_depth": 8, "mode": "RGB", "notes": []})
        if sha in by_sha:
            dedup.append([pid, "duplicate", by_sha[sha], f"byte-identical copy of {by_sha[sha]}", ""])
            row.update(status="duplicate", duplicate_of=by_sha[sha], reason=f"byte-identical copy of {by_sha[sha]}")
            rows.append(row)
            continue
        by_sha[sha] = s.relpath
        batch = f"b{k // 8:04d}"
        batches[pid] = batch
        dedup.append([pid, "unique", "", "", batch])
        _write_json(results / "stamp" / f"{pid}.json", {"notes": [], "bit_depth": 8})
        _write_json(results / "repair" / f"{pid}.json", {"enabled": True, "shares": {"dust": 0.01},
                                                        "shares_text": "dust 1%"})
        _write_json(results / "enhance" / f"{pid}.json", {"requested": "auto", "preset": "natural",
                                                         "parameters": {"denoise": {"h": 3.0}}})
        _write_json(results / "faces" / f"{pid}.json", {"detector": "retinaface_mobile", "model_file": "rf.onnx",
                                                       "model_sha256": DETECTOR_SHA, "faces": []})
        _write_json(results / "matting" / f"{pid}.json", {"backend": "classical", "fallback": True,
                                                         "model_file": None, "model_sha256": None, "notes": []})
        _write_json(results / "restore" / batch / f"{pid}.json", {"backend": "gpen", "size": 512,
                                                                 "model_file": "models/GPEN-BFR-512.pth",
                                                                 "model_sha256": GPEN_SHA, "faces": []})
        status = "review" if k % 2 else "processed"
        _write_json(results / "qa" / f"{pid}.json", {"photo_id": pid, "status": status,
                                                    "reasons": ["all checks passed"], "metrics": {}})
        relname, ext = published[pid]
        base = results / status / relname
        base.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (f"_restored.{ext}", "_matte.png", "_fg.png", "_damage.png"):
            Path(f"{base}{suffix}").write_bytes(os.urandom(size))
        row.update(status=status, reason="all checks passed", faces="0", preset="natural", restore_backend="gpen",
                   restore_model="GPEN-BFR-512.pth", restore_model_sha256=GPEN_SHA, matting_backend="classical",
                   damage="dust 1%", output=f"results/{status}/{relname}_restored.{ext}")
        rows.append(row)
    (results / "dedup").mkdir(parents=True, exist_ok=True)
    with open(results / "dedup" / "dedup.tsv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["photo_id", "status", "duplicate_of", "reason", "batch"])
        writer.writerows(dedup)
    _write_json(results / "dedup" / "batches.json", batches)
    with open(results / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {"scans": scans, "results": results, "sources": sources, "rows": rows}
