"""Snakemake glue: repair the damage of a batch of photos; write each image, its damage mask and record."""

from pathlib import Path

from photoarchive.imageio import encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.metadata import Provenance
from photoarchive.repair import apply_overrides, catalogue_overrides, label_image, load_detector, repair
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
params = snakemake.params
detector = load_detector(Path(params.models_dir), snakemake.threads)  # None without models/damage_unet.pt: classical


def settings(photo):
    cfg = apply_overrides(params.cfg, catalogue_overrides(params.catalogue[photo]))
    return cfg if detector is None else {**cfg, "detector_sha256": detector.sha256}  # new weights: redone


def work(photo, key):
    master = file_path(results, "stamp", photo)
    pixels, depth = load_working(master)
    cfg = settings(photo)
    faces = None
    if cfg["protect_faces"]:  # inside a face only clear damage is repaired
        faces = [face["box"] for face in read_record(results, "faces", photo)["faces"]]
        log.info("%s: %d face(s) protected", photo, len(faces))
    repaired, masks, record = repair(pixels, cfg, faces, detector)
    log.info("%s: repaired share of pixels: %s", photo, record["shares_text"])
    parameters = {**record["parameters"], "repaired": record["shares"]}
    write_atomic(file_path(results, "repair", photo), encode_image(repaired, ".png", depth))
    write_atomic(file_path(results, "repair", photo, 1), encode_image(label_image(masks), ".png", 8))
    # the working files carry no tags: publish writes this provenance into the published files
    prov = Provenance(stage="repair", backend=record.get("detector", "classical"), parameters=parameters,
                      model_file=record.get("model_file", ""), model_sha256=record.get("model_sha256", ""))
    return {**record, "provenance": prov.to_dict()}


run_batch(results, "repair", snakemake.wildcards.batch, params.photos, settings, work, Path(snakemake.output.table))
