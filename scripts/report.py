"""Snakemake glue: results/report.html with its row files, and the sample for `snakemake --report`."""

from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.report import write_report, write_sample

log = start_job(snakemake.log[0])
thumbs = [Path(p) for p in snakemake.input.thumbs]
summary = write_report(Path(snakemake.input.manifest), Path("results"), Path(snakemake.output.report), thumbs,
                       data_dir=Path(snakemake.output.data), page_size=snakemake.params.page_size)
log.info("report.html: %(rows)d rows, %(html_bytes)d bytes, %(chunks)d row files", summary)
sample = write_sample(Path(snakemake.input.manifest), thumbs, Path(snakemake.output.sample),
                      snakemake.params.sample_size)
log.info("sample for snakemake --report: %d photos", len(sample))
