# Publish: copy (never move) each finished photo into results/processed, results/review or (rejected by a
# reviewer) results/rejected,
# keeping the input's folders; then the manifest that accounts for every input file.


rule publish:
    input:
        unpack(publish_inputs),
    output:
        restored="results/{status}/{relname}_restored.{ext}",
    log:
        "logs/publish/{status}/{relname}.{ext}.log",
    benchmark:
        "benchmarks/publish/{status}/{relname}.{ext}.tsv"
    params:
        photo=lambda wc: PHOTO_OF_RELNAME[wc.relname],
        jpeg_quality=config["publish"]["jpeg_quality"],
        decision=review_decision,  # xmp:Rating and xmp:Label; a new decision re-publishes the photo
    threads: 1
    resources:
        # the restored photo in float and its encoding: measured 13 B/pixel (8-bit 108 MP), 26 (16-bit 48 MP)
        mem_mb=published_mem_mb(28, 1000),
        runtime=2,
    conda:
        "../envs/metadata.yaml"
    script:
        "../scripts/publish.py"


rule publish_matte:
    input:
        unpack(publish_inputs),
    output:
        matte="results/{status}/{relname}_matte.png",
        foreground="results/{status}/{relname}_fg.png",
        damage="results/{status}/{relname}_damage.png",
    log:
        "logs/publish_matte/{status}/{relname}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/publish_matte.py"


# A batch's published files, listed: it ties the batch's publish jobs together, so that the SLURM
# profile's `publish` group submits a batch as one job instead of two jobs per photo.
rule publish_batch:
    input:
        batch_published_files,
    output:
        "results/publish/{batch}.txt",
    log:
        "logs/publish_batch/{batch}.log",
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/list_inputs.py"


rule manifest:
    input:
        records=expand("results/ingest/{photo}.json", photo=sorted(SOURCES)),
        dedup="results/dedup/dedup.tsv",
        triage="results/qa/triage.tsv",
        published=published_files,
        batches=lambda wc: expand("results/publish/{batch}.txt", batch=restore_batches()),
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

