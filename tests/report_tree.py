"""A synthetic results tree for the report (tests/test_report.py, bench/bench_report.py).

It writes what the report reads, with the pipeline's layout (photoarchive.stages), without running the
stages: the manifest, stamped scans and restored images (small flat images), the published files (a few
bytes: the report only links them and shows their size) with each photo's publish record listing them,
and QA verdicts. Photos are processed, review, duplicate or failed in a fixed pattern; some failed photos
have a stamped scan but no restored image (restoration failed for them), which the thumbnails must skip.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, fields
from pathlib import Path

import cv2
import numpy as np

from photoarchive.manifest import ManifestRow
from photoarchive.stages import file_path

BATCH_SIZE = 32
REVIEW_REASONS = (
    "face {i}: identity distance 0.{d} from the scan > 0.45: the face may not look like the person",
    "colour cast 1{d}.5 > 10.0 after enhancement: colours still tinted",
    "face detail fell to 0.{d} of the scan's (< 0.50): the face may be smoothed",
    "<b>noisy</b> & odd: noise σ rose from 0.010 to 0.0{d}",
)


def status_of(k: int) -> str:
    return ("processed", "processed", "review", "processed", "duplicate", "processed", "review", "processed",
            "processed", "failed")[k % 10]


def make_report_tree(work: Path, n: int, image_px: tuple[int, int] = (48, 36), published_bytes: int = 64,
                     ) -> tuple[Path, Path, dict[str, dict[str, tuple[Path, Path]]]]:
    """Write a results tree of `n` input files under `work`.

    Returns (results, manifest.csv, {batch: {photo: (stamped scan, restored image)}}); the manifest's
    paths are relative to `work`, as in a real run (snakemake runs in the work dir).
    """
    results = work / "results"
    w, h = image_px
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin((xx + yy) / 7.0)], axis=-1)  # smooth: photo-like sizes
    base = (base * 255).astype(np.uint8)
    ok_png = cv2.imencode(".png", base)[1].tobytes()
    done_png = cv2.imencode(".png", 255 - base)[1].tobytes()
    rows, batches = [], {}
    unique = 0
    for k in range(n):
        status = status_of(k)
        folder = ("family", "documents", "box/1962", "unsorted")[k % 4]
        name = f"{folder}/photo_{k:05d}{' <x>' if k == 7 else ''}.jpg"
        pid = f"photo_{k:05d}-{k:08x}"
        row = ManifestRow(photo_id=pid, source=name, sha256=f"{k:064x}", status=status)
        if status == "duplicate":
            row.duplicate_of = f"{folder}/photo_{k - 1:05d}.jpg"
            row.reason = f"byte-identical copy of {row.duplicate_of}"
            rows.append(row)
            continue
        batch = f"b{unique // BATCH_SIZE:04d}"
        unique += 1
        stamp = file_path(results, "stamp", pid)
        restored = file_path(results, "restore", pid)  # flat: the batch is not in the path
        stamp.parent.mkdir(parents=True, exist_ok=True)
        restored.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_bytes(ok_png)
        batches.setdefault(batch, {})[pid] = (stamp, restored)
        if status == "failed":
            row.reason = f"stopped in QA: see logs/qa/{pid}.log; re-run snakemake to retry this photo"
            row.log = f"logs/qa/{pid}.log"
            rows.append(row)
            continue  # restoration failed for it: no restored image
        restored.write_bytes(done_png)
        reasons = [] if status == "processed" else [
            REVIEW_REASONS[(k + j) % len(REVIEW_REASONS)].format(i=j, d=10 + k % 80) for j in range(1 + k % 2)]
        key = f"{k:064x}"
        verdict = file_path(results, "qa", pid)
        verdict.parent.mkdir(parents=True, exist_ok=True)
        verdict.write_text(json.dumps({"photo_id": pid, "status": status, "reasons": reasons, "key": key}),
                           encoding="utf-8")
        out = Path("results") / status / folder / f"photo_{k:05d}_restored.jpg"
        published = []
        for suffix in ("_restored.jpg", "_matte.png", "_fg.png", "_damage.png"):
            target = work / out.parent / f"photo_{k:05d}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x" * (published_bytes * (1 + k % 7)))
            published.append(target.relative_to(results).as_posix())
        record = file_path(results, "publish", pid)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"status": status, "files": published, "key": key}), encoding="utf-8")
        row.reason = "; ".join(reasons) or "all QA checks passed"
        row.output = str(out)
        row.faces, row.face_detector, row.preset = str(k % 3), "retinaface", "faded"
        row.restore_backend, row.matting_backend = "classical", "classical"
        row.identity_distance = f"{(k % 50) / 100:.3f}" if k % 3 else ""
        rows.append(row)
    manifest = results / "manifest.csv"
    with open(manifest, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(ManifestRow)], lineterminator="\n")
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return results, manifest, batches
