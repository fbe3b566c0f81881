# Stamp: the upright working master carries the scan's own tags, the catalogue's fields,
# IPTC DigitalSourceType "print" and the first provenance entry.


rule stamp:
    input:
        source=source_of,
        record="results/ingest/{photo}.json",
    output:
        image="results/stamp/{photo}.png",
        notes="results/stamp/{photo}.json",
    log:
        "logs/stamp/{photo}.log",
    benchmark:
        "benchmarks/stamp/{photo}.tsv"
    params:
        source=lambda wc: SOURCES[wc.photo],
        archival=metadata_row,
        max_pixels=config["ingest"]["max_pixels"],
    threads: 1
    resources:
        # decoded scan, float copy and encoder buffers: measured 16 B/pixel (8-bit 108 MP), 23 (16-bit 48 MP)
        mem_mb=photo_mem_mb(24, 1000),
        runtime=photo_runtime(0.05),
    conda:
        "../envs/metadata.yaml"
    script:
        "../scripts/stamp.py"
