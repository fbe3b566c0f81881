"""Snakemake glue: before/after thumbnails of one restore batch (photos that failed get none)."""

from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.report import write_thumbnails

log = start_job(snakemake.log[0], snakemake.threads)
restored = Path(snakemake.input.restored)
pairs = {photo: (Path(scan), restored / f"{photo}.png")
         for photo, scan in zip(snakemake.params.photos, snakemake.input.scans, strict=True)}
write_thumbnails(pairs, Path(snakemake.output[0]), snakemake.params.thumb_px, snakemake.params.quality)
