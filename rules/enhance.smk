# Enhance: colour cast, denoise, contrast, local contrast, brightness, sharpening (preset or auto).


rule enhance:
    input:
        image="results/repair/{photo}.png",
    output:
        image="results/enhance/{photo}.png",
        record="results/enhance/{photo}.json",
    log:
        "logs/enhance/{photo}.log",
    benchmark:
        "benchmarks/enhance/{photo}.tsv"
    params:
        cfg=config["enhance"],
        catalogue=tuned_metadata_row("enhance"),
    threads: 1
    resources:
        # one float image, enhanced band by band in place; 16-bit encode buffers: measured 16 B/pixel (8-bit
        # 108 MP) and 24 B/pixel (16-bit 48 MP) above the interpreter (bench/bench_memory.py)
        mem_mb=photo_mem_mb(26, 1000),
        runtime=photo_runtime(0.2),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/enhance.py"
