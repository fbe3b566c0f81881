# Ingest: every input file gets a record (checked, hashed), unreadable ones too ("failed"), one job per
# chunk of files (scheduling.ingest_chunk_size).


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
        sources=lambda wc: sources_of(INGEST_CHUNKS[wc.chunk]),
        retry=retry("ingest"),  # a chunk with a failed file or a deleted record runs again
    output:
        table="results/ingest/batches/{chunk}.json",
    log:
        "logs/ingest/{chunk}.log",
    benchmark:
        "benchmarks/ingest/{chunk}.tsv"
    params:
        sources=lambda wc: [SOURCES[photo] for photo in INGEST_CHUNKS[wc.chunk]],
        inputs=lambda wc: {photo: source_of_photo(photo) for photo in INGEST_CHUNKS[wc.chunk]},
        max_pixels=config["ingest"]["max_pixels"],
        max_file_mb=config["ingest"]["max_file_mb"],
        hash_size=config["dedup"]["hash_size"],
    threads: 1
    resources:
        mem_mb=2000,  # one decoded scan in float32 at a time (max_pixels bounds it)
        runtime=lambda wc, attempt: attempt * (2 + len(INGEST_CHUNKS[wc.chunk]) // 30),  # hash, decode, pHash
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/ingest.py"
