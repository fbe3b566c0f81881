"""Person prior benchmark: MediaPipe's selfie segmenter (`photoarchive.person`) on real photos of people.

Scenes (all from packages, nothing downloaded): scikit-image's ``astronaut`` clean and aged (the project's
ageing filter), with her face blurred so that no detector finds it, and with the face cropped out; the
``camera`` man (face box from the project's face detector, whatever backend it has here); a "group" of
five small aged astronauts on paper, with and without their face boxes; and photos without a person
(``coffee``, ``chelsea``, ``rocket``, ``text``, ``page``, ``hubble_deep_field``, ``immunohistochemistry``,
flat paper).

Per scene and segmenter variant (``whole``: whole photo only; ``default``: + face-guided crops;
``tiles2``/``tiles4``: + 2/4 tiles per long side): the share of each known face box covered by the mask
(≥ 0.5), the share of the photo covered, the mask's confidence, whether a person counts as found (faces
given, or coverage ≥ ``person_min_fraction`` with confidence ≥ ``person_min_confidence``), and
milliseconds. With ``--matte``, the classical matte with the ``segmenter`` and the ``faces`` prior:
person_found and mean alpha. Masks and mattes are saved as PNGs next to the CSV.

``--people``: instead, the real photographs of people of `bench/people.py` (fetched once into its cache
with the package clients, SHA-256-checked), each clean and aged (strength 1): faces from the project's
face detector (whatever backend is installed; recorded), the share of each detected face covered by the
mask, and whether a person is found with the faces and without them (as if the detector had missed all).

Usage (from the repo root)::

    NUMBA_CACHE_DIR=.numba_cache .venv/bin/python bench/bench_person.py [--matte] [--no-png] [--people]

Prints a table and writes ``bench/out/person.csv`` or ``bench/out/person_people.csv`` (and PNGs in
``bench/out/person/``).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photoarchive.matting import DEFAULTS, Matter  # noqa: E402
from photoarchive.person import PersonSegmenter, box_coverage, mask_confidence, mask_coverage  # noqa: E402
from photoarchive.synthetic import aged_print  # noqa: E402

ASTRONAUT_FACE = (177.0, 66.0, 272.0, 161.0)  # Haar box in the 512×512 original
VARIANTS = {"whole": {"face_crop": 0.0}, "default": {}, "tiles2": {"tiles": 2}, "tiles4": {"tiles": 4}}

Box = tuple[float, float, float, float]


def _rgb(name: str) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3].astype(np.float32) / 255.0


def _paper(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.0)
    blotch = cv2.resize(rng.standard_normal((6, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.array([0.86, 0.80, 0.68], np.float32) * (1 + 0.05 * grain + 0.03 * blotch)[..., None], 0, 1)


def _group(astronaut: np.ndarray) -> tuple[np.ndarray, list[Box]]:
    """Five astronauts of 110–220 px on a 1200×800 paper, aged; returns (image, face boxes)."""
    canvas = _paper(800, 1200, seed=4)
    boxes: list[Box] = []
    for size, x, y in ((220, 40, 560), (160, 300, 620), (190, 500, 420), (130, 760, 300), (110, 1000, 690)):
        y = min(y, 800 - size)
        person = cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_AREA)
        canvas[y : y + size, x : x + size] = person
        k = size / 512
        boxes.append((x + ASTRONAUT_FACE[0] * k, y + ASTRONAUT_FACE[1] * k,
                      x + ASTRONAUT_FACE[2] * k, y + ASTRONAUT_FACE[3] * k))
    return aged_print(canvas, seed=5, strength=0.8), boxes


def _detected_faces(image: np.ndarray) -> tuple[list[Box], str]:
    from photoarchive.faces import FaceDetector

    detector = FaceDetector({}, ROOT / "models")
    faces, _ = detector.detect(image)
    return [f.box for f in faces], detector.name


def scenes() -> list[dict]:
    """Each: name, image, faces given to the segmenter, known face boxes (for coverage), has a person."""
    astro = _rgb("astronaut")
    aged = aged_print(astro, seed=1, strength=1.0)
    blurred = aged.copy()
    blurred[50:175, 160:290] = cv2.GaussianBlur(blurred[50:175, 160:290], (0, 0), 12)
    group, group_boxes = _group(astro)
    camera = _rgb("camera")
    camera_faces, detector = _detected_faces(camera)
    out = [
        dict(name="astronaut", image=astro, faces=[ASTRONAUT_FACE], known=[ASTRONAUT_FACE], person=True),
        dict(name="astronaut_aged", image=aged, faces=[ASTRONAUT_FACE], known=[ASTRONAUT_FACE], person=True),
        dict(name="astronaut_face_blurred", image=blurred, faces=[], known=[ASTRONAUT_FACE], person=True),
        dict(name="astronaut_face_cropped", image=aged[200:].copy(), faces=[], known=[], person=True),
        dict(name=f"camera_{detector}_faces", image=camera, faces=camera_faces, known=camera_faces, person=True),
        dict(name="camera_no_face", image=camera, faces=[], known=camera_faces, person=True),
        dict(name="group5_aged", image=group, faces=group_boxes, known=group_boxes, person=True),
        dict(name="group5_aged_no_faces", image=group, faces=[], known=group_boxes, person=True),
    ]
    for name in ("coffee", "chelsea", "rocket", "text", "page", "hubble_deep_field", "immunohistochemistry"):
        out.append(dict(name=name, image=_rgb(name), faces=[], known=[], person=False))
    out.append(dict(name="flat_paper", image=aged_print(_paper(600, 800), seed=2), faces=[], known=[],
                    person=False))
    return out


def _core(box: Box) -> Box:
    """The central half (width and height) of a face box: the face itself, without the box's corners."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) / 4, (y1 - y0) / 4
    return (x0 + dx, y0 + dy, x1 - dx, y1 - dy)


