# Dedup (checkpoint): exact and near-duplicates are listed, never deleted; later stages see
# only the unique photos, grouped into stable batches (scheduling.batch_size photos a job).


checkpoint dedup:
    input:
        tables=expand("results/ingest/batches/{chunk}.json", chunk=sorted(INGEST_CHUNKS)),
    output:
        table="results/dedup/dedup.tsv",
    log:
        "logs/dedup/dedup.log",
    params:
        max_distance=config["dedup"]["max_distance"],
    threads: 1
    resources:
        mem_mb=500,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/dedup.py"
