"""Snakemake glue: repair the damage of a batch of photos; write each image, its damage mask and record."""

import functools
from pathlib import Path

from photoarchive.download import model_fingerprint
from photoarchive.imageio import encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.metadata import Provenance
from photoarchive.repair import DETECTOR_FILE, apply_overrides, catalogue_overrides, label_image, load_detector, repair
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
params = snakemake.params
weights_sha256 = model_fingerprint(Path(params.models_dir) / DETECTOR_FILE)  # None: no weights, classical


@functools.cache
def detector():
    """The learned detector (None: classical), loaded with torch only when a photo is to be repaired."""
    return load_detector(Path(params.models_dir), snakemake.threads)


def settings(photo):
    cfg = apply_overrides(params.cfg, catalogue_overrides(params.catalogue[photo]))
    return cfg if weights_sha256 is None else {**cfg, "detector_sha256": weights_sha256}  # new weights: redone


def work(photo, key):
    master = file_path(results, "stamp", photo)
    pixels, depth = load_working(master)
    cfg = settings(photo)
    faces = None
    if cfg["protect_faces"]:  # inside a face only clear damage is repaired
        faces = [face["box"] for face in read_record(results, "faces", photo)["faces"]]
        log.info("%s: %d face(s) protected", photo, len(faces))
    repaired, masks, record = repair(pixels, cfg, faces, detector())
    log.info("%s: repaired share of pixels: %s", photo, record["shares_text"])
    parameters = {**record["parameters"], "repaired": record["shares"]}
    write_atomic(file_path(results, "repair", photo), encode_image(repaired, ".png", depth))
    write_atomic(file_path(results, "repair", photo, 1), encode_image(label_image(masks), ".png", 8))
    # the working files carry no tags: publish writes this provenance into the published files
    prov = Provenance(stage="repair", backend=record["detector"], fallback=record["detector"] == "classical",
                      parameters=parameters,
                      model_file=record.get("model_file", ""), model_sha256=record.get("model_sha256", ""))
    return {**record, "provenance": prov.to_dict()}


run_batch(results, "repair", snakemake.wildcards.batch, params.photos, settings, work, Path(snakemake.output.table))
