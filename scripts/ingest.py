"""Snakemake glue: check a chunk of input files and write their records (failed files get a reason)."""

from dataclasses import asdict
from pathlib import Path

from photoarchive.ingest import inspect_file, locate_source, source_fingerprint
from photoarchive.joblog import start_job
from photoarchive.stages import run_batch

log = start_job(snakemake.log[0])
results = Path(snakemake.output.table).parents[2]
params = snakemake.params
sources = {source.photo_id: source for source in params.sources}
located = {}


def readable(photo):
    """(path, why not) of the file behind a photo; refused by name alone: no input at all."""
    if photo not in located:
        source = sources[photo]
        located[photo] = (None, source.refusal) if source.refusal else locate_source(source, Path(params.inputs[photo]))
    return located[photo]


def parameters(photo):
    source = sources[photo]
    return {"source": source, "file": source_fingerprint(source, Path(params.inputs[photo]) if params.inputs[photo]
                                                         else None),
            "limits": (params.max_pixels, params.max_file_mb, params.hash_size)}


def work(photo, key):
    path, refusal = readable(photo)
    record = inspect_file(sources[photo], path, params.max_pixels, params.max_file_mb, params.hash_size,
                          refusal=refusal)
    log.info("%s: %s %s", sources[photo].relpath, record.status, record.reason)
    return asdict(record)


run_batch(results, "ingest", snakemake.wildcards.chunk, sorted(sources), parameters, work,
          Path(snakemake.output.table))
