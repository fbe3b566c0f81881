"""Snakemake glue: copy one photo's matte, cut-out and damage mask beside its published image."""

from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.publish import copy_atomic

log = start_job(snakemake.log[0])
copy_atomic(Path(snakemake.input.matte), Path(snakemake.output.matte))
copy_atomic(Path(snakemake.input.foreground), Path(snakemake.output.foreground))
copy_atomic(Path(snakemake.input.damage), Path(snakemake.output.damage))
log.info("published %s, %s and %s", snakemake.output.matte, snakemake.output.foreground, snakemake.output.damage)
