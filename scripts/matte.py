"""Snakemake glue: alpha matte and RGBA cut-out of the person in each photo of a batch (one model load)."""

import functools
from pathlib import Path

from photoarchive.download import model_fingerprints
from photoarchive.faces import Face
from photoarchive.imageio import encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.matting import Matter, matting_model_files
from photoarchive.metadata import Provenance
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
cfg = snakemake.params.cfg


@functools.cache
def matter():
    return Matter(cfg, Path(snakemake.params.models_dir))


@functools.cache
def model_sha256():
    """{file: SHA-256} of the model files this job would load (hashed once per job)."""
    return model_fingerprints(matting_model_files(cfg, Path(snakemake.params.models_dir)))


def settings(photo):
    """What decides a photo's matte: the config and, when there is one, the model file's SHA-256 (a BSHM
    model placed in models/ after a run redoes the photos matted without it)."""
    return {"cfg": cfg, "models": model_sha256()} if model_sha256() else cfg


def work(photo, key):
    enhanced = file_path(results, "enhance", photo)
    pixels, depth = load_working(enhanced)
    faces = [Face.from_dict(f) for f in read_record(results, "faces", photo)["faces"]]
    matte = matter().matte(pixels, [f.box for f in faces])
    del pixels  # not needed for writing: 12 bytes a pixel less while the PNGs are encoded
    for note in matte.notes:
        log.info("%s: %s", photo, note)
    fallback = matte.backend == "classical" and cfg.get("backend", "auto") == "auto"
    # The classical backend has no matting weights: its model in the provenance is the person segmenter, if used.
    person_model = matte.person_model or {}
    prov = Provenance(stage="matting", backend=matte.backend, fallback=fallback,
                      model_file=matte.model_file or person_model.get("model_file", ""),
                      model_sha256=matte.model_sha256 or person_model.get("model_sha256", ""),
                      parameters={**cfg, "person_source": matte.person_source,
                                  "person_model_sha256": person_model.get("model_sha256", "")})
    write_atomic(file_path(results, "matting", photo, 0), encode_image(matte.alpha, ".png", 8))
    write_atomic(file_path(results, "matting", photo, 1),
                 encode_image(matte.foreground, ".png", depth, alpha=matte.alpha))  # 16-bit kept
    return {
        "backend": matte.backend,
        "fallback": fallback,
        "model_file": matte.model_file,
        "model_sha256": matte.model_sha256,
        "model_runtime": matte.model_runtime,
        "seconds": matte.seconds,
        "person_found": matte.person_found,
        "person_source": matte.person_source,
        "person_coverage": matte.person_coverage,
        "person_model": matte.person_model,
        "coverage": float(matte.alpha.mean()),
        "notes": matte.notes,
        "provenance": prov.to_dict(),  # written into the published matte and cut-out
    }


run_batch(results, "matting", snakemake.wildcards.batch, snakemake.params.photos, settings, work,
          Path(snakemake.output.table))
