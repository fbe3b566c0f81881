"""Snakemake glue: publish each finished photo of a batch in its status folder, in the format of its scan,
with its matte, cut-out and damage mask beside it."""

from pathlib import Path

from photoarchive.decisions import effective_status
from photoarchive.joblog import start_job
from photoarchive.metadata import exiftool_session
from photoarchive.publish import publish_photo
from photoarchive.stages import read_record, run_batch

log = start_job(snakemake.log[0])
results = Path(snakemake.output.table).parents[2]
params = snakemake.params


def status(photo):
    return effective_status(read_record(results, "qa", photo)["status"], params.decisions.get(photo))


def settings(photo):
    return {"status": status(photo), "name": params.published[photo], "jpeg_quality": params.jpeg_quality,
            "decision": params.decisions.get(photo, {})}


def work(photo, key):
    relname, ext = params.published[photo]
    files = publish_photo(et, results, photo, status(photo), relname, ext, params.jpeg_quality,
                          params.decisions.get(photo))
    log.info("%s: published %s", photo, files[0])
    return {"status": status(photo), "files": [f.relative_to(results).as_posix() for f in files]}


with exiftool_session() as et:
    run_batch(results, "publish", snakemake.wildcards.batch, params.photos, settings, work,
              Path(snakemake.output.table))
