# QA: per-photo metrics and a verdict (processed or review, with every reason), then one table that
# applies the reviewers' decisions (accepted: processed, rejected: rejected; see photoarchive/decisions.py).


rule qa:
    input:
        original="results/stamp/{photo}.png",
        enhanced="results/enhance/{photo}.png",
        enhance_record="results/enhance/{photo}.json",
        faces="results/faces/{photo}.json",
        matting="results/matting/{photo}.json",
        restored=restore_batch_of,
    output:
        verdict="results/qa/{photo}.json",
    log:
        "logs/qa/{photo}.log",
    benchmark:
        "benchmarks/qa/{photo}.tsv"
    params:
        cfg=config["qa"],
        identity=config["restore"]["identity"],
        min_face_px=config["faces"]["min_face_px"],
    threads: 1
    resources:
        mem_mb=photo_mem_mb(30, 1000),  # original and restored photo in float: measured 26 B/pixel at 108 MP
        runtime=photo_runtime(0.05),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/qa.py"


checkpoint triage:
    input:
        verdicts=lambda wc: expand("results/qa/{photo}.json", photo=unique_photos()),
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
