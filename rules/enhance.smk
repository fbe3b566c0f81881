# Enhance: colour cast, denoise, contrast, local contrast, brightness, sharpening (preset or auto).


rule enhance:
    input:
        image="results/stamp/{photo}.png",
    output:
        image="results/enhance/{photo}.png",
        record="results/enhance/{photo}.json",
    log:
        "logs/enhance/{photo}.log",
    benchmark:
        "benchmarks/enhance/{photo}.tsv"
    params:
        cfg=config["enhance"],
    threads: 1
    resources:
        mem_mb=3000,  # float32 copies of one scan plus OpenCV's 8-bit working buffers
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/enhance.py"
