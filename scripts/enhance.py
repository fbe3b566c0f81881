"""Snakemake glue: enhance one photo and record the preset, why it was chosen, and its parameters."""

import json
from pathlib import Path

from photoarchive.enhance import catalogue_overrides, enhance
from photoarchive.imageio import atomic_output, encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.metadata import Provenance, exiftool_session, stamp_derivative

log = start_job(snakemake.log[0], snakemake.threads)
if snakemake.wildcards.photo in snakemake.config["debug"]["fail_photos"]:  # test hook, see config.yaml
    raise RuntimeError("simulated crash: this photo is listed in the config's debug.fail_photos (a test hook)")
master = Path(snakemake.input.image)
pixels, depth = load_working(master)
# overwrite: the master's pixels are enhanced in place (one float image of the scan, not two)
enhanced, record = enhance(pixels, {**snakemake.params.cfg, **catalogue_overrides(snakemake.params.catalogue)},
                           overwrite=True)
del pixels
for reason in record.get("reasons", []):
    log.info(reason)

with exiftool_session() as et, atomic_output(Path(snakemake.output.image)) as tmp:
    tmp.write_bytes(encode_image(enhanced, ".png", depth))
    stamp_derivative(et, master, tmp, Provenance(stage="enhance", backend="classical",
                                                 parameters=record.get("parameters", {})))
write_atomic(Path(snakemake.output.record), json.dumps(record, indent=1, default=float).encode())
