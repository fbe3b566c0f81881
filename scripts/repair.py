"""Snakemake glue: repair one photo's damage; write the image, its damage mask and the record."""

import json
from pathlib import Path

from photoarchive.imageio import atomic_output, encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.metadata import Provenance, exiftool_session, stamp_derivative
from photoarchive.repair import apply_overrides, catalogue_overrides, label_image, repair

log = start_job(snakemake.log[0], snakemake.threads)
master = Path(snakemake.input.image)
pixels, depth = load_working(master)
cfg = apply_overrides(snakemake.params.cfg, catalogue_overrides(snakemake.params.catalogue))
faces = None
if cfg["protect_faces"]:  # inside a face only clear damage is repaired
    faces = [face["box"] for face in json.loads(Path(snakemake.input.faces).read_text())["faces"]]
    log.info("%d face(s) protected", len(faces))
repaired, masks, record = repair(pixels, cfg, faces)
log.info("repaired share of pixels: %s", record["shares_text"])

parameters = {**record["parameters"], "repaired": record["shares"]}
with exiftool_session() as et, atomic_output(Path(snakemake.output.image)) as tmp:
    tmp.write_bytes(encode_image(repaired, ".png", depth))
    stamp_derivative(et, master, tmp, Provenance(stage="repair", backend="classical", parameters=parameters))
write_atomic(Path(snakemake.output.damage), encode_image(label_image(masks), ".png", 8))
write_atomic(Path(snakemake.output.record), json.dumps(record, indent=1, default=float).encode())
