"""Snakemake glue: end the run, failing it when a photo failed in a stage (the next run retries it)."""

from pathlib import Path

from photoarchive.imageio import write_atomic
from photoarchive.joblog import start_job
from photoarchive.manifest import read_manifest, retryable

log = start_job(snakemake.log[0])
rows = read_manifest(Path(snakemake.input.manifest))
failed = [row for row in rows if retryable(row)]
if failed:
    for row in failed:
        log.error("%s: %s", row["source"], row["reason"])
    raise SystemExit(f"{len(failed)} photo(s) failed in a stage and will be retried by the next run: see "
                     f"{snakemake.input.failed}; every other photo is finished and published")
counts = {}
for row in rows:
    counts[row["status"]] = counts.get(row["status"], 0) + 1
summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
log.info("finished: %s", summary)
write_atomic(Path(snakemake.output[0]), f"{len(rows)} inputs: {summary}\n".encode())
