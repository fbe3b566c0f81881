# Repair: scratches, dust and creases found and filled (grain kept) between stamp and enhance.


rule repair:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        stamped=stage_table("stamp"),
        faces=stage_table("faces"),
        retry=retry("repair"),  # a batch with a failed photo or a deleted file runs again
        models=model_files("repair"),  # weights it loads from models_dir, when there
    output:
        table=stage_table("repair"),
    log:
        stage_log("repair"),
    benchmark:
        "benchmarks/repair/{batch}.tsv"
    params:
        photos=batch_members,
        cfg=config["repair"],
        catalogue=tuned_rows("repair"),
        models_dir=models_dir,  # damage_unet.pt there: the learned detector (else classical)
    threads: 1
    resources:
        mem_mb=batch_mem_mb(100, 1000),  # float copies, z-maps and masks of a strip, the image twice: ~100 B/pixel
        runtime=batch_runtime(0.1),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/repair.py"
