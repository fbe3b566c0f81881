"""Snakemake glue: enhance a batch of photos and record each one's preset, why it was chosen, and its
parameters."""

from pathlib import Path

from photoarchive.enhance import catalogue_overrides, enhance
from photoarchive.imageio import encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.metadata import Provenance
from photoarchive.stages import file_path, run_batch

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.output.table).parents[2]
params = snakemake.params


def settings(photo):
    return {**params.cfg, **catalogue_overrides(params.catalogue[photo])}


def work(photo, key):
    if photo in snakemake.config["debug"]["fail_photos"]:  # test hook (config.yaml), not a parameter
        raise RuntimeError("simulated crash: this photo is listed in the config's debug.fail_photos (a test hook)")
    master = file_path(results, "repair", photo)
    pixels, depth = load_working(master)
    # overwrite: the master's pixels are enhanced in place (one float image of the scan, not two)
    enhanced, record = enhance(pixels, settings(photo), overwrite=True)
    del pixels
    for reason in record.get("reasons", []):
        log.info("%s: %s", photo, reason)
    write_atomic(file_path(results, "enhance", photo), encode_image(enhanced, ".png", depth))
    prov = Provenance(stage="enhance", backend="classical", parameters=record.get("parameters", {}))
    return {**record, "provenance": prov.to_dict()}


run_batch(results, "enhance", snakemake.wildcards.batch, params.photos, settings, work, Path(snakemake.output.table))
