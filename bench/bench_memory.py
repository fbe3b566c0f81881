"""Memory and time of each per-photo stage on one large scan, each stage in its own process.

Makes a synthetic scan (default 12000×9000, 108 MP JPEG; ``--tiff`` an 8000×6000 16-bit TIFF) with
paper grain, structure and a face (scikit-image's ``astronaut``, bundled: nothing is downloaded), then
runs each stage's package functions as its script does, in a separate Python process: stamp (decode,
working PNG, exiftool), faces, enhance, matte (classical), restore (classical, no weights), qa
(measure_photo), publish. The repair stage is left out (its own benchmark: bench/bench_repair.py):
enhance reads the stamp's working master here. For each stage: wall seconds, CPU seconds (user +
system, exiftool included) and peak RSS of the stage's process (``wait4`` rusage), plus the size
of the files it wrote.

Usage (from the repo root; machine shared, so run it under ``nice``, one at a time)::

    nice .venv/bin/python bench/bench_memory.py [--mp 108] [--tiff] [--stages stamp,enhance]
        [--work /tmp/bench_memory] [--keep]

``--mp`` sets the size in megapixels (4:3) for quick runs while developing. Prints a table and writes
``bench/out/bench_memory.csv`` (or ``bench_memory_tiff.csv``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("stamp", "faces", "enhance", "matte", "restore", "qa", "publish")


def load_config() -> dict:
    """config.yaml with the schema's defaults filled in, as the pipeline sees it (classical backends)."""
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, str(ROOT / "config.schema.yaml"))
    return config


# ---------------------------------------------------------------------------------------------------
# The synthetic scan


