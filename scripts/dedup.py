"""Snakemake glue: duplicate groups over all ingest records, and the batches of the unique photos."""

import csv
import io
from dataclasses import asdict, fields
from pathlib import Path

from photoarchive.dedup import DedupRow, assign_batches, dedup_table
from photoarchive.imageio import write_atomic
from photoarchive.ingest import IngestRecord
from photoarchive.joblog import start_job
from photoarchive.stages import STAGES, BatchTable

log = start_job(snakemake.log[0])
results = Path(snakemake.output.table).parents[1]
ingest = STAGES["ingest"]
records = []
for table in snakemake.input.tables:
    for row in BatchTable.read(Path(table)).rows:
        if row.status == "done":
            text = ingest.record_path(results, row.photo_id).read_text(encoding="utf-8")
            records.append(IngestRecord.from_json(text))
        else:
            log.warning("%s has no ingest record: %s", row.photo_id, row.reason)
rows = dedup_table(records, snakemake.params.max_distance)

# Scheduling, not a param: the batch size and max_batches cut the photos into jobs and change no photo's result.
scheduling = snakemake.config["scheduling"]
batches = assign_batches([r.photo_id for r in rows if r.status == "unique"], scheduling["batch_size"],
                         scheduling["max_batches"])
pixels = {r.photo_id: (r.width or 0) * (r.height or 0) for r in records}
for row in rows:
    row.batch = batches.get(row.photo_id, "")
    row.pixels = pixels.get(row.photo_id, 0) if row.batch else 0
    log.info("%s: %s %s", row.photo_id, row.status, row.reason)

buffer = io.StringIO()
writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(DedupRow)], delimiter="\t",
                        lineterminator="\n")
writer.writeheader()
writer.writerows(asdict(r) for r in rows)
write_atomic(Path(snakemake.output.table), buffer.getvalue().encode("utf-8"))
