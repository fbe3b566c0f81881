# Hand-off to the archive: BagIt bags (Archivematica transfer layout, PREMIS 3) under results/package/.
# Not part of `all`: run `snakemake package --cores 2` when the run is finished.


rule package:
    input:
        manifest="results/manifest.csv",
        published=batch_tables("publish"),
        originals=package_originals,
        decisions=lambda wc: [config["package"]["decisions"]] if config["package"]["decisions"] else decisions_input(wc),
    output:
        index="results/package/bags.tsv",
    log:
        "logs/package.log",
    params:
        options=config["package"],
        input_dir=str(INPUT_DIR),
        sources=list(SOURCES.values()),
        catalogue=METADATA_ROWS,
    threads: 2
    resources:
        mem_mb=1000,
        # every payload file is read twice (PREMIS/checksum.sha256, then bagit's manifest): about 0.3 s
        # per photo for 20 MB scans; at least 10 minutes
        runtime=max(10, len(SOURCES) // 200),
    conda:
        "../envs/package.yaml"
    script:
        "../scripts/package.py"
