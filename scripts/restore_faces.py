"""Snakemake glue: restore the faces of a batch of photos with one model load.

A photo that fails is written unrestored, with the error in its record for QA; the batch goes on.
"""

import json
from pathlib import Path

from photoarchive.identity import FaceEmbedder
from photoarchive.imageio import atomic_directory, atomic_output, encode_image, load_matte, load_working, write_atomic
from photoarchive.joblog import retain_freed_memory, start_job
from photoarchive.metadata import (
    SOURCE_ENHANCED,
    SOURCE_MODEL_COMPOSITE,
    Provenance,
    exiftool_session,
    stamp_derivative,
)
from photoarchive.restore import build_restorer, catalogue_overrides, face_provenance, restore_faces

log = start_job(snakemake.log[0], snakemake.threads)
cfg = snakemake.params.cfg
selector = build_restorer(cfg, Path(snakemake.params.models_dir))
if selector.backend == "gpen":
    retain_freed_memory()  # repeated GPEN forwards reuse their buffers (see the function)
if selector.fallback_reason:
    log.warning("face restoration uses the classical fallback: %s", selector.fallback_reason)
embedder = FaceEmbedder() if cfg["identity"]["guard"] else None  # the identity guard's model, once per job
inputs = zip(snakemake.params.photos, snakemake.input.images, snakemake.input.faces, snakemake.input.mattes,
             strict=True)

# The batch folder appears only when the whole batch is written (a killed job leaves a hidden .part folder).
with exiftool_session() as et, atomic_directory(Path(snakemake.output[0])) as out_dir:
    for n, (photo, image_path, faces_path, matte_path) in enumerate(inputs, start=1):
        pixels, depth = load_working(Path(image_path))
        detection = json.loads(Path(faces_path).read_text())
        matte = None
        try:
            faces = detection["faces"]
            matte = load_matte(Path(matte_path))  # integers: paste_faces converts the face's patch
            overrides = catalogue_overrides(snakemake.params.catalogue.get(photo, {}))
            restored, record = restore_faces(pixels, faces, selector, matte=matte, cfg=cfg, overrides=overrides,
                                             embedder=embedder if faces else None)
            record["errors"] = [f"face {e['index']}: {e['error']}" for e in record["faces"]
                                if e.get("status") == "error"]
        except Exception as exc:  # recorded for QA; the other photos of the batch carry on
            log.exception("%s: face restoration failed", photo)
            restored = pixels
            record = {**selector.info(), "model_file": None, "model_sha256": None, "faces": [],
                      "errors": [f"face restoration failed: {type(exc).__name__}: {exc}"]}
        model_used = record.get("backend") == "gpen" and record.get("n_restored", 0) > 0
        models = {"detector": {"file": detection["model_file"], "sha256": detection["model_sha256"]}}
        if embedder is not None:
            models["identity"] = {"file": embedder.info()["model_file"], "sha256": embedder.info()["model_sha256"]}
        prov = Provenance(stage="restore", backend=record.get("backend", ""),
                          fallback=bool(record.get("fallback_reason")),
                          model_file=record.get("model_file") or "", model_sha256=record.get("model_sha256") or "",
                          parameters=record.get("controls", {}),
                          source_type=SOURCE_MODEL_COMPOSITE if model_used else SOURCE_ENHANCED,
                          models=models, faces=face_provenance(detection["faces"], record))
        del pixels, matte  # only the result is written: the input's and matte's floats go (16 bytes a pixel)
        with atomic_output(out_dir / f"{photo}.png") as tmp:
            tmp.write_bytes(encode_image(restored, ".png", depth))
            stamp_derivative(et, Path(image_path), tmp, prov)
        write_atomic(out_dir / f"{photo}.json", json.dumps(record, indent=1, default=float).encode())
        log.info("[%d/%d] %s: %d face(s) restored with %s%s", n, len(snakemake.params.photos), photo,
                 record.get("n_restored", 0), record.get("backend"),
                 " (classical fallback)" if record.get("fallback_reason") else "")
