# photoarchive: every scan of an archive through
#   ingest → dedup → stamp → faces → repair → enhance → matting → restore (GPU, batched) → QA → publish.
# Run:  snakemake --cores 8 --resources gpu=1        (see README.md)

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


wildcard_constraints:
    photo=r"[A-Za-z0-9._-]+-[0-9a-f]{8}",
    archive=r"[A-Za-z0-9._-]+-[0-9a-f]{8}",
    source=r"[A-Za-z0-9._-]+-[0-9a-f]{8}",
    batch=r"b\d{4}",
    chunk=r"c\d{4}",
    status="processed|review|rejected",
    ext="jpg|png|tif",


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


# The ingest chunk lists tie a chunk's ingest jobs into one cluster job; nothing reads them, so
# they are targets, not inputs (a new chunk size then re-runs nothing).
rule all:
    input:
        "results/manifest.csv",
        expand("results/ingest/chunks/{chunk}.txt", chunk=sorted(INGEST_CHUNKS)),
        "results/report.html",
        published_files,  # targets too: a deleted published file is made again
    default_target: True


# Partial targets: stop after a stage for every unique photo.
rule ingest_only:
    input:
        "results/dedup/dedup.tsv",
        expand("results/ingest/chunks/{chunk}.txt", chunk=sorted(INGEST_CHUNKS)),


rule enhance_only:
    input:
        lambda wc: expand("results/enhance/{photo}.png", photo=unique_photos()),


rule faces_only:
    input:
        lambda wc: expand("results/restore/{batch}", batch=restore_batches()),


onerror:
    write_partial_manifest()
