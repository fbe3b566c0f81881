# photoarchive: every scan of an archive through
#   ingest → dedup → stamp → faces → repair → enhance → matting → restore (GPU) → QA → publish,
#   one job per batch of photos in every stage (photoarchive/stages.py).
# Run:  snakemake --cores 8 --resources gpu=1        (see README.md)

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


wildcard_constraints:
    archive=r"[A-Za-z0-9._-]+-[0-9a-f]{8}",
    source=r"[A-Za-z0-9._-]+-[0-9a-f]{8}",
    batch=r"b\d{4}\d*",
    chunk=r"c\d{4}\d*",


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/dedup.smk"
include: "rules/stamp.smk"
include: "rules/faces.smk"
include: "rules/repair.smk"
include: "rules/enhance.smk"
include: "rules/matting.smk"
include: "rules/restore.smk"
include: "rules/qa.smk"
include: "rules/publish.smk"
include: "rules/report.smk"
include: "rules/package.smk"


# Every stage runs one job per batch of photos (photoarchive/stages.py); the batch tables lead to the
# manifest, and `finished` fails the run when a photo failed in a stage (the next run retries it alone).
rule all:
    input:
        "results/manifest.csv",
        "results/report.html",
        "results/finished.txt",
    default_target: True


# Partial targets: stop after a stage for every unique photo.
rule ingest_only:
    input:
        "results/dedup/dedup.tsv",


rule enhance_only:
    input:
        batch_tables("enhance"),


rule faces_only:
    input:
        batch_tables("restore"),


onerror:
    write_partial_manifest()
