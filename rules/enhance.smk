# Enhance: colour cast, denoise, contrast, local contrast, brightness, sharpening (preset or auto).


rule enhance:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        repaired=stage_table("repair"),
        retry=retry("enhance"),  # a batch with a failed photo or a deleted file runs again
    output:
        table=stage_table("enhance"),
    log:
        stage_log("enhance"),
    benchmark:
        "benchmarks/enhance/{batch}.tsv"
    params:
        photos=batch_members,
        cfg=config["enhance"],
        catalogue=tuned_rows("enhance"),
    threads: 1
    resources:
        # one float image, enhanced band by band in place; 16-bit encode buffers: measured 16 B/pixel (8-bit
        # 108 MP) and 24 B/pixel (16-bit 48 MP) above the interpreter (bench/bench_memory.py)
        mem_mb=batch_mem_mb(26, 1000),
        runtime=batch_runtime(0.2),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/enhance.py"
