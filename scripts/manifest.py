"""Snakemake glue: the manifest (one row per input file) and the list of failed inputs."""

from pathlib import Path

from photoarchive.decisions import read_decisions
from photoarchive.joblog import start_job
from photoarchive.manifest import write_manifest

log = start_job(snakemake.log[0])
write_manifest(Path(snakemake.output.manifest).parent, snakemake.params.sources, snakemake.params.published,
               Path("logs"), read_decisions(snakemake.input.decisions[0]) if snakemake.input.decisions else {})