def make_scan(path: Path, width: int, height: int, sixteen: bool) -> None:
    """A scan with a face: the astronaut, upscaled to the scan's height, on a mottled paper background."""
    import cv2
    import numpy as np
    from skimage import data

    rng = np.random.default_rng(1)
    face = data.astronaut()  # uint8 RGB 512×512
    side = min(height, width)
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    del face
    # Background: yellowed paper with low-frequency mottling, then the photo, then grain, row band by band.
    mottle = cv2.resize(rng.uniform(0.85, 1.0, (24, 32)).astype(np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    peak = 65535.0 if sixteen else 255.0
    out = np.empty((height, width, 3), np.uint16 if sixteen else np.uint8)
    x0 = (width - side) // 2
    tone = np.array([0.95, 0.88, 0.70], np.float32)
    step = 512
    for y in range(0, height, step):
        rows = slice(y, min(y + step, height))
        band = np.empty((rows.stop - y, width, 3), np.float32)
        band[:] = tone
        band *= mottle[rows, :, None]
        photo = big[rows].astype(np.float32) / 255.0
        band[:, x0:x0 + side] = photo * 0.8 + 0.1  # faded
        band *= np.float32([1.0, 0.95, 0.82])  # yellowed
        band += rng.normal(0, 0.02, band.shape[:2] + (1,)).astype(np.float32)
        np.clip(band, 0, 1, out=band)
        out[rows] = (band * peak + 0.5).astype(out.dtype)
    bgr = np.ascontiguousarray(out[..., ::-1])
    del out
    params = [cv2.IMWRITE_TIFF_COMPRESSION, 5] if sixteen else [cv2.IMWRITE_JPEG_QUALITY, 92]
    if not cv2.imwrite(str(path), bgr, params):
        raise OSError(f"could not write {path}")


# ---------------------------------------------------------------------------------------------------
# One stage, run in its own process (as its scripts/*.py does)


def run_stage(stage: str, work: Path, scan: Path) -> None:
    from photoarchive.imageio import atomic_output, encode_image, load_working, read_scan, write_atomic
    from photoarchive.metadata import Provenance, exiftool_session, stamp_published, stamp_scan

    config = load_config()
    models_dir = ROOT / "models"
    stamp, enhanced = work / "stamp.png", work / "enhance.png"
    if stage == "stamp":
        result = read_scan(scan, config["ingest"]["max_pixels"])
        with exiftool_session() as et, atomic_output(stamp) as tmp:
            tmp.write_bytes(encode_image(result.pixels, ".png", result.bit_depth))
            stamp_scan(et, scan, tmp, photo_id="bench", source=scan.name, sha256="0" * 64, archival={},
                       keep_icc=result.keep_icc)
    elif stage == "faces":
        from photoarchive.faces import FaceDetector

        pixels, _ = load_working(stamp)
        detector = FaceDetector(config["faces"], models_dir)
        faces, skipped = detector.detect(pixels)
        record = {**detector.info(), "faces": [f.to_dict() for f in faces], "skipped": skipped}
        write_atomic(work / "faces.json", json.dumps(record, indent=1, default=float).encode())
    elif stage == "enhance":
        from photoarchive.enhance import enhance

        pixels, depth = load_working(stamp)
        out, record = enhance(pixels, config["enhance"], overwrite=True)
        del pixels
        write_atomic(enhanced, encode_image(out, ".png", depth))  # working files carry no tags (publish writes them)
        write_atomic(work / "enhance.json", json.dumps(record, indent=1, default=float).encode())
    elif stage == "matte":
        from photoarchive.faces import Face
        from photoarchive.matting import Matter

        pixels, depth = load_working(enhanced)
        faces = [Face.from_dict(f) for f in json.loads((work / "faces.json").read_text())["faces"]]
        matte = Matter({**config["matting"], "backend": "classical"}, models_dir).matte(pixels, [f.box for f in faces])
        del pixels
        write_atomic(work / "matte.png", encode_image(matte.alpha, ".png", 8))
        write_atomic(work / "fg.png", encode_image(matte.foreground, ".png", depth, alpha=matte.alpha))
        write_atomic(work / "matting.json", json.dumps({"person_found": matte.person_found}).encode())
    elif stage == "restore":
        from photoarchive.identity import FaceEmbedder
        from photoarchive.restore import build_restorer, restore_faces

        cfg = {**config["restore"], "backend": "classical"}
        selector = build_restorer(cfg, models_dir)
        embedder = FaceEmbedder() if cfg["identity"]["guard"] else None
        pixels, depth = load_working(enhanced)
        faces = json.loads((work / "faces.json").read_text())["faces"]
        from photoarchive.imageio import load_matte

        matte = load_matte(work / "matte.png")
        restored, record = restore_faces(pixels, faces, selector, matte=matte, cfg=cfg, overrides={},
                                         embedder=embedder if faces else None)
        del pixels, matte
        write_atomic(work / "restored.png", encode_image(restored, ".png", depth))
        write_atomic(work / "restore.json", json.dumps(record, indent=1, default=float).encode())
    elif stage == "qa":
        from photoarchive import qa
        from photoarchive.identity import FaceEmbedder

        original, _ = load_working(stamp)
        restored, _ = load_working(work / "restored.png")
        detection = json.loads((work / "faces.json").read_text())
        restore = json.loads((work / "restore.json").read_text())
        identity = config["restore"]["identity"]
        embedder = FaceEmbedder() if detection["faces"] and identity["guard"] else None
        metrics = qa.measure_photo(original, restored, detection["faces"], restore, config["qa"], embedder,
                                   detection.get("skipped", []), config["faces"]["min_face_px"])
        write_atomic(work / "qa.json", json.dumps(metrics, indent=1, default=float).encode())
    elif stage == "publish":
        # as photoarchive.publish.publish_photo does: encode the restored image, copy matte and cut-out, and
        # write each one's tags once, from the master and the stages' provenance
        steps = [Provenance(stage="enhance", backend="classical"), Provenance(stage="restore", backend="classical")]
        pixels, depth = load_working(work / "restored.png")
        target = work / f"published{scan.suffix}"
        with exiftool_session() as et:
            with atomic_output(target) as tmp:
                tmp.write_bytes(encode_image(pixels, target.suffix, depth,
                                             jpeg_quality=config["publish"]["jpeg_quality"]))
                del pixels
                stamp_published(et, stamp, tmp, steps, {"format": target.suffix.lstrip(".")})
            for name, keep_icc in (("matte.png", False), ("fg.png", True)):
                with atomic_output(work / f"published_{name}") as tmp:
                    tmp.write_bytes((work / name).read_bytes())
                    stamp_published(et, stamp, tmp, steps[:1] + [Provenance(stage="matting")], keep_icc=keep_icc)
    else:
        raise ValueError(stage)


STAGE_OUTPUTS = {
    "stamp": ("stamp.png",), "faces": ("faces.json",), "enhance": ("enhance.png",),
    "matte": ("matte.png", "fg.png"), "restore": ("restored.png",), "qa": ("qa.json",),
    "publish": ("published.jpg", "published.tif"),
}


def measure(stage: str, work: Path, scan: Path) -> dict:
    """Run one stage in a child process; its wall time, CPU time and peak RSS (of it and its children)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-stage", stage, "--work", str(work),
           "--scan", str(scan)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"stage {stage} failed with exit code {proc.returncode}")
    sizes = [(work / name).stat().st_size for name in STAGE_OUTPUTS[stage] if (work / name).exists()]
    return {"stage": stage, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "output_mb": round(sum(sizes) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mp", type=float, default=None, help="megapixels (4:3); default 108 (JPEG) or 48 (TIFF)")
    parser.add_argument("--tiff", action="store_true", help="a 16-bit TIFF scan instead of an 8-bit JPEG")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_memory"))
    parser.add_argument("--keep", action="store_true", help="reuse the scan and outputs already in --work")
    parser.add_argument("--tag", default="", help="a label written into the CSV (e.g. before, after)")
    parser.add_argument("--run-stage", help=argparse.SUPPRESS)
    parser.add_argument("--scan", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_stage:
        run_stage(args.run_stage, args.work, args.scan)
        return

    mp = args.mp or (48.0 if args.tiff else 108.0)
    width = int(round((mp * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    work = args.work / ("tiff" if args.tiff else "jpeg") / f"{mp:g}mp"
    work.mkdir(parents=True, exist_ok=True)
    scan = work / ("scan.tif" if args.tiff else "scan.jpg")
    if not (args.keep and scan.exists()):
        started = time.perf_counter()
        make_scan(scan, width, height, args.tiff)
        print(f"made {scan} ({width}×{height}, {scan.stat().st_size / 2**20:.0f} MB) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    rows = []
    label = f"{width}x{height} {'16-bit TIFF' if args.tiff else 'JPEG'}"
    for stage in args.stages.split(","):
        row = {"tag": args.tag, "scan": label, **measure(stage, work, scan)}
        rows.append(row)
        print(f"{row['stage']:8s} wall {row['wall_s']:7.1f} s  cpu {row['cpu_s']:7.1f} s  "
              f"peak RSS {row['peak_rss_mb']:6d} MB  written {row['output_mb']:7.1f} MB", flush=True)
    total_wall = sum(r["wall_s"] for r in rows)
    print(f"{'total':8s} wall {total_wall:7.1f} s  cpu {sum(r['cpu_s'] for r in rows):7.1f} s  "
          f"peak RSS {max(r['peak_rss_mb'] for r in rows):6d} MB   load: {os.getloadavg()[0]:.2f}")
    out = ROOT / "bench" / "out" / ("bench_memory_tiff.csv" if args.tiff else "bench_memory.csv")
    out.parent.mkdir(exist_ok=True)
    new = not out.exists()
    with out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    print(f"appended to {out}")


if __name__ == "__main__":
    main()
