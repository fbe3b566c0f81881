# Ingest: every input file gets a record (checked, hashed) — unreadable ones too, as "failed".


rule copy_source:
    output:
        "results/sources/{source}",
    log:
        "logs/copy_source/{source}.log",
    params:
        path=lambda wc: str(INPUT_DIR / COPIED[wc.source]),
        stamp=source_stamp,
    threads: 1
    resources:
        mem_mb=200,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/copy_source.py"


rule unpack_archive:
    input:
        lambda wc: input_file(ARCHIVES[wc.archive]),
    output:
        directory("results/unpacked/{archive}"),
    log:
        "logs/unpack_archive/{archive}.log",
    params:
        limits=config["ingest"]["zip"],
    threads: 1
    resources:
        mem_mb=500,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/unpack_archive.py"


rule ingest:
    input:
        source_of,
    output:
        record="results/ingest/{photo}.json",
    log:
        "logs/ingest/{photo}.log",
    benchmark:
        "benchmarks/ingest/{photo}.tsv"
    params:
        source=lambda wc: SOURCES[wc.photo],
        max_pixels=config["ingest"]["max_pixels"],
        max_file_mb=config["ingest"]["max_file_mb"],
        hash_size=config["dedup"]["hash_size"],
    threads: 1
    resources:
        mem_mb=2000,  # one decoded scan in float32 (max_pixels bounds it)
        runtime=2,  # minutes on a cluster: hash, decode check and pHash
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/ingest.py"


# A chunk's records, listed: it ties the chunk's ingest jobs together, so that the SLURM profile's
# `intake` group submits a chunk as one job instead of one job per file.
rule ingest_chunk:
    input:
        lambda wc: expand("results/ingest/{photo}.json", photo=INGEST_CHUNKS[wc.chunk]),
    output:
        "results/ingest/chunks/{chunk}.txt",
    log:
        "logs/ingest_chunk/{chunk}.log",
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/list_inputs.py"
