# Matting: an 8-bit alpha matte and an RGBA cut-out of the person (BSHM, or the classical fallback).


rule matte:
    input:
        image="results/enhance/{photo}.png",
        faces="results/faces/{photo}.json",
    output:
        matte="results/matting/{photo}_matte.png",
        foreground="results/matting/{photo}_fg.png",
        record="results/matting/{photo}.json",
    log:
        "logs/matte/{photo}.log",
    benchmark:
        "benchmarks/matte/{photo}.tsv"
    params:
        cfg=config["matting"],
        models_dir=config["models_dir"],
    threads: 1
    resources:
        # photo, alpha and foreground in float: measured 29 B/pixel (8-bit 108 MP), 30 (16-bit 48 MP)
        mem_mb=photo_mem_mb(34, 1500),
        runtime=photo_runtime(0.2),
    conda:
        "../envs/matting.yaml"
    script:
        "../scripts/matte.py"
