"""Regenerate the bundled demo archive in demo/ (deterministic): `python demo/make_demo.py`.

Builds a handful of "old scans" from public-domain images shipped with scikit-image, aged with
`photoarchive.synthetic.aged_print`, plus the awkward cases an archive has: a re-scan near-duplicate,
a byte-identical copy, the same file name in two folders, a name with a space and non-ASCII letters,
TIFF/PNG/JPEG, a ZIP with a nested folder and a metadata CSV. See demo/README.md for what each tests.

After writing, it checks its own promises (perceptual-hash distances, a detectable frontal face) and
exits non-zero if one does not hold.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import shutil
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

DEMO = Path(__file__).resolve().parent
sys.path.insert(0, str(DEMO.parent))  # run from a checkout without installing the package

from photoarchive.imageio import encode_image, to_integer  # noqa: E402
from photoarchive.synthetic import aged_print  # noqa: E402

logger = logging.getLogger("make_demo")

ZIP_NAME = "box_1962.zip"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member dates keep the ZIP byte-for-byte reproducible
NEAR_DUP_MAX = 6  # the re-scan pair must be at most this far apart (64-bit pHash Hamming distance)
DISTINCT_MIN = 14  # every other pair at least this far


def _f(img: np.ndarray) -> np.ndarray:
    """uint8 skimage data -> float32 in [0, 1]."""
    return img.astype(np.float32) / 255.0


def _resize(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    f = long_side / max(h, w)
    size = (round(w * f), round(h * f))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)


def _border(img: np.ndarray, frac: float, paper: float = 0.96) -> np.ndarray:
    """White print margin of `frac` × long side around the picture."""
    h, w = img.shape[:2]
    b = round(max(h, w) * frac)
    out = np.full((h + 2 * b, w + 2 * b, 3), paper, np.float32)
    out[b : b + h, b : b + w] = img if img.ndim == 3 else img[:, :, None]
    return out


def _gray(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


def _jpeg(img: np.ndarray, quality: int) -> bytes:
    return encode_image(img, ".jpg", jpeg_quality=quality)


def _write(rel: str, payload: bytes) -> None:
    path = DEMO / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    logger.info("wrote %-40s %7d bytes", rel, len(payload))


def build() -> dict[str, bytes]:
    """Make every demo image; returns {path relative to demo/ (zip members as zip/...): encoded bytes}."""
    files: dict[str, bytes] = {}

    # Black-and-white studio portrait, sepia with age; the face is large and frontal.
    astro = _f(data.astronaut())
    portrait = _resize(_border(_gray(astro[0:340, 110:370]), 0.04), 860)
    files["family/Großmutter 1951.jpg"] = _jpeg(aged_print(portrait, 1951, strength=1.0), 88)

    # A colour snapshot of the cat, and a second scan of the same print: tighter crop, smaller,
    # a touch darker, lower JPEG quality.
    cat = _resize(_border(_f(data.chelsea()), 0.03), 900)
    cat_print = aged_print(cat, 1968, strength=0.9)
    files["family/img001.jpg"] = _jpeg(cat_print, 90)
    h, w = cat_print.shape[:2]
    rescan = cat_print[round(0.015 * h) : h - round(0.02 * h), round(0.02 * w) : w - round(0.01 * w)]
    rescan = np.clip(rescan * 0.96, 0.0, 1.0) ** np.float32(1.05)
    files["family/img001_rescan.jpg"] = _jpeg(_resize(rescan, 680), 78)

    # Badly damaged colour print (very faded, soft, dusty): the one a person should look at.
    coffee = _resize(_f(data.coffee()), 640)
    files["family/coffee_damaged.png"] = encode_image(aged_print(coffee, 1974, strength=2.2), ".png")

    # A handwritten page (document scan), same file name as the cat photo in family/.
    page = _resize(_border(_f(data.text()), 0.05, paper=0.93), 800)
    files["documents/img001.jpg"] = _jpeg(aged_print(page, 1931, strength=1.0), 88)

    # The photographer, as an archival-style 16-bit RGB TIFF. Deflate, not imageio's LZW: LZW grows on
    # grainy 16-bit data (1.9 MB against 1.4 MB), and a second TIFF compression exercises the reader.
    camera = _resize(_border(_f(data.camera()), 0.03), 512)
    bgr16 = to_integer(aged_print(camera, 1975, strength=1.1), 16)[:, :, ::-1]
    ok, enc = cv2.imencode(".tif", np.ascontiguousarray(bgr16), [cv2.IMWRITE_TIFF_COMPRESSION, 8])
    if not ok:
        raise RuntimeError("OpenCV could not encode the demo TIFF")
    files["documents/camera_1975.tif"] = enc.tobytes()

    # Two scans inside a ZIP: a mirrored, wider colour portrait (face) and a close-up of the cat in B&W.
    beach = _resize(_border(astro[:, ::-1], 0.05), 760)
    files["zip/box/1962/beach_1962.jpg"] = _jpeg(aged_print(beach, 1962, strength=1.2), 86)
    cat_face = _resize(_gray(_f(data.chelsea())[20:260, 100:360]), 620)
    files["zip/box/1962/cat_1962.jpg"] = _jpeg(aged_print(cat_face, 19621, strength=1.0), 86)
    return files


METADATA = [
    # file, date, title, description, people, archive_id
    (
        "family/Großmutter 1951.jpg",
        "1951",
        "Großmutter im Atelier",
        "Porträt, Fotostudio Weiß in Kärnten – Abzug auf Barytpapier",
        "Anna Müller",
        "PA-1951-001",
    ),
    ("family/img001.jpg", "1968", "Minka", 'Die Katze auf dem „guten" Sofa, Graz', "", "PA-1968-014"),
    (
        "family/coffee_damaged.png",
        "1974-03-02",
        "Kaffeetasse",
        "Wasserschaden; stark verblasst",
        "",
        "PA-1974-007",
    ),
    (
        "documents/img001.jpg",
        "",
        "Notizen",
        "Handschrift, Seite 1 (undatiert)",
        "José Núñez; Zoë Ødegård",
        "PA-DOC-0001",
    ),
    (
        "documents/camera_1975.tif",
        "1975",
        "Der Fotograf",
        "Mann mit Kamera im Park",
        "Łukasz Kowalski",
        "PA-1975-003",
    ),
    (
        f"{ZIP_NAME}/box/1962/beach_1962.jpg",
        "1962-07-14",
        "Am Strand",
        "Urlaub an der Adria, 14. Juli 1962",
        "Anna Müller; François Dupont",
        "PA-1962-021",
    ),
    (f"{ZIP_NAME}/box/1962/cat_1962.jpg", "1962", "Minka als Kätzchen", "", "", "PA-1962-022"),
]


def write(files: dict[str, bytes]) -> None:
    """Write images, the byte-identical copy, the ZIP and metadata.csv into demo/."""
    for rel, payload in files.items():
        if not rel.startswith("zip/"):
            _write(rel, payload)
    # A byte-for-byte copy filed elsewhere (as happens when a box is scanned twice into two folders).
    dst = DEMO / "unsorted" / "grandmother_copy.jpg"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEMO / "family" / "Großmutter 1951.jpg", dst)
    logger.info("copied %-39s %7d bytes", dst.relative_to(DEMO), dst.stat().st_size)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder in ("box/", "box/1962/"):
            zf.writestr(zipfile.ZipInfo(folder, ZIP_TIME), b"")
        for rel, payload in sorted(files.items()):
            if rel.startswith("zip/"):
                info = zipfile.ZipInfo(rel.removeprefix("zip/"), ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, payload)
    _write(ZIP_NAME, buf.getvalue())

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "date", "title", "description", "people", "archive_id"])
    writer.writerows(METADATA)
    _write("metadata.csv", out.getvalue().encode("utf-8"))


def _decode(payload: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(payload)) as im:
        return np.asarray(im.convert("RGB"))


def _phash(rgb: np.ndarray) -> int:
    import imagehash

    return int(str(imagehash.phash(Image.fromarray(rgb))), 16)


def check(files: dict[str, bytes]) -> list[str]:
    """Verify the demo's promises; returns a list of failures (empty when all hold)."""
    failures: list[str] = []
    images = {rel: _decode(p) for rel, p in files.items()}

    hashes = {rel: _phash(img) for rel, img in images.items()}
    near = ("family/img001.jpg", "family/img001_rescan.jpg")
    for a, b in itertools.combinations(sorted(hashes), 2):
        d = bin(hashes[a] ^ hashes[b]).count("1")
        if {a, b} == set(near):
            logger.info("pHash distance %s <-> %s: %d (near-duplicate pair)", a, b, d)
            if d > NEAR_DUP_MAX:
                failures.append(f"re-scan pair {a} / {b} is {d} bits apart (> {NEAR_DUP_MAX})")
        elif d < DISTINCT_MIN:
            failures.append(f"{a} and {b} are only {d} bits apart (< {DISTINCT_MIN})")
    others = [
        bin(hashes[a] ^ hashes[b]).count("1")
        for a, b in itertools.combinations(sorted(hashes), 2)
        if {a, b} != set(near)
    ]
    logger.info("smallest pHash distance between distinct photos: %d", min(others))
    if images[near[0]].size <= images[near[1]].size:
        failures.append("the canonical re-scan (family/img001.jpg) must be the larger image")
    sha = {hashlib.sha256(files[r]).hexdigest() for r in near}
    if len(sha) != 2:
        failures.append("re-scan pair has identical bytes")

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for rel, img in sorted(images.items()):
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        min_face = max(40, min(gray.shape) // 10)
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))
        boxes = [tuple(int(v) for v in f) for f in faces]
        logger.info("Haar faces in %-32s %dx%d: %s", rel, img.shape[1], img.shape[0], boxes or "none")
        if rel in ("family/Großmutter 1951.jpg", "zip/box/1962/beach_1962.jpg") and len(boxes) != 1:
            failures.append(f"{rel}: expected one frontal face, Haar found {len(boxes)}")
    return failures


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = build()
    write(files)
    failures = check(files)
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    logger.info("demo/ now holds %.2f MB", total / 1e6)
    if total > 5_000_000:
        failures.append(f"demo/ is {total / 1e6:.2f} MB, over the 5 MB budget")
    for f in failures:
        logger.error("CHECK FAILED: %s", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
