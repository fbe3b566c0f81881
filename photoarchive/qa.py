"""Per-photo triage: image metrics and the processed/review verdict.

Images are float32 H×W×3 RGB in [0, 1] (see CONTRIBUTING.md). The metric functions are also used by
`photoarchive.enhance` to measure a scan before choosing a preset.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import cv2
import numpy as np
from skimage.metrics import structural_similarity

log = logging.getLogger(__name__)

# Immerkær's noise kernel: the difference of two Laplacians, blind to constant and linear ramps.
# Its response to white noise of std σ has std 6σ (the kernel's L2 norm is 6).
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
# Variance of cv2.Laplacian (ksize=1, 4-neighbour kernel) applied to white noise of variance 1.
_LAPLACIAN_NOISE_GAIN = 20.0
# Noise and percentiles are read from at most this many pixels (a fixed stride, so deterministic).
_MAX_SAMPLES = 1_000_000
# Pixels used for the colour-cast estimate: mid-tones only (Lab L*), away from clipped black/white.
_CAST_L_RANGE = (10.0, 95.0)
# Gray world: radius (Lab a*b* units) of the dominant-tone cluster, and pixels it looks at.
_CAST_RADIUS = 10.0
_CAST_SAMPLES = 50_000
# White patch: L* at and above this is clipped paper or specular highlight, carrying no colour.
_CLIPPED_L = 99.0
CAST_METHODS = ("consensus", "grayworld", "whitepatch")
# Face SSIM compares standardised crops; ±4 σ spans practically all of a face's values.
_SSIM_RANGE = 8.0
# Noise σ (about 4/255) below which noise is not visible: the noise rule compares against at least this.
_NOISE_FLOOR = 0.015
# Colour statistics are taken on a copy shrunk to this long side.
_CAST_SIZE = 512

# sRGB (D65) ↔ CIE Lab, as OpenCV and skimage define it. RGB → XYZ rows are divided by the white
# point so that white maps to X = Y = Z = 1.
_RGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_RGB_TO_XYZN = (_RGB_TO_XYZ / _RGB_TO_XYZ.sum(axis=1, keepdims=True)).astype(np.float32)
_XYZN_TO_RGB = np.linalg.inv(_RGB_TO_XYZN.astype(np.float64)).astype(np.float32)
_LAB_DELTA = 6.0 / 29.0
# (fx, fy, fz, 1) → (L*, a*, b*) and back, as affine 3×4 matrices for cv2.transform.
_F_TO_LAB = np.array([[0, 116, 0, -16], [500, -500, 0, 0], [0, 200, -200, 0]], np.float32)
_LAB_TO_F = np.array(
    [[1 / 116, 1 / 500, 0, 16 / 116], [1 / 116, 0, 0, 16 / 116], [1 / 116, 0, -1 / 200, 16 / 116]], np.float32
)


def check_image(image: np.ndarray) -> np.ndarray:
    """Return `image` as contiguous float32 H×W×3, or raise a TypeError/ValueError that says why not."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(
            f"expected float RGB in [0, 1], got {image.dtype}: read images with photoarchive.imageio, "
            "which converts 8/16-bit files to float32"
        )
    return np.ascontiguousarray(image, dtype=np.float32)


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """sRGB float image → CIE Lab (L* 0–100, a*, b*), float32, exact to ~1e-5.

    OpenCV's float Lab conversion goes through lookup tables and is quantised (about 50 distinct L*
    values across a 0.30–0.40 gray ramp, up to 0.6 L* off); this one keeps 16-bit sources' levels.
    """
    rgb = check_image(image)
    lin = cv2.pow((np.maximum(rgb, 0.0) + np.float32(0.055)) * np.float32(1 / 1.055), 2.4)
    dark = rgb <= 0.04045
    lin[dark] = rgb[dark] * np.float32(1 / 12.92)
    xyz = cv2.transform(lin, _RGB_TO_XYZN)
    f = cv2.pow(np.maximum(xyz, 0.0), 1 / 3)
    small = xyz <= _LAB_DELTA**3
    f[small] = xyz[small] * np.float32(1 / (3 * _LAB_DELTA**2)) + np.float32(4 / 29)
    return cv2.transform(f, _F_TO_LAB)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab → sRGB float32, inverse of `rgb_to_lab`; out-of-gamut values are not clipped above 1."""
    f = cv2.transform(np.ascontiguousarray(lab, dtype=np.float32), _LAB_TO_F)
    xyz = f * f * f
    small = f <= _LAB_DELTA
    xyz[small] = (f[small] - np.float32(4 / 29)) * np.float32(3 * _LAB_DELTA**2)
    lin = np.maximum(cv2.transform(xyz, _XYZN_TO_RGB), 0.0)
    rgb = cv2.pow(lin, 1 / 2.4) * np.float32(1.055) - np.float32(0.055)
    dark = lin <= 0.0031308
    rgb[dark] = lin[dark] * np.float32(12.92)
    return rgb


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luminance (Rec. 601 weights, as OpenCV) of an RGB float image, H×W float32."""
    return cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY)


