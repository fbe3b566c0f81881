"""Snakemake glue: publish one restored photo in its status folder, in the format of its scan."""

import json
from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.metadata import exiftool_session
from photoarchive.publish import publish_image, remove_stale

log = start_job(snakemake.log[0])
restored = Path(snakemake.input.restored) / f"{snakemake.params.photo}.png"
target = Path(snakemake.output.restored)
with exiftool_session() as et:
    publish_image(et, restored, target, snakemake.params.jpeg_quality,
                  json.loads(Path(snakemake.input.verdict).read_text()), snakemake.params.decision)
for stale in remove_stale(Path("results"), snakemake.wildcards.status, snakemake.wildcards.relname,
                          snakemake.wildcards.ext):
    log.info("removed %s left by an earlier run with another QA verdict", stale)
log.info("published %s", target)
