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
        mem_mb=photo_mem_mb(100, 1000),  # float Lab copies and NL-means buffers: ~100 B/pixel
        runtime=photo_runtime(0.2),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/enhance.py"
