"""Synthetic "old print" scans: an ageing filter and a benchmark archive generator.

`aged_print` turns a clean photo into something that looks like a scan of an old print (yellowed, faded,
soft, grainy, dusty, scratched, vignetted). `synthetic_archive` writes a folder of such scans made from the
public-domain images bundled with scikit-image, for benchmarks and tests; nothing is downloaded.

Pixels follow the package convention: float32, H×W×3, RGB, values in [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from photoarchive.imageio import encode_image

logger = logging.getLogger(__name__)

# Face box (x0, y0, x1, y1) of Eileen Collins in skimage.data.astronaut() (512×512), from OpenCV's
# frontal-face Haar cascade (177, 66, 95×95), widened by a margin so crops keep the whole head.
ASTRONAUT_FACE_BOX = (150.0, 40.0, 300.0, 190.0)

# Paper tone of a yellowed print at strength 1: multiplies R, G, B.
_PAPER_TONE = np.array([1.0, 0.92, 0.74], dtype=np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Sources for synthetic_archive: skimage.data function names.
_FACE_SOURCES = ("astronaut",)
_PLAIN_SOURCES = ("camera", "text", "page", "coffee", "chelsea")
_DOCUMENTS = ("text", "page")  # never mirrored
# Perceptual-hash Hamming distance under which two generated scans count as too alike (benchmarks want
# distinct photos; dedup thresholds are typically 6-10 on a 64-bit pHash).
_MIN_PHASH_DISTANCE = 14
_MAX_TRIES = 25


def _as_rgb_float(image: np.ndarray) -> np.ndarray:
    """Return a float32 H×W×3 copy of `image` (gray H×W or H×W×1 becomes three equal channels)."""
    arr = np.asarray(image)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(
            f"expected float pixels in [0, 1], got dtype {arr.dtype}; "
            "convert with photoarchive.imageio (or divide by 255) first"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an H×W gray or H×W×3 RGB image, got shape {arr.shape}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"image too small: {arr.shape}")
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency random field in about [-1, 1], H×W float32 (uneven fading, stains)."""
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    small = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def surface_marks(rng: np.random.Generator, h: int, w: int, strength: float = 1.0, scale: float = 1.0,
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The dust specks, fibres and scratches of `aged_print`: (signed H×W mask, >0 bright marks, <0 dark;
    {"dust": specks, "scratch": fibres and scratches} as H×W bool masks of the marks over 15 % opacity)."""
    kinds = {"dust": np.zeros((h, w), np.float32), "scratch": np.zeros((h, w), np.float32)}
    marks = _draw_dust(rng, h, w, strength, scale, kinds)
    return marks, {name: layer > 0.15 for name, layer in kinds.items()}


def _draw_dust(rng: np.random.Generator, h: int, w: int, strength: float, scale: float,
               kinds: dict[str, np.ndarray]) -> np.ndarray:
    """Dust specks, fibres and scratches as a signed H×W mask: >0 bright marks, <0 dark marks; each mark
    also drawn into its layer of `kinds` ("dust", "scratch")."""
    bright = np.zeros((h, w), np.float32)
    dark = np.zeros((h, w), np.float32)
    area = h * w / (800.0 * 600.0)
    n_specks = int(round(strength * rng.uniform(25, 60) * area))
    for _ in range(n_specks):
        target = bright if rng.random() < 0.7 else dark
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = max(1, int(round(rng.uniform(0.5, 2.5) * scale)))
        value = float(rng.uniform(0.5, 1.0))
        cv2.circle(target, center, radius, value, -1, cv2.LINE_AA)
        cv2.circle(kinds["dust"], center, radius, value, -1, cv2.LINE_AA)
    n_fibres = int(round(strength * rng.uniform(1, 4) * area))
    for _ in range(n_fibres):
        target = bright if rng.random() < 0.5 else dark
        start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        steps = rng.normal(0.0, 6.0 * scale, size=(6, 2)).cumsum(axis=0)
        pts = np.round(np.vstack([start, start + steps])).astype(np.int32)
        value = float(rng.uniform(0.4, 0.8))
        cv2.polylines(target, [pts], False, value, 1, cv2.LINE_AA)
        cv2.polylines(kinds["scratch"], [pts], False, value, 1, cv2.LINE_AA)
    n_scratches = int(round(strength * rng.uniform(1, 3.5)))
    thickness = max(1, int(round(scale)))
    for _ in range(n_scratches):
        # Mostly long, gently curving near-vertical lines, as a print drawn across grit leaves them.
        length = rng.uniform(0.3, 0.9) * h
        x = rng.uniform(0.05, 0.95) * w
        y0 = rng.uniform(0, h - length)
        ys = np.linspace(y0, y0 + length, 10)
        xs = x + np.cumsum(rng.normal(0.0, 0.004 * w, size=10)) + rng.uniform(-0.1, 0.1) * (ys - y0)
        pts = np.round(np.stack([xs, ys], axis=1)).astype(np.int32)
        value = float(rng.uniform(0.35, 0.8))
        cv2.polylines(bright, [pts], False, value, thickness, cv2.LINE_AA)
        cv2.polylines(kinds["scratch"], [pts], False, value, thickness, cv2.LINE_AA)
    return np.clip(bright, 0, 1) - np.clip(dark, 0, 1)


def aged_print(image: np.ndarray, seed: int, *, strength: float = 1.0) -> np.ndarray:
    """Make a clean photo look like a scan of an old print; deterministic for a given `seed`.

    Applies, scaled by `strength` (0 = unchanged, 1 = typical, 2 = badly damaged): loss of saturation,
    fading (lower contrast, lifted blacks, dimmer whites), a yellow/sepia paper cast, film grain, blur,
    uneven fading and vignetting, dust specks, fibres and a few scratches. Gray H×W input is accepted;
    the result is always float32 H×W×3 RGB in [0, 1].
    """
    return aged_print_marked(image, seed, strength=strength)[0]


def aged_print_marked(image: np.ndarray, seed: int, *, strength: float = 1.0,
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(`aged_print` of `image`, the same print before its surface marks, {scratch, dust, crease: H×W
    bool mask of the marks at over 15 % opacity}): an old print with the ground truth of its damage."""
    if not np.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be a finite number >= 0, got {strength}")
    img = _as_rgb_float(image)
    if strength == 0:
        return img, img, {name: np.zeros(img.shape[:2], bool) for name in ("scratch", "dust", "crease")}
    rng = np.random.default_rng(seed)
    s = float(strength)
    h, w = img.shape[:2]
    scale = max(h, w) / 800.0  # size-dependent effects are tuned for an 800 px long side

    # Dyes fade: less saturation, lower contrast, lifted blacks, dimmer whites.
    gray = img @ _LUMA
    desat = min(1.0, s * rng.uniform(0.2, 0.45))
    out = img + desat * (gray[:, :, None] - img)
    lift = min(0.45, s * rng.uniform(0.06, 0.12))
    drop = min(0.3, s * rng.uniform(0.04, 0.09))
    out = lift + (1.0 - lift - drop) * out

    # Paper and binder yellow: a per-channel tint (blue suffers most), slightly different per print.
    tone = _PAPER_TONE * rng.uniform(0.97, 1.03, size=3).astype(np.float32)
    tone[0] = 1.0
    out = out * tone**s

    # Film grain (luminance, a little chroma), clumped slightly, before the softening of print and scan.
    grain_sigma = s * rng.uniform(0.015, 0.03)
    grain = rng.standard_normal((h, w), dtype=np.float32)
    chroma = rng.standard_normal((h, w, 3), dtype=np.float32) * 0.3
    grain = grain[:, :, None] + chroma
    grain = cv2.GaussianBlur(grain, (0, 0), sigmaX=0.6 * max(scale, 0.5))
    out = out + grain_sigma * grain

    # Soft focus of the old lens, the print and the scanner.
    sigma = s * rng.uniform(0.7, 1.4) * scale
    if sigma > 0.1:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=sigma)

    # Uneven fading (brownish blotches) and a vignette with a slightly off-centre middle.
    blotch = _smooth_field(rng, h, w, cells=5) * (0.04 * s)
    out = out * (1.0 - blotch[:, :, None] * np.array([0.3, 0.6, 1.0], np.float32))
    cy = h * (0.5 + rng.uniform(-0.06, 0.06))
    cx = w * (0.5 + rng.uniform(-0.06, 0.06))
    yy = ((np.arange(h, dtype=np.float32) - cy) / (h / 2.0)) ** 2
    xx = ((np.arange(w, dtype=np.float32) - cx) / (w / 2.0)) ** 2
    r2 = yy[:, None] + xx[None, :]
    vignette = min(0.6, s * rng.uniform(0.12, 0.25))
    out = out * (1.0 - vignette * np.clip(r2 / 2.0, 0.0, 1.0))[:, :, None]

    # Dust and scratches sit on the surface: sharp, bright (light-scattering) or dark.
    marks, truth = surface_marks(rng, h, w, s, scale)
    unmarked = np.clip(out, 0.0, 1.0).astype(np.float32)
    bright = np.clip(marks, 0, 1)[:, :, None]
    dark = np.clip(-marks, 0, 1)[:, :, None]
    out = out * (1.0 - bright) + 0.95 * tone * bright
    out = out * (1.0 - 0.85 * dark)
    truth["crease"] = np.zeros((h, w), bool)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False), unmarked, truth


