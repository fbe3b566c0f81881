"""Snakemake glue: find the faces of a batch of photos once (one detector load), for repair, matting,
restore and QA."""

import functools
from pathlib import Path

from photoarchive.faces import FaceDetector
from photoarchive.imageio import load_working
from photoarchive.joblog import start_job
from photoarchive.stages import file_path, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
cfg = snakemake.params.cfg


@functools.cache
def detector():
    found = FaceDetector(cfg, Path(snakemake.params.models_dir))
    if found.fallback_reason:
        log.warning("face detection uses a fallback: %s", found.fallback_reason)
    return found


def work(photo, key):
    pixels, _ = load_working(file_path(results, "stamp", photo))
    faces, skipped = detector().detect(pixels)
    log.info("%s: %d face(s) kept, %d skipped (detector %s)", photo, len(faces), len(skipped), detector().name)
    for item in skipped:
        log.info("%s: skipped face: %s", photo, item)
    return {**detector().info(), "faces": [f.to_dict() for f in faces], "skipped": skipped}


run_batch(results, "faces", snakemake.wildcards.batch, snakemake.params.photos, lambda photo: cfg, work,
          Path(snakemake.output.table))
