"""Snakemake glue: one table of every unique photo's QA verdict (decides where publish puts it)."""

import json
from pathlib import Path

from photoarchive.imageio import write_atomic
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
lines = ["photo_id\tstatus"]
for path in snakemake.input.verdicts:
    verdict = json.loads(Path(path).read_text(encoding="utf-8"))
    lines.append(f"{verdict['photo_id']}\t{verdict['status']}")
log.info("%d photos triaged", len(lines) - 1)
write_atomic(Path(snakemake.output.table), ("\n".join(lines) + "\n").encode())
