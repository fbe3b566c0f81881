"""Snakemake glue: one table of every unique photo's QA status, with a reviewer's accept (processed) or
reject (rejected) from the decisions file applied."""

from pathlib import Path

from photoarchive.decisions import effective_status, read_decisions
from photoarchive.imageio import write_atomic
from photoarchive.joblog import start_job
from photoarchive.stages import BatchTable, read_record

log = start_job(snakemake.log[0])
results = Path(snakemake.output.table).parents[1]
decisions = read_decisions(snakemake.input.decisions[0]) if snakemake.input.decisions else {}
lines = ["photo_id\tstatus\tqa_status\tdecision"]
for table in snakemake.input.tables:
    for row in BatchTable.read(Path(table)).rows:
        if row.status != "done":
            continue
        verdict = read_record(results, "qa", row.photo_id)
        decision = decisions.get(row.photo_id)
        status = effective_status(verdict["status"], decision)
        if status != verdict["status"]:
            log.info("%s: %s by the reviewer's decision (QA said %s)", row.photo_id, status, verdict["status"])
        lines.append(f"{row.photo_id}\t{status}\t{verdict['status']}\t{(decision or {}).get('decision', '')}")
log.info("%d photos triaged", len(lines) - 1)
write_atomic(Path(snakemake.output.table), ("\n".join(lines) + "\n").encode())
