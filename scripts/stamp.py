"""Snakemake glue: write the upright working master with the scan's tags, catalogue fields and provenance."""

import json
from pathlib import Path

from photoarchive.imageio import atomic_output, encode_image, read_scan, write_atomic
from photoarchive.ingest import IngestRecord, locate_source
from photoarchive.joblog import start_job
from photoarchive.metadata import exiftool_session, stamp_scan

log = start_job(snakemake.log[0])
source = snakemake.params.source
record = IngestRecord.from_json(Path(snakemake.input.record).read_text(encoding="utf-8"))
path, _ = locate_source(source, Path(snakemake.input.source))
scan = read_scan(path, snakemake.params.max_pixels)

with exiftool_session() as et, atomic_output(Path(snakemake.output.image)) as tmp:
    tmp.write_bytes(encode_image(scan.pixels, ".png", scan.bit_depth))
    notes = stamp_scan(et, path, tmp, photo_id=source.photo_id, source=source.relpath,
                       sha256=record.sha256, archival=snakemake.params.archival, keep_icc=scan.keep_icc)
for note in scan.notes + notes:
    log.info(note)
write_atomic(Path(snakemake.output.notes),
             json.dumps({"notes": scan.notes + notes, "bit_depth": scan.bit_depth}, indent=1,
                        ensure_ascii=False).encode("utf-8"))
