"""Snakemake glue: write the upright working masters of a batch with the scan's tags, catalogue fields and
provenance."""

import json
from pathlib import Path

from photoarchive.imageio import atomic_output, encode_image, read_scan
from photoarchive.ingest import IngestRecord, locate_source
from photoarchive.joblog import start_job
from photoarchive.metadata import exiftool_session, stamp_scan
from photoarchive.stages import file_path, read_record, run_batch

log = start_job(snakemake.log[0])
results = Path(snakemake.output.table).parents[2]
params = snakemake.params


def work(photo, key):
    source = params.sources[photo]
    record = IngestRecord.from_json(json.dumps(read_record(results, "ingest", photo)))
    path, _ = locate_source(source, Path(params.inputs[photo]))
    scan = read_scan(path, params.max_pixels)
    with atomic_output(file_path(results, "stamp", photo)) as tmp:
        tmp.write_bytes(encode_image(scan.pixels, ".png", scan.bit_depth))
        notes = stamp_scan(et, path, tmp, photo_id=source.photo_id, source=source.relpath,
                           sha256=record.sha256, archival=params.archival[photo], keep_icc=scan.keep_icc)
    for note in scan.notes + notes:
        log.info("%s: %s", photo, note)
    return {"notes": scan.notes + notes, "bit_depth": scan.bit_depth}


with exiftool_session() as et:
    run_batch(results, "stamp", snakemake.wildcards.batch, sorted(params.sources),
              lambda photo: {"archival": params.archival[photo], "max_pixels": params.max_pixels}, work,
              Path(snakemake.output.table))
