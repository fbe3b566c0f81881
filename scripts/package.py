"""Snakemake glue: build the archive hand-off bags and list them in results/package/bags.tsv."""

from pathlib import Path

from photoarchive.joblog import start_job
from photoarchive.package import PackageOptions, package, write_index

log = start_job(snakemake.log[0])
opts = snakemake.params.options
options = PackageOptions(layout=opts["layout"], link=opts["link"], source_organization=opts["source_organization"],
                         external_identifier=opts["external_identifier"], processes=snakemake.threads)
index = Path(snakemake.output.index)
bags = package(Path(snakemake.input.manifest).parent, Path(snakemake.params.input_dir), Path(snakemake.input.manifest),
               snakemake.params.sources, index.parent, options, snakemake.params.catalogue,
               Path(snakemake.input.decisions[0]) if snakemake.input.decisions else None)
write_index(index, bags)
for bag in bags:
    log.info("%s: %s, %d files, %d bytes", bag.path, "built" if bag.built else "unchanged, kept", bag.files, bag.bytes)