def run_people(out: Path, pictures: Path | None) -> None:
    """The `--people` mode: real photos of people from packages, clean and aged."""
    sys.path.insert(0, str(ROOT / "bench"))
    from people import DEFAULT_CACHE, SOURCE_BY_NAME, load_rgb, people_photos

    from photoarchive.faces import FaceDetector

    detector = FaceDetector({}, ROOT / "models")
    seg = PersonSegmenter()
    threshold, min_fraction = DEFAULTS["person_threshold"], DEFAULTS["person_min_fraction"]
    min_confidence = DEFAULTS["person_min_confidence"]
    rows: list[dict] = []
    print(f"# faces by {detector.name}; photos from {DEFAULT_CACHE}")
    print(f"{'photo':<40}{'aged':>5}{'faces':>6}{'face cov min/mean':>19}{'cover':>7}{'conf':>6}"
          f"{'no-face found':>14}{'ms':>6}")
    for index, (name, path) in enumerate(people_photos(include_duplicates=True)):
        clean = load_rgb(path)
        for aged in (False, True):
            image = aged_print(clean, seed=10 + index, strength=1.0) if aged else clean
            faces = [f.box for f in detector.detect(image)[0]]
            start = time.perf_counter()
            mask = seg.person_mask(image, faces)
            ms = 1000 * (time.perf_counter() - start)
            scale = mask.shape[1] / image.shape[1]
            face_cov = [box_coverage(mask, box, scale, threshold) for box in faces]
            core_cov = [box_coverage(mask, _core(box), scale, threshold) for box in faces]
            faceless = seg.person_mask(image, [])
            cover, confidence = mask_coverage(faceless, threshold), mask_confidence(faceless, threshold)
            found_without = cover >= min_fraction and confidence >= min_confidence
            rows.append({"photo": name, "aged": aged, "size": f"{image.shape[1]}x{image.shape[0]}",
                         "shows": SOURCE_BY_NAME[name].shows, "detector": detector.name, "faces": len(faces),
                         "face_cov_min": min(face_cov) if face_cov else "",
                         "face_cov_mean": float(np.mean(face_cov)) if face_cov else "",
                         "faces_covered_90": sum(c >= 0.9 for c in face_cov),
                         "face_core_covered_90": sum(c >= 0.9 for c in core_cov),
                         "cover_without_faces": cover, "confidence_without_faces": confidence,
                         "found_without_faces": found_without, "ms_with_faces": ms})
            cov = f"{min(face_cov):.2f}/{np.mean(face_cov):.2f}" if face_cov else "-"
            print(f"{name:<40}{'yes' if aged else 'no':>5}{len(faces):>6}{cov:>19}{cover:7.3f}{confidence:6.2f}"
                  f"{found_without!s:>14}{ms:6.0f}", flush=True)
            if pictures is not None:
                _png(pictures / f"people_{name}_{'aged' if aged else 'clean'}.png", image, mask)
    faces_total = sum(r["faces"] for r in rows)
    covered = sum(r["faces_covered_90"] for r in rows)
    core = sum(r["face_core_covered_90"] for r in rows)
    found = sum(r["found_without_faces"] for r in rows)
    print(f"# detected face boxes covered >= 90 %: {covered}/{faces_total}, their central half: {core}/{faces_total}; "
          f"person found with no face given: "
          f"{found}/{len(rows)} photo versions (all show people)")
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"# wrote {out}")


