"""Snakemake glue: before/after thumbnails of one batch (photos that failed get none)."""

from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.report import write_thumbnails
from photoarchive.stages import file_path

log = start_job(snakemake.log[0], snakemake.threads)
results = Path(snakemake.input.restored).parents[2]
pairs = {photo: (file_path(results, "stamp", photo), file_path(results, "restore", photo))
         for photo in snakemake.params.photos}
write_thumbnails(pairs, Path(snakemake.output[0]), snakemake.params.thumb_px, snakemake.params.quality)
