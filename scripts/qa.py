"""Snakemake glue: QA metrics of each finished photo of a batch and its verdict (processed or review, with
reasons)."""

import functools
from pathlib import Path

from photoarchive import qa
from photoarchive.identity import FaceEmbedder
from photoarchive.imageio import load_working
from photoarchive.joblog import start_job
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0])
results = Path(snakemake.output.table).parents[2]
params = snakemake.params
cfg, identity = params.cfg, params.identity


@functools.cache
def embedder():
    return FaceEmbedder() if identity["guard"] else None


def work(photo, key):
    original, _ = load_working(file_path(results, "stamp", photo))
    restored, _ = load_working(file_path(results, "restore", photo))
    detection = read_record(results, "faces", photo)
    faces = detection["faces"]
    guard = embedder() if faces else None
    metrics = qa.measure_photo(original, restored, faces, read_record(results, "restore", photo), cfg, guard,
                               detection.get("skipped", []), params.min_face_px)
    metrics["person_found"] = read_record(results, "matting", photo).get("person_found")
    metrics["tone_kept"] = read_record(results, "enhance", photo).get("tone_kept")
    status, reasons = qa.triage(metrics, cfg, identity)
    log.info("%s: %s %s", photo, status, "; ".join(reasons))
    return {"photo_id": photo, "status": status, "reasons": reasons, "metrics": metrics,
            **({"embedder": guard.info()} if guard else {})}


run_batch(results, "qa", snakemake.wildcards.batch, params.photos,
          lambda photo: {"cfg": cfg, "identity": identity, "min_face_px": params.min_face_px}, work,
          Path(snakemake.output.table))