# ---------------------------------------------------------------------------------------------------------
# Benchmark archive


def _skimage_sources(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load the named skimage.data images as float32 RGB (gray ones stay H×W)."""
    from skimage import data

    out: dict[str, np.ndarray] = {}
    for name in names:
        loader: Callable[[], np.ndarray] = getattr(data, name)
        arr = loader()
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        out[name] = arr.astype(np.float32) / 255.0
    return out


def _random_crop_box(
    rng: np.random.Generator,
    h: int,
    w: int,
    keep: tuple[float, float, float, float] | None,
) -> tuple[int, int, int, int]:
    """A random crop (x0, y0, x1, y1) of 50-100 % per side that contains the `keep` box, if given."""
    cw = int(w * rng.uniform(0.5, 1.0))
    ch = int(h * rng.uniform(0.5, 1.0))
    lo_x, hi_x, lo_y, hi_y = 0, w - cw, 0, h - ch
    if keep is not None:
        kx0, ky0, kx1, ky1 = keep
        cw = max(cw, int(np.ceil(kx1 - kx0)))
        ch = max(ch, int(np.ceil(ky1 - ky0)))
        lo_x, hi_x = max(0, int(np.ceil(kx1)) - cw), min(int(kx0), w - cw)
        lo_y, hi_y = max(0, int(np.ceil(ky1)) - ch), min(int(ky0), h - ch)
    x0 = int(rng.integers(lo_x, max(lo_x, hi_x) + 1))
    y0 = int(rng.integers(lo_y, max(lo_y, hi_y) + 1))
    return x0, y0, x0 + cw, y0 + ch


def _add_border(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Surround the picture with the white margin of a print (sometimes none)."""
    if rng.random() < 0.4:
        return img
    h, w = img.shape[:2]
    b = int(round(max(h, w) * rng.uniform(0.02, 0.07)))
    paper = np.float32(rng.uniform(0.9, 1.0))
    shape = (h + 2 * b, w + 2 * b) + img.shape[2:]
    out = np.full(shape, paper, np.float32)
    out[b : b + h, b : b + w] = img
    return out


def _variant(src: np.ndarray, rng: np.random.Generator, keep_face: bool, may_flip: bool) -> np.ndarray:
    """One varied print of `src`: crop, optional flip and tone change, border, resize, ageing."""
    h, w = src.shape[:2]
    keep = ASTRONAUT_FACE_BOX if keep_face else None
    x0, y0, x1, y1 = _random_crop_box(rng, h, w, keep)
    img = src[y0:y1, x0:x1]
    if rng.random() < 0.5 and may_flip:
        img = img[:, ::-1]
    if img.ndim == 3 and rng.random() < 0.3:
        img = img @ _LUMA  # a black-and-white print of a colour original
    img = np.clip(img, 0.0, 1.0) ** np.float32(rng.uniform(0.8, 1.25))
    img = _add_border(np.ascontiguousarray(img, dtype=np.float32), rng)
    long_side = int(rng.integers(600, 1201))
    ih, iw = img.shape[:2]
    f = long_side / max(ih, iw)
    size = (max(2, round(iw * f)), max(2, round(ih * f)))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    return aged_print(img, int(rng.integers(0, 2**31)), strength=float(rng.uniform(0.6, 1.4)))


def _phash(img: np.ndarray) -> int:
    """64-bit DCT perceptual hash of a float RGB image (same recipe as imagehash.phash)."""
    gray = img @ _LUMA
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small.astype(np.float32))[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def synthetic_archive(out_dir: Path, n: int, seed: int = 0) -> list[Path]:
    """Write `n` aged JPEG scans under `out_dir` (some in sub-folders) and return their paths.

    About 40 % are portraits made from skimage's astronaut (frontal face kept whole), the rest come
    from camera/text/page/coffee/chelsea. Each is a different crop, flip, tone and size (600-1200 px
    long side) and is regenerated until its perceptual hash is well away from every earlier scan, so a
    dedup step finds no near-duplicates. Image i depends only on `seed` and images 0..i-1.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out_dir = Path(out_dir)
    sources = _skimage_sources(_FACE_SOURCES + _PLAIN_SOURCES)
    hashes: list[int] = []
    paths: list[Path] = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        portrait = rng.random() < 0.4
        names = _FACE_SOURCES if portrait else _PLAIN_SOURCES
        name = names[int(rng.integers(0, len(names)))]
        for _ in range(_MAX_TRIES):
            img = _variant(sources[name], rng, keep_face=portrait, may_flip=name not in _DOCUMENTS)
            h = _phash(img)
            nearest = min((bin(h ^ other).count("1") for other in hashes), default=64)
            if nearest >= _MIN_PHASH_DISTANCE:
                break
        else:
            logger.warning("scan %d (%s): %d bits from an earlier scan after %d tries", i, name, nearest, _MAX_TRIES)
        hashes.append(h)
        r = rng.random()
        if r < 0.5:
            sub = Path()
        elif r < 0.8:
            sub = Path(f"box_{int(rng.integers(1, 4))}")
        else:
            sub = Path(f"box_{int(rng.integers(1, 4))}") / str(int(rng.integers(1935, 1985)))
        path = out_dir / sub / f"scan_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_image(img, ".jpg", jpeg_quality=int(rng.integers(82, 93))))
        paths.append(path)
        logger.debug("wrote %s (%s, %dx%d)", path, name, img.shape[1], img.shape[0])
    return paths


# ---------------------------------------------------------------------------------------------------
# Damage with known masks and toned prints (benchmarks and tests of photoarchive.repair / enhance)
# ---------------------------------------------------------------------------------------------------


def _curve(rng: np.random.Generator, h: int, w: int, length: float, bend: float) -> np.ndarray:
    """Points of a quadratic Bézier curve of about `length` px, sideways bend `bend` × length."""
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    angle = rng.uniform(0, np.pi)
    dx, dy = np.cos(angle) * length, np.sin(angle) * length
    p0, p2 = np.array([x0 - dx / 2, y0 - dy / 2]), np.array([x0 + dx / 2, y0 + dy / 2])
    p1 = (p0 + p2) / 2 + np.array([-dy, dx]) * bend
    t = np.linspace(0, 1, max(8, int(length / 4)))[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _stroke(h: int, w: int, points: np.ndarray, width: int) -> np.ndarray:
    """Coverage (0–1) of an anti-aliased polyline of `width` px, drawn at 4× and shrunk."""
    big = np.zeros((h * 4, w * 4), np.uint8)
    cv2.polylines(big, [np.round(points * 4).astype(np.int32)], False, 255, thickness=max(1, 4 * width),
                  lineType=cv2.LINE_AA)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def add_damage(image: np.ndarray, seed: int, *, scratches: int = 6, dust: int = 40, creases: int = 0,
               grain: float = 0.01, faint: float = 0.3) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(grainy clean, damaged, masks): `image` with film grain, then scratches, dust and creases of known masks.

    Scratches: width 1–4 px, straight to curved, any angle, bright (2/3) or dark, contrast 0.08–0.45
    (a share `faint` of them 0.05–0.10). Dust: specks of radius 1–4 px, bright or dark. Creases: a
    long fold across the picture, a bright ridge with a dark shadow beside it. Masks (H×W bool) are the
    pixels at least a quarter covered whose value changed by 0.03 or more (clipped damage is
    none). The grainy clean image is the reference a repair aims at.
    """
    rng = np.random.default_rng(seed)
    img = _as_rgb_float(image)
    h, w = img.shape[:2]
    clean = np.clip(img + rng.normal(0, grain, (h, w, 1)).astype(np.float32), 0, 1)
    out = clean.copy()
    masks = {name: np.zeros((h, w), bool) for name in ("scratch", "dust", "crease")}
    for _ in range(scratches):
        pts = _curve(rng, h, w, rng.uniform(0.15, 0.6) * min(h, w), rng.choice([0.0, 0.1, 0.25]))
        cover = _stroke(h, w, pts, int(rng.integers(1, 5)))
        contrast = rng.uniform(0.05, 0.10) if rng.random() < faint else rng.uniform(0.08, 0.45)
        sign = 1.0 if rng.random() < 2 / 3 else -1.0
        out = out + (sign * contrast * cover)[..., None]
        masks["scratch"] |= cover >= 0.25
    for _ in range(dust):
        layer = np.zeros((h, w), np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, 5)), int(rng.integers(1, 4)))
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        out = out + (sign * rng.uniform(0.2, 0.6) * layer)[..., None]
        masks["dust"] |= layer >= 0.25
    for _ in range(creases):
        pts = _curve(rng, h, w, 1.5 * max(h, w), 0.03)
        ridge = _stroke(h, w, pts, 2)
        shadow = _stroke(h, w, pts + np.array([3.0, 3.0]), 3)
        out = out + (0.35 * ridge - 0.25 * shadow * (1 - ridge))[..., None]
        masks["crease"] |= (ridge >= 0.25) | (shadow >= 0.25)
    out = np.clip(out, 0, 1).astype(np.float32)
    visible = np.abs(out - clean).max(axis=2) >= 0.03  # a dark scratch over black changes nothing: not damage
    masks["scratch"] &= ~masks["crease"]
    masks["dust"] &= ~(masks["crease"] | masks["scratch"])
    for mask in masks.values():
        mask &= visible
    return clean, out, masks


# Toning colours (Lab a*, b* at the mid-tones) of classic print toners.
TONERS = {"sepia": (8.0, 24.0), "selenium": (6.0, -3.0), "cyanotype": (-8.0, -30.0)}


def toned_print(image: np.ndarray, toner: str, paper_b: float = 4.0) -> np.ndarray:
    """A monochrome print of `image` toned with `toner` (`TONERS`): the chroma peaks in the mid-tones
    and fades towards paper white and deep black; the paper itself is slightly cream (`paper_b`)."""
    from photoarchive.qa import lab_to_rgb, rgb_to_lab

    img = _as_rgb_float(image)
    lab = rgb_to_lab(img)
    light = lab[..., 0]
    weight = np.clip(np.sin(np.pi * light / 100.0), 0, 1)
    a, b = TONERS[toner]
    lab[..., 1] = a * weight
    lab[..., 2] = b * weight + paper_b * (light / 100.0) ** 4
    return np.clip(lab_to_rgb(lab), 0, 1).astype(np.float32)
