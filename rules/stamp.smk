# Stamp: the upright working master carries the scan's own tags, the catalogue's fields,
# IPTC DigitalSourceType "print" and the first provenance entry.


rule stamp:
    input:
        # the batch's photos come from dedup's table and their records from ingest's: `ancient`, so that a
        # new scan elsewhere re-runs only the batch it joins (params change) and a changed scan its own
        batches=ancient("results/dedup/dedup.tsv"),
        ingested=lambda wc: ingest_tables(batch_members(wc)),
        sources=lambda wc: sources_of(batch_members(wc)),
        retry=retry("stamp"),  # a batch with a failed photo or a deleted file runs again
    output:
        table=stage_table("stamp"),
    log:
        stage_log("stamp"),
    benchmark:
        "benchmarks/stamp/{batch}.tsv"
    params:
        sources=lambda wc: {photo: SOURCES[photo] for photo in batch_members(wc)},
        inputs=lambda wc: {photo: source_of_photo(photo) for photo in batch_members(wc)},
        archival=lambda wc: {photo: archival_row(photo) for photo in batch_members(wc)},
        max_pixels=config["ingest"]["max_pixels"],
    threads: 1
    resources:
        # decoded scan, float copy and encoder buffers: measured 16 B/pixel (8-bit 108 MP), 23 (16-bit 48 MP)
        mem_mb=batch_mem_mb(24, 1000),
        runtime=batch_runtime(0.05),
    conda:
        "../envs/metadata.yaml"
    script:
        "../scripts/stamp.py"
