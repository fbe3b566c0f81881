# Restore faces: one job per batch of photos loads the model once; a photo that fails is recorded
# for QA and does not fail its batch.


rule restore_faces:
    input:
        unpack(
            lambda wc: {
                "images": expand("results/enhance/{photo}.png", photo=batch_members(wc)),
                "faces": expand("results/faces/{photo}.json", photo=batch_members(wc)),
                "mattes": expand("results/matting/{photo}_matte.png", photo=batch_members(wc)),
            }
        ),
    output:
        directory("results/restore/{batch}"),
    log:
        "logs/restore_faces/{batch}.log",
    benchmark:
        "benchmarks/restore_faces/{batch}.tsv"
    params:
        photos=batch_members,
        catalogue=batch_catalogue_rows,
        cfg=config["restore"],
        models_dir=config["models_dir"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,  # GPEN-1024 in fp32 on CPU plus one scan
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/restore_faces.py"
