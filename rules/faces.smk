# Faces: found once per photo on the working master, used by repair, matting, restore and QA.


rule detect_faces:
    input:
        image="results/stamp/{photo}.png",
    output:
        faces="results/faces/{photo}.json",
    log:
        "logs/detect_faces/{photo}.log",
    benchmark:
        "benchmarks/detect_faces/{photo}.tsv"
    params:
        cfg=config["faces"],
        models_dir=config["models_dir"],
    threads: 1
    resources:
        mem_mb=photo_mem_mb(16, 1000),  # the photo; detection on a capped copy: measured 12 B/pixel at 108 MP
        runtime=photo_runtime(0.05),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/detect_faces.py"
