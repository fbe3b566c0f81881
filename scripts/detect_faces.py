"""Snakemake glue: find the faces of one photo once, for matting, restore and QA."""

import json
from pathlib import Path

from photoarchive.faces import FaceDetector
from photoarchive.imageio import load_working, write_atomic
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0], snakemake.threads)
pixels, _ = load_working(Path(snakemake.input.image))
detector = FaceDetector(snakemake.params.cfg, Path(snakemake.params.models_dir))
faces, skipped = detector.detect(pixels)
log.info("%d face(s) kept, %d skipped (detector %s)", len(faces), len(skipped), detector.name)
for item in skipped:
    log.info("skipped face: %s", item)
if detector.fallback_reason:
    log.warning("face detection uses a fallback: %s", detector.fallback_reason)
record = {
    **detector.info(),
    "faces": [f.to_dict() for f in faces],
    "skipped": skipped,
}
write_atomic(Path(snakemake.output.faces), json.dumps(record, indent=1, default=float).encode())
