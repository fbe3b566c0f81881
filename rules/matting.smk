# Matting: an 8-bit alpha matte and an RGBA cut-out of the person (BSHM, or the classical fallback).


rule matte:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        enhanced=stage_table("enhance"),
        faces=stage_table("faces"),
        retry=retry("matting"),  # a batch with a failed photo or a deleted file runs again
        models=model_files("matting"),  # weights it loads from models_dir, when there
    output:
        table=stage_table("matting"),
    log:
        stage_log("matting"),
    benchmark:
        "benchmarks/matting/{batch}.tsv"
    params:
        photos=batch_members,
        cfg=config["matting"],
        models_dir=models_dir,
    threads: 1
    resources:
        # photo, alpha and foreground in float: measured 29 B/pixel (8-bit 108 MP), 30 (16-bit 48 MP)
        mem_mb=batch_mem_mb(34, 1500),
        runtime=batch_runtime(0.2),
    conda:
        "../envs/matting.yaml"
    script:
        "../scripts/matte.py"
