# QA: per-photo metrics and a verdict (processed or review, with every reason), then one table that
# applies the reviewers' decisions (accepted: processed, rejected: rejected; see photoarchive/decisions.py).


rule qa:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        stamped=stage_table("stamp"),
        enhanced=stage_table("enhance"),
        faces=stage_table("faces"),
        matting=stage_table("matting"),
        restored=stage_table("restore"),
        retry=retry("qa"),  # a batch with a failed photo or a deleted file runs again
    output:
        table=stage_table("qa"),
    log:
        stage_log("qa"),
    benchmark:
        "benchmarks/qa/{batch}.tsv"
    params:
        photos=batch_members,
        cfg=config["qa"],
        identity=config["restore"]["identity"],
        min_face_px=config["faces"]["min_face_px"],
    threads: 1
    resources:
        mem_mb=batch_mem_mb(30, 1000),  # original and restored photo in float: measured 26 B/pixel at 108 MP
        runtime=batch_runtime(0.05),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/qa.py"


rule triage:
    input:
        tables=batch_tables("qa"),
        decisions=decisions_input,
    output:
        table=report("results/qa/triage.tsv", caption="../report/triage.rst", category="Results"),
    log:
        "logs/qa/triage.log",
    threads: 1
    resources:
        mem_mb=500,
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/triage.py"
