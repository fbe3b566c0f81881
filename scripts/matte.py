"""Snakemake glue: alpha matte and RGBA cut-out of the person in one photo."""

import json
from pathlib import Path

from photoarchive.faces import Face
from photoarchive.imageio import atomic_output, encode_image, load_working, write_atomic
from photoarchive.joblog import start_job
from photoarchive.matting import Matter
from photoarchive.metadata import Provenance, exiftool_session, stamp_derivative

log = start_job(snakemake.log[0], snakemake.threads)
enhanced = Path(snakemake.input.image)
pixels, depth = load_working(enhanced)
faces = [Face.from_dict(f) for f in json.loads(Path(snakemake.input.faces).read_text())["faces"]]
matter = Matter(snakemake.params.cfg, Path(snakemake.params.models_dir))
matte = matter.matte(pixels, [f.box for f in faces])
del pixels  # not needed for writing: 12 bytes a pixel less while the PNGs are encoded
for note in matte.notes:
    log.info(note)

fallback = matte.backend == "classical" and snakemake.params.cfg.get("backend", "auto") == "auto"
# The classical backend has no matting weights: its model in the provenance is the person segmenter, if used.
person_model = matte.person_model or {}
prov = Provenance(stage="matting", backend=matte.backend, fallback=fallback,
                  model_file=matte.model_file or person_model.get("model_file", ""),
                  model_sha256=matte.model_sha256 or person_model.get("model_sha256", ""),
                  parameters={**snakemake.params.cfg, "person_source": matte.person_source,
                              "person_model_sha256": person_model.get("model_sha256", "")})
with exiftool_session() as et:
    with atomic_output(Path(snakemake.output.matte)) as tmp:
        tmp.write_bytes(encode_image(matte.alpha, ".png", 8))
        stamp_derivative(et, enhanced, tmp, prov, keep_icc=False)  # an alpha matte is not a colour image
    with atomic_output(Path(snakemake.output.foreground)) as tmp:
        tmp.write_bytes(encode_image(matte.foreground, ".png", depth, alpha=matte.alpha))  # 16-bit kept
        stamp_derivative(et, enhanced, tmp, prov)
record = {
    "backend": matte.backend,
    "fallback": fallback,
    "model_file": matte.model_file,
    "model_sha256": matte.model_sha256,
    "model_runtime": matte.model_runtime,
    "seconds": matte.seconds,
    "person_found": matte.person_found,
    "person_source": matte.person_source,
    "person_coverage": matte.person_coverage,
    "person_model": matte.person_model,
    "coverage": float(matte.alpha.mean()),
    "notes": matte.notes,
}
write_atomic(Path(snakemake.output.record), json.dumps(record, indent=1).encode())
