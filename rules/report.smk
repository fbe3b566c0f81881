# The static report: before/after thumbnails (one job per restore batch, never one per photo), then
# results/report.html with its row files, and a sample of thumbnails for `snakemake --report`.


rule thumbnails:
    input:
        # the batch's photos (params) come from dedup's table: a checkpoint's output must be an input (or a
        # cluster job cannot plan the rule); ancient, so a rewritten table re-runs only batches whose photos changed
        batches=ancient("results/dedup/dedup.tsv"),
        stamped=stage_table("stamp"),
        restored=stage_table("restore"),
    output:
        # <photo>_before.jpg (stamped scan) and <photo>_after.jpg (restored image): the review app
        # reads these names too
        directory("results/thumbs/{batch}"),
    log:
        "logs/thumbnails/{batch}.log",
    benchmark:
        "benchmarks/thumbnails/{batch}.tsv"
    params:
        photos=batch_members,
        thumb_px=config["report"]["thumb_px"],
        quality=config["report"]["thumb_quality"],
    threads: 1
    resources:
        # one decoded image at a time, 16-bit RGB at worst, plus its shrunk copy
        mem_mb=batch_mem_mb(8, 500),
        runtime=lambda wc, attempt: attempt * (2 + len(batch_members(wc)) // 30),  # about 1 s a photo
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/thumbnails.py"


rule report:
    input:
        manifest="results/manifest.csv",
        thumbs=lambda wc: expand("results/thumbs/{batch}", batch=restore_batches()),
        # the published files are linked with their sizes; each QA verdict is read
        published=batch_tables("publish"),
        verdicts=batch_tables("qa"),
    output:
        report="results/report.html",
        data=directory("results/report-data"),
        sample=report(
            directory("results/report-sample"),
            patterns=["{photo}_{side}.jpg"],
            caption="../report/sample.rst",
            category="Before and after",
            subcategory="{side}",
            labels={"photo": "{photo}", "image": "{side}"},
        ),
    log:
        "logs/report.log",
    params:
        page_size=config["report"]["page_size"],
        sample_size=config["report"]["sample_size"],
    threads: 1
    resources:
        mem_mb=1000,  # the manifest's rows (10,000 photos: about 100 MB)
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/report.py"
