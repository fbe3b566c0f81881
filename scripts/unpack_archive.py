"""Snakemake glue: unpack one ZIP of the input folder safely into the work area."""

from pathlib import Path

from photoarchive.ingest import ZipLimits, unpack_archive
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
members = unpack_archive(Path(snakemake.input[0]), Path(snakemake.output[0]),
                         ZipLimits(**snakemake.params.limits))
for name, entry in members.items():
    log.info("%s: %s %s", name, entry["status"], entry["reason"])
