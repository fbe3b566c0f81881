"""Snakemake glue: QA metrics of one finished photo and its verdict (processed or review, with reasons)."""

import json
from pathlib import Path

from photoarchive import qa
from photoarchive.identity import FaceEmbedder
from photoarchive.imageio import load_working, write_atomic
from photoarchive.joblog import start_job

log = start_job(snakemake.log[0])
photo = snakemake.wildcards.photo
cfg, identity = snakemake.params.cfg, snakemake.params.identity
original, _ = load_working(Path(snakemake.input.original))
restored, _ = load_working(Path(snakemake.input.restored) / f"{photo}.png")
detection = json.loads(Path(snakemake.input.faces).read_text())
faces = detection["faces"]
matting = json.loads(Path(snakemake.input.matting).read_text())
enhance = json.loads(Path(snakemake.input.enhance_record).read_text())
restore = json.loads((Path(snakemake.input.restored) / f"{photo}.json").read_text())

embedder = FaceEmbedder() if faces and identity["guard"] else None
metrics = qa.measure_photo(original, restored, faces, restore, cfg, embedder, detection.get("skipped", []),
                           snakemake.params.min_face_px)
metrics["person_found"] = matting.get("person_found")
metrics["tone_kept"] = enhance.get("tone_kept")
status, reasons = qa.triage(metrics, cfg, identity)
log.info("%s: %s %s", photo, status, "; ".join(reasons))
verdict = {"photo_id": photo, "status": status, "reasons": reasons, "metrics": metrics,
           **({"embedder": embedder.info()} if embedder else {})}
write_atomic(Path(snakemake.output.verdict), json.dumps(verdict, indent=1, default=float).encode())
