"""Snakemake glue: one table of every unique photo's status (decides where publish puts it): QA's verdict,
overridden by a reviewer's accept (processed) or reject (rejected) from the decisions file."""

import json
from pathlib import Path

from photoarchive.decisions import effective_status, read_decisions
from photoarchive.imageio import write_atomic
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
decisions = read_decisions(snakemake.input.decisions[0]) if snakemake.input.decisions else {}
lines = ["photo_id\tstatus\tqa_status\tdecision"]
for path in snakemake.input.verdicts:
    verdict = json.loads(Path(path).read_text(encoding="utf-8"))
    decision = decisions.get(verdict["photo_id"])
    status = effective_status(verdict["status"], decision)
    if status != verdict["status"]:
        log.info("%s: %s by the reviewer's decision (QA said %s)", verdict["photo_id"], status, verdict["status"])
    lines.append(f"{verdict['photo_id']}\t{status}\t{verdict['status']}\t{(decision or {}).get('decision', '')}")
log.info("%d photos triaged", len(lines) - 1)
write_atomic(Path(snakemake.output.table), ("\n".join(lines) + "\n").encode())
