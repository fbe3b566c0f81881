"""Snakemake glue: find the faces of a batch of photos once (one detector load), for repair, matting,
restore and QA."""

import functools
from pathlib import Path

from photoarchive.download import model_fingerprints
from photoarchive.faces import FaceDetector, detector_model_files
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


@functools.cache
def model_sha256():
    """{file: SHA-256} of the detector weights this job would load (hashed once per job)."""
    return model_fingerprints(detector_model_files(cfg, Path(snakemake.params.models_dir)))


def settings(photo):
    """What decides a photo's faces: the config and, when there is one, the weights file's SHA-256 (weights
    placed in models/ after a run redo the photos found without them)."""
    return {"cfg": cfg, "models": model_sha256()} if model_sha256() else cfg


def work(photo, key):
    pixels, _ = load_working(file_path(results, "stamp", photo))
    faces, skipped = detector().detect(pixels)
    log.info("%s: %d face(s) kept, %d skipped (detector %s)", photo, len(faces), len(skipped), detector().name)
    for item in skipped:
        log.info("%s: skipped face: %s", photo, item)
    return {**detector().info(), "faces": [f.to_dict() for f in faces], "skipped": skipped}


run_batch(results, "faces", snakemake.wildcards.batch, snakemake.params.photos, settings, work,
          Path(snakemake.output.table))
