"""QA benchmark: does `review` catch what a person must look at, and leave clean restorations alone?

Real photographs of people that ship inside packages (`bench/people.py`, face truth in
`bench/data/faces_truth.json`) are aged with the project's ageing filter, then taken through the
package's own stages as the pipeline does (face detection, enhancement, person matting, face
restoration with the identity guard, QA). That result is a *clean restoration*. From it, one problem per
variant is injected into the finished photo, each on the largest face:

- ``swap``: another person's face (from another photo of the set) aligned onto the same landmarks;
- ``warp``: the face's geometry changed: eyes enlarged 1.35× and the lower face stretched 15 %;
- ``smooth``: the face smoothed over (bilateral + Gaussian blur at 1/25 of the face size);
- ``missed``: the detector "misses" the face: QA and matting get the face list without it (QA's second
  opinion, dlib's HOG detector, and the person-without-face rule are what can catch it).

Every injected variant should go to review, clean restorations should mostly not. The photos are split
by a fixed rule into two halves (`--half tune|held-out|all`); thresholds must be judged on the held-out
half. Prints per variant the review rate (and the reasons that fired), precision and recall of
``review``, and writes ``bench/out/bench_qa.csv`` (per photo and variant) and ``bench_qa_summary.csv``.

Usage (from the repo root)::

    NUMBA_CACHE_DIR=.numba_cache .venv/bin/python bench/bench_qa.py [--half all] [--strength 0.6]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from people import load_rgb, people_photos  # noqa: E402

from photoarchive import qa  # noqa: E402
from photoarchive.enhance import enhance  # noqa: E402
from photoarchive.faces import Face, FaceDetector, align_face, paste_faces  # noqa: E402
from photoarchive.identity import FaceEmbedder  # noqa: E402
from photoarchive.matting import Matter  # noqa: E402
from photoarchive.restore import build_restorer, restore_faces  # noqa: E402
from photoarchive.synthetic import aged_print  # noqa: E402

log = logging.getLogger("bench_qa")
VARIANTS = ("clean", "swap", "warp", "smooth", "missed")


def load_config() -> dict:
    """config.yaml with the schema's defaults filled in, as the pipeline sees it."""
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, str(ROOT / "config.schema.yaml"))
    return config


def cap(image: np.ndarray, long_side: int) -> np.ndarray:
    factor = long_side / max(image.shape[:2])
    if factor >= 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def largest(faces: list[Face]) -> int:
    return max(range(len(faces)), key=lambda i: faces[i].size)


def inject_swap(image: np.ndarray, face: Face, donor: np.ndarray, donor_face: Face) -> np.ndarray:
    """Another person's face pasted onto ``face`` through the same 5-point alignment the restorer uses."""
    crop, _ = align_face(donor, donor_face.landmarks, 512)
    _, affine = align_face(image, face.landmarks, 512)
    return paste_faces(image, [crop], [affine])


