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
        mem_mb=photo_mem_mb(50, 1500),  # full-resolution guided upsampling and foreground
        runtime=photo_runtime(0.2),
    conda:
        "../envs/matting.yaml"
    script:
        "../scripts/matte.py"
