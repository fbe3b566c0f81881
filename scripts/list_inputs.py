"""Snakemake glue: list the job's input files, one per line (ties a chunk or batch into one cluster job)."""

from pathlib import Path

from photoarchive.imageio import write_atomic
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
write_atomic(Path(snakemake.output[0]), "".join(f"{path}\n" for path in snakemake.input).encode("utf-8"))
log.info("%d files listed in %s", len(snakemake.input), snakemake.output[0])
