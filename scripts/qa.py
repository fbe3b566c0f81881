"""Snakemake glue: QA metrics of one finished photo and its verdict (processed or review, with reasons)."""

import json
from pathlib import Path

from photoarchive import qa
from photoarchive.imageio import load_working, write_atomic
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
photo = snakemake.wildcards.photo
original, _ = load_working(Path(snakemake.input.original))
restored, _ = load_working(Path(snakemake.input.restored) / f"{photo}.png")
faces = json.loads(Path(snakemake.input.faces).read_text())["faces"]
matting = json.loads(Path(snakemake.input.matting).read_text())
restore = json.loads((Path(snakemake.input.restored) / f"{photo}.json").read_text())
boxes = [tuple(f["box"]) for f in faces]

cfg = snakemake.params.cfg
similarities = []
for x0, y0, x1, y1 in boxes:
    y0, y1, x0, x1 = (max(0, round(v)) for v in (y0, y1, x0, x1))
    if y1 - y0 >= 8 and x1 - x0 >= 8:
        similarities.append(qa.face_ssim(original[y0:y1, x0:x1], restored[y0:y1, x0:x1], cfg["face_ssim_size"]))
metrics = {
    "faces": len(boxes),
    "largest_face_ratio": qa.largest_face_ratio(boxes, original.shape[:2]),
    "sharpness_before": qa.sharpness(original, cfg["sharpness_size"]),
    "sharpness_after": qa.sharpness(restored, cfg["sharpness_size"]),
    "noise_after": qa.noise_sigma(restored),
    "colour_cast_after": qa.colour_cast(restored),
    "face_ssim": min(similarities) if similarities else None,
    "restore_errors": restore.get("errors", []),
    "person_found": matting.get("person_found"),
}
status, reasons = qa.triage(metrics, cfg)
log.info("%s: %s %s", photo, status, "; ".join(reasons))
verdict = {"photo_id": photo, "status": status, "reasons": reasons, "metrics": metrics}
write_atomic(Path(snakemake.output.verdict), json.dumps(verdict, indent=1, default=float).encode())
