# Faces: found once per photo on the working master, used by repair, matting, restore and QA.


rule detect_faces:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        stamped=stage_table("stamp"),
        retry=retry("faces"),  # a batch with a failed photo or a deleted file runs again
        models=model_files("faces"),  # weights it loads from models_dir, when there
    output:
        table=stage_table("faces"),
    log:
        stage_log("faces"),
    benchmark:
        "benchmarks/faces/{batch}.tsv"
    params:
        photos=batch_members,
        cfg=config["faces"],
        models_dir=models_dir,
    threads: 1
    resources:
        mem_mb=batch_mem_mb(16, 1000),  # the photo; detection on a capped copy: measured 12 B/pixel at 108 MP
        runtime=batch_runtime(0.05),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/detect_faces.py"
