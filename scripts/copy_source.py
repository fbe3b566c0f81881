"""Snakemake glue: copy an input file whose name Snakemake would read as a wildcard pattern ('{...}').

The copy lives in the work area; the original is only read.
"""

import shutil
from pathlib import Path

from photoarchive.imageio import atomic_output
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
with atomic_output(Path(snakemake.output[0])) as tmp:
    shutil.copyfile(snakemake.params.path, tmp)
log.info("copied %r for the rules (its name contains '{...}')", snakemake.params.path)
