"""Snakemake glue: publish one restored photo in its status folder, in the format of its scan."""

from pathlib import Path

from photoarchive.imageio import atomic_output, encode_image, load_working
from photoarchive.joblog import start_job
from photoarchive.metadata import exiftool_session, stamp_conversion
from photoarchive.publish import remove_stale

log = start_job(snakemake.log[0])
photo = snakemake.params.photo
restored = Path(snakemake.input.restored) / f"{photo}.png"
target = Path(snakemake.output.restored)
pixels, depth = load_working(restored)
quality = snakemake.params.jpeg_quality
with exiftool_session() as et, atomic_output(target) as tmp:
    tmp.write_bytes(encode_image(pixels, target.suffix, depth, jpeg_quality=quality))
    stamp_conversion(et, restored, tmp, {"format": target.suffix.lstrip("."), "jpeg_quality": quality})
for stale in remove_stale(Path("results"), snakemake.wildcards.status, snakemake.wildcards.relname,
                          snakemake.wildcards.ext):
    log.info("removed %s left by an earlier run with another QA verdict", stale)
log.info("published %s", target)
