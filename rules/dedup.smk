# Dedup (checkpoint): exact and near-duplicates are listed, never deleted; later stages see
# only the unique photos, grouped into stable restore batches.


checkpoint dedup:
    input:
        records=expand("results/ingest/{photo}.json", photo=sorted(SOURCES)),
    output:
        table="results/dedup/dedup.tsv",
    log:
        "logs/dedup/dedup.log",
    params:
        max_distance=config["dedup"]["max_distance"],
        batch_state="results/dedup/batches.json",
    threads: 1
    resources:
        mem_mb=500,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/dedup.py"
