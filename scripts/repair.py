"""Snakemake glue: repair the damage of a batch of photos; write each image, its damage mask and record."""

from pathlib import Path

from photoarchive.imageio import encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.metadata import Provenance
from photoarchive.repair import apply_overrides, catalogue_overrides, label_image, repair
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
params = snakemake.params


def settings(photo):
    return apply_overrides(params.cfg, catalogue_overrides(params.catalogue[photo]))


def work(photo, key):
    master = file_path(results, "stamp", photo)
    pixels, depth = load_working(master)
    cfg = settings(photo)
    faces = None
    if cfg["protect_faces"]:  # inside a face only clear damage is repaired
        faces = [face["box"] for face in read_record(results, "faces", photo)["faces"]]
        log.info("%s: %d face(s) protected", photo, len(faces))
    repaired, masks, record = repair(pixels, cfg, faces)
    log.info("%s: repaired share of pixels: %s", photo, record["shares_text"])
    parameters = {**record["parameters"], "repaired": record["shares"]}
    write_atomic(file_path(results, "repair", photo), encode_image(repaired, ".png", depth))
    write_atomic(file_path(results, "repair", photo, 1), encode_image(label_image(masks), ".png", 8))
    # the working files carry no tags: publish writes this provenance into the published files
    return {**record, "provenance": Provenance(stage="repair", backend="classical", parameters=parameters).to_dict()}


run_batch(results, "repair", snakemake.wildcards.batch, params.photos, settings, work, Path(snakemake.output.table))
