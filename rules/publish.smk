# Publish: copy (never move) each finished photo of a batch into results/processed, results/review or
# (rejected by a reviewer) results/rejected, keeping the input's folders, with its matte, cut-out and
# damage mask; then the manifest that accounts for every input file.


rule publish:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        verdicts=stage_table("qa"),
        # the published files: pixels from restore, matting and repair; tags from the stamped master;
        # provenance from the records of repair, enhance, matting and restore
        stamped=stage_table("stamp"),
        repaired=stage_table("repair"),
        enhanced=stage_table("enhance"),
        matting=stage_table("matting"),
        restored=stage_table("restore"),
        decisions=decisions_input,
        retry=retry("publish"),  # a batch with a failed photo or a deleted file runs again
    output:
        table=stage_table("publish"),
    log:
        stage_log("publish"),
    benchmark:
        "benchmarks/publish/{batch}.tsv"
    params:
        photos=batch_members,
        published=lambda wc: {photo: PUBLISHED[photo] for photo in batch_members(wc)},
        jpeg_quality=config["publish"]["jpeg_quality"],
        decisions=batch_decisions,  # xmp:Rating and xmp:Label; a new decision re-publishes the photo
    threads: 1
    resources:
        # the restored photo in float and its encoding: measured 13 B/pixel (8-bit 108 MP), 26 (16-bit 48 MP)
        mem_mb=batch_mem_mb(28, 1000),
        runtime=batch_runtime(0.05),
    conda:
        "../envs/metadata.yaml"
    script:
        "../scripts/publish.py"


rule manifest:
    input:
        ingest=expand("results/ingest/batches/{chunk}.json", chunk=sorted(INGEST_CHUNKS)),
        dedup="results/dedup/dedup.tsv",
        triage="results/qa/triage.tsv",
        published=batch_tables("publish"),
        decisions=decisions_input,
    output:
        manifest=report("results/manifest.csv", caption="../report/manifest.rst", category="Results"),
        failed="results/failed.txt",
    log:
        "logs/manifest.log",
    params:
        sources=list(SOURCES.values()),
        published=PUBLISHED,
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/manifest.py"


# The end of a run: fails it (after everything else is written) when a photo failed in a stage, so that
# scripts and schedulers notice; the next run retries those photos alone.
rule finished:
    input:
        manifest="results/manifest.csv",
        failed="results/failed.txt",
    output:
        "results/finished.txt",
    log:
        "logs/finished.log",
    threads: 1
    resources:
        mem_mb=200,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/finished.py"
