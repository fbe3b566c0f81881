"""Snakemake glue: check one input file and write its record (failed files get a reason)."""

from pathlib import Path

from photoarchive.imageio import write_atomic
from photoarchive.ingest import inspect_file, locate_source
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
source = snakemake.params.source
if source.refusal:  # refused by name alone (the rule then has no input)
    path, refusal = None, source.refusal
else:
    path, refusal = locate_source(source, Path(snakemake.input[0]))
record = inspect_file(source, path, snakemake.params.max_pixels, snakemake.params.max_file_mb,
                      snakemake.params.hash_size, refusal=refusal)
log.info("%s: %s %s", source.relpath, record.status, record.reason)
write_atomic(Path(snakemake.output.record), record.to_json().encode("utf-8"))
