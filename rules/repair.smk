# Repair: scratches, dust and creases found and filled (grain kept) between stamp and enhance.


rule repair:
    input:
        image="results/stamp/{photo}.png",
        faces="results/faces/{photo}.json",
    output:
        image="results/repair/{photo}.png",
        damage="results/repair/{photo}_damage.png",
        record="results/repair/{photo}.json",
    log:
        "logs/repair/{photo}.log",
    benchmark:
        "benchmarks/repair/{photo}.tsv"
    params:
        cfg=config["repair"],
        catalogue=tuned_metadata_row("repair"),
    threads: 1
    resources:
        mem_mb=photo_mem_mb(100, 1000),  # float copies, z-maps and masks of a strip, the image twice: ~100 B/pixel
        runtime=photo_runtime(0.1),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/repair.py"
