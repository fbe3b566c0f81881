"""Snakemake glue: unpack one ZIP of the input folder safely into the work area."""

from pathlib import Path

from photoarchive.imageio import atomic_directory
from photoarchive.ingest import ZipLimits, unpack_archive
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
with atomic_directory(Path(snakemake.output[0])) as folder:  # all members, or no folder at all
    members = unpack_archive(Path(snakemake.input[0]), folder, ZipLimits(**snakemake.params.limits))
for name, entry in members.items():
    log.info("%s: %s %s", name, entry["status"], entry["reason"])