def inject_warp(image: np.ndarray, face: Face) -> np.ndarray:
    """Eyes magnified 1.35× and the face below the eyes stretched 15 % downwards, inside the face box."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs.copy(), ys.copy()
    eye_dist = float(np.hypot(*(face.landmarks[1] - face.landmarks[0])))
    radius = 0.45 * eye_dist
    for cx, cy in face.landmarks[:2]:
        dx, dy = xs - cx, ys - cy
        r = np.sqrt(dx * dx + dy * dy)
        inside = r < radius
        # magnification 1.35 at the centre, fading to 1 at the radius
        factor = 1.0 / (1.35 - 0.35 * np.clip(r / radius, 0, 1))
        map_x[inside] = (cx + dx * factor)[inside]
        map_y[inside] = (cy + dy * factor)[inside]
    x0, y0, x1, y1 = face.box
    eye_y = float(face.landmarks[:2, 1].mean())
    below = (ys > eye_y) & (ys < y1 + 0.15 * (y1 - eye_y)) & (xs > x0) & (xs < x1)
    map_y[below] = eye_y + (ys[below] - eye_y) / 1.15
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def inject_smooth(image: np.ndarray, face: Face) -> np.ndarray:
    """The face box smoothed over: what a restorer that paints a plastic mask leaves."""
    out = image.copy()
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    x0, y0 = max(x0, 0), max(y0, 0)
    region = np.ascontiguousarray(out[y0:y1, x0:x1])
    sigma = max(1.0, (x1 - x0) / 25.0)
    region = cv2.bilateralFilter(region, -1, 0.1, sigma)
    out[y0:y1, x0:x1] = cv2.GaussianBlur(region, (0, 0), sigma)
    return out


def verdict(master, result, faces, skipped, record, matte_record, config, embedder) -> tuple[str, list[str], dict]:
    face_dicts = [f.to_dict() for f in faces]
    metrics = qa.measure_photo(master, result, face_dicts, record, config["qa"], embedder if faces else None,
                               skipped, config["faces"]["min_face_px"])
    metrics["person_found"] = matte_record.person_found
    metrics["people_without_face"] = getattr(matte_record, "people_without_face", None)
    status, reasons = qa.triage(metrics, config["qa"], config["restore"]["identity"])
    return status, reasons, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("tune", "held-out", "all"), default="all")
    parser.add_argument("--strength", type=float, default=0.6, help="ageing strength (aged_print)")
    parser.add_argument("--long-side", type=int, default=1600, help="photos are capped to this long side")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    config = load_config()
    truth = json.loads((ROOT / "bench" / "data" / "faces_truth.json").read_text())["photos"]
    photos = sorted((name, path) for name, path in people_photos() if name in truth)
    if args.half != "all":  # a fixed split: every other photo in name order
        photos = [p for i, p in enumerate(photos) if (i % 2 == 0) == (args.half == "tune")]
    detector = FaceDetector(config["faces"], ROOT / "models")
    matter = Matter(config["matting"], ROOT / "models")
    restorer = build_restorer(config["restore"], ROOT / "models")
    embedder = FaceEmbedder()

    loaded = []
    for index, (name, path) in enumerate(photos):
        image = load_rgb(path)
        master = aged_print(cap(image, args.long_side), seed=index, strength=args.strength)
        faces, skipped = detector.detect(master)
        loaded.append((name, master, faces, skipped))

    rows, started = [], time.perf_counter()
    for index, (name, master, faces, skipped) in enumerate(loaded):
        if not faces:
            log.warning("%s: no face detected after ageing; only the clean variant is measured", name)
        enhanced, _ = enhance(master, config["enhance"])
        matte = matter.matte(enhanced, [f.box for f in faces])
        restored, record = restore_faces(enhanced, faces, restorer, matte=matte.alpha, cfg=config["restore"],
                                         embedder=embedder if faces else None)
        results = {"clean": (restored, faces, matte)}
        if faces:
            k = largest(faces)
            donors = [(m, f) for j, (_, m, f, _) in enumerate(loaded) if j != index and f]
            donor_master, donor_faces = donors[index % len(donors)]
            results["swap"] = (inject_swap(restored, faces[k], donor_master, donor_faces[largest(donor_faces)]),
                               faces, matte)
            results["warp"] = (inject_warp(restored, faces[k]), faces, matte)
            results["smooth"] = (inject_smooth(restored, faces[k]), faces, matte)
            rest = faces[:k] + faces[k + 1:]
            results["missed"] = (restored, rest, matter.matte(enhanced, [f.box for f in rest]))
        for variant, (result, kept, matte_record) in results.items():
            status, reasons, metrics = verdict(master, result, kept, skipped, record, matte_record, config, embedder)
            rows.append({"photo": name, "faces": len(faces), "variant": variant, "status": status,
                         "identity_max": metrics.get("identity_distance"),
                         "face_detail_ratio": metrics.get("face_detail_ratio"),
                         "face_ssim": metrics.get("face_ssim"), "reasons": " | ".join(reasons)})
            print(f"{name:40s} {variant:7s} {status:9s} {'; '.join(reasons)[:150]}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "bench_qa.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summarise(rows, args, time.perf_counter() - started)


def _rule(reason: str) -> str:
    for key in ("identity", "shape drift", "detection score", "face detail", "face similarity", "second face",
                "person", "noise", "sharpness",
                "colour cast", "largest face", "restoration failed"):
        if key in reason:
            return key
    return "other"


def summarise(rows: list[dict], args, seconds: float) -> None:
    by_variant = defaultdict(list)
    for row in rows:
        by_variant[row["variant"]].append(row)
    summary = []
    print(f"\nQA benchmark ({args.half} photos, ageing strength {args.strength}, {seconds:.0f} s)")
    print(f"{'variant':8s} {'photos':>6s} {'review':>7s} {'rate':>6s}  rules that fired")
    for variant in VARIANTS:
        items = by_variant.get(variant, [])
        if not items:
            continue
        flagged = [r for r in items if r["status"] == "review"]
        rules = Counter(_rule(reason) for r in flagged for reason in r["reasons"].split(" | "))
        rate = len(flagged) / len(items)
        print(f"{variant:8s} {len(items):6d} {len(flagged):7d} {rate:6.0%}  {dict(rules)}")
        summary.append({"half": args.half, "variant": variant, "photos": len(items), "review": len(flagged),
                        "rate": round(rate, 3), "rules": json.dumps(dict(rules))})
    injected = [r for v in VARIANTS[1:] for r in by_variant.get(v, [])]
    clean = by_variant.get("clean", [])
    true_pos = sum(r["status"] == "review" for r in injected)
    false_pos = sum(r["status"] == "review" for r in clean)
    precision = true_pos / max(true_pos + false_pos, 1)
    recall = true_pos / max(len(injected), 1)
    print(f"review precision {precision:.2f}, recall {recall:.2f} (injected {len(injected)}, clean {len(clean)}; "
          f"clean restorations sent to review: {false_pos}/{len(clean)})")
    summary.append({"half": args.half, "variant": "all", "photos": len(injected) + len(clean),
                    "review": true_pos + false_pos, "rate": round(precision, 3),
                    "rules": json.dumps({"precision": round(precision, 3), "recall": round(recall, 3)})})
    with open(args.out / "bench_qa_summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(summary[0]))
        writer.writeheader()
        writer.writerows(summary)
    print(f"wrote {args.out / 'bench_qa.csv'} and {args.out / 'bench_qa_summary.csv'}")


if __name__ == "__main__":
    main()
