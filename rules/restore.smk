# Restore faces: one job per batch of photos loads the model once (and not at all when every photo of
# the batch is already done); a photo that fails is recorded and does not fail its batch.


rule restore_faces:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        enhanced=stage_table("enhance"),
        faces=stage_table("faces"),
        mattes=stage_table("matting"),
        retry=retry("restore"),  # a batch with a failed photo or a deleted file runs again
        models=model_files("restore"),  # weights it loads from models_dir, when there
    output:
        table=stage_table("restore"),
    log:
        stage_log("restore"),
    benchmark:
        "benchmarks/restore/{batch}.tsv"
    params:
        photos=batch_members,
        catalogue=tuned_rows("restore"),
        cfg=config["restore"],
        models_dir=models_dir,
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,  # GPEN-1024 in fp32 on CPU plus one scan
        runtime=batch_runtime(0.5, 5),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/restore_faces.py"