def shrink_long_side(gray: np.ndarray, size: int) -> np.ndarray:
    """Shrink a 2-D image (area filter) so that its long side is at most `size` pixels; never enlarge."""
    h, w = gray.shape[:2]
    scale = size / max(h, w)
    if scale >= 1.0:
        return gray
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    return cv2.resize(gray, (new_w, new_h), interpolation=cv2.INTER_AREA)


def _subsample(values: np.ndarray, max_samples: int = _MAX_SAMPLES) -> np.ndarray:
    """At most about `max_samples` rows of `values`, at a fixed stride (deterministic)."""
    return values[:: max(1, len(values) // max_samples)]


def _gray_noise_sigma(gray: np.ndarray) -> float:
    if min(gray.shape) < 3:
        return 0.0
    # The interior's response at the samples `_subsample` would take from it flattened, computed a band
    # of rows at a time (a full-size response is 4 bytes a pixel: 400 MB on a 100 MP scan). A 3×3
    # filter reads one row either side, so each band's interior values are the whole image's.
    height, inner_w = gray.shape[0], gray.shape[1] - 2
    count = (height - 2) * inner_w
    picks = np.arange(0, count, max(1, count // _MAX_SAMPLES))
    rows = picks // inner_w + 1  # image rows and columns of the samples
    cols = picks % inner_w + 1
    samples = np.empty(len(picks), np.float32)
    step = max(1, (1 << 20) // gray.shape[1])
    for start in range(1, height - 1, step):
        stop = min(start + step, height - 1)
        first, last = np.searchsorted(rows, (start, stop))
        if first == last:
            continue
        response = cv2.filter2D(gray[start - 1:stop + 1], cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)
        samples[first:last] = response[rows[first:last] - start + 1, cols[first:last]]
    mad = float(np.median(np.abs(samples)))
    return 1.4826 * mad / 6.0


def noise_sigma(image: np.ndarray) -> float:
    """Noise standard deviation of the luminance, in [0, 1] units, at full resolution.

    Median absolute response of Immerkær's second-difference kernel (robust to edges and gradients),
    scaled to σ for Gaussian noise. A clean image gives ~0, film grain ~0.01–0.03, a bad scan more.
    """
    return _gray_noise_sigma(to_gray(image))


def sharpness(image: np.ndarray, size: int = 512, noise_compensate: bool = True) -> float:
    """Variance of the Laplacian of a gray copy shrunk to long side `size`, in 8-bit units (×255²).

    Shrinking makes scans of any resolution comparable; smaller images are measured as they are
    (enlarging would only blur them). Around 100 and below reads as blurry, several hundred as sharp.
    With `noise_compensate` the Laplacian energy that the measured noise alone would give (20 σ²) is
    subtracted, so that denoising does not read as a loss of sharpness and grain does not read as
    detail. Never negative.
    """
    gray = shrink_long_side(to_gray(image), size) * 255.0
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    value = float(lap.astype(np.float64).var())
    if noise_compensate:
        value -= _LAPLACIAN_NOISE_GAIN * _gray_noise_sigma(gray) ** 2
    return max(value, 0.0)


def lab_thumbnail(image: np.ndarray, size: int = _CAST_SIZE) -> np.ndarray:
    """Lab (L* 0–100, a*, b*) pixels of a copy shrunk to long side <= `size`, as an N×3 float32 array.

    Colour statistics (means, bright percentiles) barely change with the shrink and cost far less.
    """
    image = check_image(image)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale < 1.0:
        new_size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
    return rgb_to_lab(image).reshape(-1, 3)


def _gray_world(lab: np.ndarray) -> np.ndarray:
    """(a*, b*) of the dominant tone: mean-shift from the mid-tone median towards the densest cluster.

    Plain gray world (the mean) is dragged by large coloured areas (an orange suit); the dominant
    cluster within `_CAST_RADIUS` is the tone most of the picture shares.
    """
    light = lab[:, 0]
    mask = (light >= _CAST_L_RANGE[0]) & (light <= _CAST_L_RANGE[1])
    ab = _subsample((lab[mask] if np.count_nonzero(mask) >= 16 else lab)[:, 1:], _CAST_SAMPLES)
    centre = np.median(ab, axis=0)
    for _ in range(5):
        near = ab[np.hypot(*(ab - centre).T) < _CAST_RADIUS]
        if len(near) < max(16, 0.05 * len(ab)):
            break
        centre = near.mean(axis=0)
    return centre


def _white_patch(lab: np.ndarray, white_percent: float) -> np.ndarray:
    """(a*, b*) of the brightest `white_percent` % of the pixels below clipping (the paper white)."""
    unclipped = lab[lab[:, 0] < _CLIPPED_L]
    if len(unclipped) < 16:
        unclipped = lab
    light = unclipped[:, 0]
    bright = unclipped[light >= np.percentile(light, 100.0 - white_percent)]
    return bright[:, 1:].astype(np.float64).mean(axis=0)


def lab_cast(image: np.ndarray, method: str = "consensus", white_percent: float = 2.0) -> tuple[float, float]:
    """Colour cast as Lab (a*, b*); (0, 0) is neutral, b* > 0 yellow, a* > 0 red/magenta.

    `grayworld`: the dominant mid-tone (see `_gray_world`); `whitepatch`: the brightest unclipped
    `white_percent` %; `consensus` (default): per channel, the smaller of the two when they agree in
    sign, else 0. The consensus only sees a cast that both the mid-tones and the highlights share,
    so a blue sky or a brown interior is not mistaken for a cast, while a yellowed print still is.
    """
    if method not in CAST_METHODS:
        raise ValueError(f"cast method must be one of {CAST_METHODS}, got {method!r}")
    lab = lab_thumbnail(image)
    if method == "grayworld":
        cast = _gray_world(lab)
    elif method == "whitepatch":
        cast = _white_patch(lab, white_percent)
    else:
        gray, white = _gray_world(lab), _white_patch(lab, white_percent)
        agree = np.sign(gray) == np.sign(white)
        cast = np.where(agree, np.sign(gray) * np.minimum(np.abs(gray), np.abs(white)), 0.0)
    return float(cast[0]), float(cast[1])


def colour_cast(image: np.ndarray, method: str = "consensus", white_percent: float = 2.0) -> float:
    """Distance of the cast (see `lab_cast`) from neutral, in Lab units (≈2 barely visible, >10 strong)."""
    a, b = lab_cast(image, method, white_percent)
    return math.hypot(a, b)


def face_ssim(before_face: np.ndarray, after_face: np.ndarray, size: int = 64) -> float:
    """Structural similarity of two face crops, gray, both resized to size×size (1.0 = identical).

    At low resolution SSIM ignores restored skin texture and grain and reacts to changed structure
    (eyes, mouth, face shape), which is what would make a restored face look like another person.
    Each crop is standardised (zero mean, unit variance) first, so the brightness and contrast that
    the enhance stage changes on purpose do not count as a difference.
    """
    if size < 7:
        raise ValueError(f"face_ssim size must be at least 7 (the SSIM window), got {size}")
    crops = []
    for face in (before_face, after_face):
        gray = cv2.resize(to_gray(face), (size, size), interpolation=cv2.INTER_AREA).astype(np.float64)
        crops.append((gray - gray.mean()) / max(float(gray.std()), 1e-3))
    return float(structural_similarity(crops[0], crops[1], data_range=_SSIM_RANGE))


def face_detail(face_crop: np.ndarray, size: int = 128) -> float:
    """Mid-frequency detail of a face crop: variance of the Laplacian of a gray copy at size×size.

    At 128 px across a face, film grain is averaged away while eyes, brows, lips and hair lines
    remain; a restorer that smooths a face into a plastic mask loses most of this.
    """
    gray = cv2.resize(to_gray(face_crop), (size, size), interpolation=cv2.INTER_AREA) * 255.0
    return float(cv2.Laplacian(gray, cv2.CV_32F, ksize=1).astype(np.float64).var())


def face_crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """The image inside a face box (clipped), or None when under 8 px a side."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return image[y0:y1, x0:x1]


def _centre_inside(box: Sequence[float], other: Sequence[float]) -> bool:
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    return other[0] <= cx <= other[2] and other[1] <= cy <= other[3]


def unrestored_faces(image: np.ndarray, known: Sequence[Sequence[float]], min_score: float, min_px: float,
                     max_side: int = 1500) -> list[dict]:
    """A second opinion on the faces: dlib's HOG frontal-face detector (no model file, built into dlib).

    Returns the faces it finds (score ≥ ``min_score``, side ≥ ``min_px``) whose centre lies in none of the
    ``known`` boxes (the faces the pipeline restored or skipped on purpose, e.g. as too small), nor the other
    way round: a face the main detector may have missed. Runs on a copy capped at ``max_side``.
    """
    import dlib

    h, w = image.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    small = image if factor >= 1.0 else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    pixels = np.ascontiguousarray(np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8))
    rects, scores, _ = dlib.get_frontal_face_detector().run(pixels, 1, float(min_score))
    found = []
    for rect, score in zip(rects, scores, strict=True):
        box = [rect.left() / factor, rect.top() / factor, (rect.right() + 1) / factor, (rect.bottom() + 1) / factor]
        if min(box[2] - box[0], box[3] - box[1]) < min_px or score < min_score:
            continue
        if any(_centre_inside(box, k) or _centre_inside(k, box) for k in known):
            continue
        found.append({"box": [round(v, 1) for v in box], "score": round(float(score), 3)})
    return found


def largest_face_ratio(face_boxes: Sequence[Sequence[float]], shape: Sequence[int]) -> float:
    """Long side of the largest face box over the image's short side (0.0 without faces).

    `face_boxes` are (x0, y0, x1, y1) in image pixels, clipped to the image; `shape` is the image
    shape (H, W[, C]).
    """
    h, w = int(shape[0]), int(shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image shape must be positive, got {tuple(shape)}")
    best = 0.0
    for box in face_boxes:
        if len(box) != 4:
            raise ValueError(f"face box must be (x0, y0, x1, y1), got {box!r}")
        x0, y0, x1, y1 = (float(v) for v in box)
        bw = min(max(x1, 0.0), w) - min(max(x0, 0.0), w)
        bh = min(max(y1, 0.0), h) - min(max(y0, 0.0), h)
        best = max(best, bw, bh)
    return best / min(h, w)


QA_KEYS = (
    "min_face_ssim",
    "min_face_detail_ratio",
    "min_face_score",
    "min_sharpness_ratio",
    "min_face_ratio",
    "max_colour_cast",
    "max_noise_gain",
    "review_missing_face",
    "review_document_faces",
    "second_opinion_score",
)


def require_keys(cfg: dict, keys: Sequence[str], section: str) -> None:
    """Raise a ValueError naming the config keys that `cfg` (config[`section`]) lacks."""
    missing = [key for key in keys if key not in cfg]
    if missing:
        raise ValueError(
            f"config section '{section}' lacks {', '.join(missing)}: set them in config.yaml "
            "(config.schema.yaml gives the defaults)"
        )


def _number(metrics: dict, key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def measure_photo(original: np.ndarray, restored: np.ndarray, faces: Sequence[dict], restore_record: dict,
                  cfg: dict, embedder=None, skipped: Sequence[dict] = (), min_face_px: float = 40) -> dict:
    """QA metrics of one finished photo: the stamped master against the restored result.

    ``faces`` are the face records (box, score) the restorer worked on; ``restore_record`` is its
    record (errors, identity flags of the guard). With an ``embedder``
    (`photoarchive.identity.FaceEmbedder`) each face's identity distance master → result is measured
    with the landmarks found on the master. Per-face values are in ``face_checks``; the triage reads
    the worst of each. ``skipped`` are the detector's skipped candidates (too small, low score): with
    ``qa.second_opinion_score`` set, faces that dlib's HOG detector finds outside all of them and of
    ``faces`` (at least ``min_face_px``) are listed as ``unrestored_faces``.
    """
    boxes = [tuple(f["box"]) for f in faces]
    checks = []
    for index, record in enumerate(faces):
        before, after = face_crop(original, record["box"]), face_crop(restored, record["box"])
        check = {"index": index, "score": float(record.get("score", 1.0))}
        if before is not None:
            check["ssim"] = face_ssim(before, after, cfg["face_ssim_size"])
            detail_before = face_detail(before)
            check["detail_ratio"] = face_detail(after) / detail_before if detail_before > 1e-6 else None
            if embedder is not None:
                found = embedder.compare(original, restored, tuple(record["box"]))
                check["identity_distance"], check["shape_drift"] = float(found["distance"]), float(found["drift"])
        checks.append(check)

    def worst(key: str, pick):
        values = [c[key] for c in checks if c.get(key) is not None]
        return pick(values) if values else None

    return {
        "faces": len(boxes),
        "largest_face_ratio": largest_face_ratio(boxes, original.shape[:2]),
        "sharpness_before": sharpness(original, cfg["sharpness_size"]),
        "sharpness_after": sharpness(restored, cfg["sharpness_size"]),
        "noise_before": noise_sigma(original),
        "noise_after": noise_sigma(restored),
        "colour_cast_after": colour_cast(restored),
        "face_ssim": worst("ssim", min),
        "face_detail_ratio": worst("detail_ratio", min),
        "identity_distance": worst("identity_distance", max),
        "shape_drift": worst("shape_drift", max),
        "face_checks": checks,
        "faces_too_small": sum(1 for s in skipped if s.get("reason") == "too_small"),
        "unrestored_faces": (unrestored_faces(original, boxes + [tuple(s["box"]) for s in skipped],
                                              cfg["second_opinion_score"], min_face_px)
                             if cfg["second_opinion_score"] is not None else []),
        "restore_errors": list(restore_record.get("errors", [])),
        "identity_flags": list(restore_record.get("identity_flags", [])),
    }


def triage(metrics: dict, cfg: dict, identity: dict | None = None) -> tuple[str, list[str]]:
    """Verdict "processed" or "review" for one photo, with human-readable reasons.

    `metrics` keys (missing or None ones skip their rule): faces, largest_face_ratio, sharpness_before,
    sharpness_after, noise_before, noise_after, colour_cast_after, face_ssim (min over faces),
    face_detail_ratio (min), identity_distance (max), face_checks (per face: index, score,
    identity_distance, shape_drift), faces_too_small, unrestored_faces, restore_errors, identity_flags, is_document,
    person_found, tone_kept.
    `cfg` is config["qa"]; a threshold set to null disables its rule. `identity` is
    config["restore"]["identity"] (its ``review`` and ``drift_review`` thresholds). What is flagged is
    what a person must look at: a failed or doubtful face, a face that may have become someone else, a
    missed face, lost detail. Film grain kept from the scan is not a defect. A photo without faces (landscape,
    document) is processed like any other.
    """
    require_keys(cfg, QA_KEYS, "qa")
    reasons: list[str] = []
    faces = int(metrics.get("faces") or 0)
    checks = metrics.get("face_checks") or []

    for error in metrics.get("restore_errors") or []:
        reasons.append(f"restoration failed: {error}")

    reasons += list(metrics.get("identity_flags") or [])
    identity = identity or {}
    for check in checks:
        distance, drift = check.get("identity_distance"), check.get("shape_drift")
        if distance is not None and identity.get("review") is not None and distance > identity["review"]:
            reasons.append(f"face {check['index']}: identity distance {distance:.2f} from the scan > "
                           f"{identity['review']:.2f}: the restored face may be someone else")
        if drift is not None and identity.get("drift_review") is not None and drift > identity["drift_review"]:
            reasons.append(f"face {check['index']}: shape drift {drift:.2f} % of the face > "
                           f"{identity['drift_review']:.2f} %: the features of the restored face moved")

    min_score = cfg["min_face_score"]
    if min_score is not None:
        for check in checks:
            if check.get("score") is not None and check["score"] < min_score:
                reasons.append(f"face {check['index']}: detection score {check['score']:.2f} < {min_score:.2f}: "
                               "it may not be a face, yet it was restored")

    min_detail = cfg["min_face_detail_ratio"]
    detail = _number(metrics, "face_detail_ratio")
    if min_detail is not None and detail is not None and detail < min_detail:
        reasons.append(f"face detail fell to {detail:.2f} of the scan's (< {min_detail:.2f}): "
                       "a face was smoothed over")

    min_ssim = cfg["min_face_ssim"]
    ssim = _number(metrics, "face_ssim")
    if min_ssim is not None and ssim is not None and ssim < min_ssim:
        reasons.append(
            f"face similarity {ssim:.2f} < {min_ssim:.2f}: the restored face may not look like the original"
        )

    min_ratio = cfg["min_sharpness_ratio"]
    before, after = _number(metrics, "sharpness_before"), _number(metrics, "sharpness_after")
    if min_ratio is not None and before is not None and after is not None and before > 0:
        ratio = after / before
        if ratio < min_ratio:
            reasons.append(
                f"sharpness fell from {before:.0f} to {after:.0f} (ratio {ratio:.2f} < {min_ratio:.2f}): "
                "the result is softer than the scan"
            )

    min_face = cfg["min_face_ratio"]
    face_ratio = _number(metrics, "largest_face_ratio")
    if min_face is not None and faces > 0 and face_ratio is not None and face_ratio < min_face:
        reasons.append(
            f"largest face is {face_ratio:.3f} of the image's short side < {min_face:.3f}: "
            f"{faces} small face(s) were restored from very few pixels"
        )

    max_cast = cfg["max_colour_cast"]
    cast = _number(metrics, "colour_cast_after")
    if max_cast is not None and cast is not None and cast > max_cast and not metrics.get("tone_kept"):
        reasons.append(f"colour cast {cast:.1f} > {max_cast:.1f} after enhancement: colours still tinted")

    max_gain = cfg["max_noise_gain"]
    noise, noise_before = _number(metrics, "noise_after"), _number(metrics, "noise_before")
    if max_gain is not None and noise is not None and noise_before is not None:
        floor = max(noise_before, _NOISE_FLOOR)
        if noise > max_gain * floor:
            reasons.append(f"noise σ rose from {noise_before:.3f} to {noise:.3f} (×{noise / floor:.1f} > "
                           f"×{max_gain:.1f}): the pipeline added noise (grain kept from the scan does not count)")

    # A face found but too small to restore (faces.min_face_px) is not a missed face.
    if cfg["review_missing_face"] and metrics.get("person_found") and faces == 0 and not metrics.get("faces_too_small"):
        reasons.append("a person was detected but no face (0 faces): the face may be missed or unrestored")
    if cfg["review_missing_face"]:
        for face in metrics.get("unrestored_faces") or []:
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            reasons.append(f"a second face detector (dlib HOG, score {face['score']:.2f}) sees a face at ({box}) "
                           "that was not restored: it may have been missed")

    if cfg["review_document_faces"] and metrics.get("is_document") and faces > 0:
        reasons.append(f"document with {faces} restored face(s): an ID photo must keep its exact look")

    if reasons:
        log.debug("review: %s", "; ".join(reasons))
        return "review", reasons
    if faces == 0:
        return "processed", ["all checks passed (no faces: landscape or document)"]
    return "processed", [f"all checks passed ({faces} face(s))"]
