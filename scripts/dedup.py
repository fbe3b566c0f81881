"""Snakemake glue: duplicate groups over all ingest records, and stable restore batches."""

import csv
import io
import json
from dataclasses import asdict, fields
from pathlib import Path

from photoarchive.dedup import DedupRow, assign_batches, dedup_table
from photoarchive.imageio import write_atomic
from photoarchive.ingest import IngestRecord
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
records = [IngestRecord.from_json(Path(p).read_text(encoding="utf-8")) for p in snakemake.input.records]
rows = dedup_table(records, snakemake.params.max_distance)

state = Path(snakemake.params.batch_state)  # not an output: it must survive re-runs of this job
previous = json.loads(state.read_text()) if state.exists() else {}
# Scheduling, not a param: a new batch size groups new photos only, and re-runs nothing.
batch_size = snakemake.config["scheduling"]["restore_batch_size"]
batches = assign_batches([r.photo_id for r in rows if r.status == "unique"], previous, batch_size)
for row in rows:
    row.batch = batches.get(row.photo_id, "")
    log.info("%s: %s %s", row.photo_id, row.status, row.reason)

buffer = io.StringIO()
writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(DedupRow)], delimiter="\t",
                        lineterminator="\n")
writer.writeheader()
writer.writerows(asdict(r) for r in rows)
write_atomic(Path(snakemake.output.table), buffer.getvalue().encode("utf-8"))
write_atomic(state, json.dumps({**previous, **batches}, indent=1, sort_keys=True).encode())
