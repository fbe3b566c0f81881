# Repair: scratches, dust and creases found and filled (grain kept) between stamp and enhance.


rule repair:
    input:
        stamped=stage_table("stamp"),
        faces=stage_table("faces"),
        retry=retry("repair"),  # a batch with a failed photo or a deleted file runs again
    output:
        table=stage_table("repair"),
    log:
        stage_log("repair"),
    benchmark:
        "benchmarks/repair/{batch}.tsv"
    params:
        photos=batch_members,
        cfg=config["repair"],
        catalogue=tuned_rows("repair"),
    threads: 1
    resources:
        mem_mb=batch_mem_mb(100, 1000),  # float copies, z-maps and masks of a strip, the image twice: ~100 B/pixel
        runtime=batch_runtime(0.1),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/repair.py"
