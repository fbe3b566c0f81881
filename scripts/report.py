"""Snakemake glue: the HTML report with before/after thumbnails and the reasons."""

from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.manifest import write_report

log = start_job(snakemake.log[0])
write_report(Path(snakemake.input.manifest), Path("results"), Path(snakemake.output.report),
             snakemake.params.thumb_px)
