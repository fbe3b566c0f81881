"""Snakemake glue: restore the faces of a batch of photos with one model load (none when every photo of
the batch is already done).

A photo whose restoration raises is written unrestored, with the error in its record for QA.
"""

import functools
from pathlib import Path

from photoarchive.download import model_fingerprints
from photoarchive.identity import FaceEmbedder
from photoarchive.imageio import encode_image, load_matte, load_working, write_atomic
from photoarchive.joblog import retain_freed_memory, start_job
from photoarchive.metadata import SOURCE_ENHANCED, SOURCE_MODEL_COMPOSITE, Provenance
from photoarchive.restore import (
    build_restorer,
    catalogue_overrides,
    face_provenance,
    restore_faces,
    restore_model_files,
)
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
params = snakemake.params
cfg = params.cfg


@functools.cache
def models():
    """(restorer, identity embedder or None), loaded once, when the first photo needs them."""
    selector = build_restorer(cfg, Path(params.models_dir))
    if selector.backend == "gpen":
        retain_freed_memory()  # repeated GPEN forwards reuse their buffers (see the function)
    if selector.fallback_reason:
        log.warning("face restoration uses the classical fallback: %s", selector.fallback_reason)
    return selector, FaceEmbedder() if cfg["identity"]["guard"] else None


@functools.cache
def model_sha256():
    """{file: SHA-256} of the GPEN weights this job may load (hashed once per job)."""
    return model_fingerprints(restore_model_files(cfg, Path(params.models_dir)))


def settings(photo):
    """What decides a photo's restoration besides its upstream records: config, its catalogue overrides and,
    when there are any, the GPEN weights' SHA-256 (weights placed after a run redo the photos)."""
    found = {"cfg": cfg, "overrides": catalogue_overrides(params.catalogue[photo])}
    return {**found, "models": model_sha256()} if model_sha256() else found


def work(photo, key):
    log.info("%s: restoring faces", photo)
    selector, embedder = models()
    image_path = file_path(results, "enhance", photo)
    pixels, depth = load_working(image_path)
    detection = read_record(results, "faces", photo)
    matte = None
    try:
        faces = detection["faces"]
        matte = load_matte(file_path(results, "matting", photo))  # integers: paste_faces converts the face's patch
        restored, record = restore_faces(pixels, faces, selector, matte=matte, cfg=cfg,
                                         overrides=settings(photo)["overrides"], embedder=embedder if faces else None)
        record["errors"] = [f"face {e['index']}: {e['error']}" for e in record["faces"] if e.get("status") == "error"]
    except Exception as exc:  # recorded for QA, which sends the photo to review
        log.exception("%s: face restoration failed", photo)
        restored = pixels
        record = {**selector.info(), "model_file": None, "model_sha256": None, "faces": [],
                  "errors": [f"face restoration failed: {type(exc).__name__}: {exc}"]}
    model_used = record.get("backend") == "gpen" and record.get("n_restored", 0) > 0
    models_used = {"detector": {"file": detection["model_file"], "sha256": detection["model_sha256"]}}
    if embedder is not None:
        models_used["identity"] = {"file": embedder.info()["model_file"], "sha256": embedder.info()["model_sha256"]}
    prov = Provenance(stage="restore", backend=record.get("backend", ""),
                      fallback=bool(record.get("fallback_reason")),
                      model_file=record.get("model_file") or "", model_sha256=record.get("model_sha256") or "",
                      parameters=record.get("controls", {}),
                      source_type=SOURCE_MODEL_COMPOSITE if model_used else SOURCE_ENHANCED,
                      models=models_used, faces=face_provenance(detection["faces"], record))
    del pixels, matte  # only the result is written: the input's and matte's floats go (16 bytes a pixel)
    write_atomic(file_path(results, "restore", photo), encode_image(restored, ".png", depth))
    log.info("%s: %d face(s) restored with %s%s", photo, record.get("n_restored", 0), record.get("backend"),
             " (classical fallback)" if record.get("fallback_reason") else "")
    return {**record, "provenance": prov.to_dict()}  # publish writes it into the published image


run_batch(results, "restore", snakemake.wildcards.batch, params.photos, settings, work, Path(snakemake.output.table))