def _png(path: Path, image: np.ndarray, mask: np.ndarray) -> None:
    """Photo | mask side by side, 8-bit (a benchmark picture, not a project output)."""
    h, w = image.shape[:2]
    mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    both = np.concatenate([image, np.repeat(mask[..., None], 3, axis=2)], axis=1)
    cv2.imwrite(str(path), cv2.cvtColor(np.clip(both * 255 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matte", action="store_true", help="also run the classical matte, both priors")
    parser.add_argument("--no-png", action="store_true", help="do not save mask/matte pictures")
    parser.add_argument("--people", action="store_true", help="real photos of people from bench/people.py")
    parser.add_argument("--out", default=None, help="CSV path (default bench/out/person[_people].csv)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out or ROOT / "bench" / "out" / ("person_people.csv" if args.people else "person.csv"))
    pictures = out.parent / "person"
    pictures.mkdir(parents=True, exist_ok=True)
    if args.people:
        run_people(out, None if args.no_png else pictures)
        return
    threshold, min_fraction = DEFAULTS["person_threshold"], DEFAULTS["person_min_fraction"]
    min_confidence = DEFAULTS["person_min_confidence"]
    segmenters = {name: PersonSegmenter(**kw) for name, kw in VARIANTS.items()}
    matters = {}
    if args.matte:
        matters = {prior: Matter({"backend": "classical", "person_prior": prior}, ROOT / "models")
                   for prior in ("segmenter", "faces")}
    rows: list[dict] = []
    print(f"{'scene':<30}{'variant':<9}{'faces':>6}{'face cov min/mean':>19}{'cover':>7}{'conf':>6}{'found':>7}"
          f"{'ms':>7}")
    for scene in scenes():
        image, faces, known = scene["image"], scene["faces"], scene["known"]
        for variant, seg in segmenters.items():
            segmenter_ms = []
            for _ in range(2):  # the second run is timed (first-call overheads excluded)
                start = time.perf_counter()
                mask = seg.person_mask(image, faces)
                segmenter_ms.append(1000 * (time.perf_counter() - start))
            scale = mask.shape[1] / image.shape[1]
            face_cov = [box_coverage(mask, box, scale, threshold) for box in known]
            cover = mask_coverage(mask, threshold)
            confidence = mask_confidence(mask, threshold)
            found = bool(faces) or (cover >= min_fraction and confidence >= min_confidence)
            row = {
                "scene": scene["name"], "variant": variant, "size": f"{image.shape[1]}x{image.shape[0]}",
                "has_person": scene["person"], "faces_given": len(faces), "known_faces": len(known),
                "face_cov_min": min(face_cov) if face_cov else "",
                "face_cov_mean": float(np.mean(face_cov)) if face_cov else "",
                "faces_covered_90": sum(c >= 0.9 for c in face_cov), "mask_cover": cover, "confidence": confidence,
                "person_found": found, "ms": segmenter_ms[-1],
            }
            rows.append(row)
            cov = f"{min(face_cov):.2f}/{np.mean(face_cov):.2f}" if face_cov else "-"
            print(f"{scene['name']:<30}{variant:<9}{len(faces):>6}{cov:>19}{cover:7.3f}{confidence:6.2f}{found!s:>7}"
                  f"{segmenter_ms[-1]:7.0f}", flush=True)
            if not args.no_png:
                _png(pictures / f"{scene['name']}_{variant}_mask.png", image, mask)
        for prior, matter in matters.items():
            result = matter.matte(image, faces)
            rows.append({"scene": scene["name"], "variant": f"matte_{prior}", "size": row["size"],
                         "has_person": scene["person"], "faces_given": len(faces), "known_faces": len(known),
                         "person_found": result.person_found, "mask_cover": float(result.alpha.mean()),
                         "ms": 1000 * result.seconds, "person_source": result.person_source})
            print(f"{scene['name']:<30}{'m:' + prior[:7]:<9}{len(faces):>6}{'':>19}{result.alpha.mean():7.3f}{'':>6}"
                  f"{result.person_found!s:>7}{1000 * result.seconds:7.0f}  ({result.person_source}, mean alpha)",
                  flush=True)
            if not args.no_png:
                _png(pictures / f"{scene['name']}_matte_{prior}.png", image, result.alpha)
    for variant in [*VARIANTS, *(f"matte_{p}" for p in matters)]:
        mine = [r for r in rows if r["variant"] == variant]
        people = [r for r in mine if r["has_person"]]
        empty = [r for r in mine if not r["has_person"]]
        covered = sum(r.get("faces_covered_90", 0) for r in people)
        known = sum(r["known_faces"] for r in people)
        print(f"# {variant:<16} people found {sum(r['person_found'] for r in people)}/{len(people)}; "
              f"no-person photos called person {sum(r['person_found'] for r in empty)}/{len(empty)}"
              + (f"; faces covered >= 90 %: {covered}/{known}" if not variant.startswith("matte") else ""))
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"# wrote {out}" + ("" if args.no_png else f" and pictures in {pictures}"))


if __name__ == "__main__":
    main()
