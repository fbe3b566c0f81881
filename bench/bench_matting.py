"""Matting benchmark: composites with a known alpha, standard matting errors, time per megapixel.

The foreground is the person in scikit-image's ``astronaut`` (public domain, bundled: nothing is
downloaded), cut out with a hand-made soft alpha that has a blurred hair edge, thin semi-transparent
hair strands and a translucent scarf. It is composited over backgrounds that look like old photos:
paper grain, a sepia gradient with vignette, scratches and dust, a mottled studio backdrop, a real photo
(``chelsea``), and two whole-image sepia-toned, faded variants. The face box handed to the matting stage
is the one OpenCV's frontal-face Haar cascade finds in the 512×512 original, scaled.

Errors (as in Rhemann et al. 2009, "A perceptually motivated online benchmark for image matting"; our
implementation), over the whole image, alpha in [0, 1]:
  SAD   sum |α − α*| / 1000
  MSE   mean (α − α*)², printed ×1e3
  Grad  sum (|∇α| − |∇α*|)² / 1000, gradients by unit-norm first-order Gaussian derivatives (σ = 1.4)
  Conn  sum |φ(α) − φ(α*)| / 1000, connectivity to the largest common component (threshold step 0.1)

Usage (from the repo root)::

    NUMBA_CACHE_DIR=.numba_cache .venv/bin/python bench/bench_matting.py [--size 1024]
        [--model models/bshm.onnx] [--set key=value ...] [--sweep] [--large]

Prints a table (and the `uptime` load) and writes ``bench/out/matting.csv``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photoarchive.matting import DEFAULTS, Matter  # noqa: E402

logger = logging.getLogger("bench_matting")

# Haar-cascade face box of the astronaut in the 512×512 original (x0, y0, x1, y1).
FACE_BOX_512 = (177.0, 66.0, 272.0, 161.0)
HAIR_RGB = np.array([0.50, 0.38, 0.22], np.float32)
SCARF_RGB = np.array([0.62, 0.74, 0.88], np.float32)

# Parameter variants for --sweep (classical backend), each a dict of config["matting"] overrides.
SWEEP: dict[str, dict] = {
    "default": {},
    "no-cf": {"unknown_band_px": 0},
    "band3": {"unknown_band_px": 3},
    "band10": {"unknown_band_px": 10},
    "hair1x": {"hair_band_factor": 1.0},
    "hair3x": {"hair_band_factor": 3.0},
    "work256": {"work_side": 256},
    "work384": {"work_side": 384},
    "work640": {"work_side": 640},
    "iters2": {"grabcut_iters": 2},
    "iters3": {"grabcut_iters": 3},
    "iters4": {"grabcut_iters": 4},
    "matte512": {"matte_side": 512},
    "matte640": {"matte_side": 640},
    "matte768": {"matte_side": 768},
    "matte1024": {"matte_side": 1024},
    "eps1e-5": {"cf_epsilon": 1e-5},
    "gr2": {"guided_radius": 2},
    "gr8": {"guided_radius": 8},
    "geps1e-3": {"guided_eps": 1e-3},
    "geps1e-5": {"guided_eps": 1e-5},
}


# ------------------------------------------------------------------------------------------------
# Scene


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    field = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return field / max(1e-6, float(np.abs(field).max()))


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def make_foreground(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Return (F, alpha, face_box) at size×size: the astronaut with a soft hand-made matte."""
    rng = np.random.default_rng(seed)
    k = size / 512.0
    base = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    fg = np.clip(base, 0, 1)

    def pts(xy: list[tuple[float, float]]) -> np.ndarray:
        return np.round(np.array(xy) * k).astype(np.int32)

    # Body: suit, collar ring, neck, face and the helmet she holds (hard edges, anti-aliased), traced
    # by eye on the 512×512 original.
    body = np.zeros((size, size), np.float32)
    suit = [
        (105, 215),
        (62, 250),
        (35, 315),
        (20, 400),
        (14, 512),
        (300, 512),
        (300, 400),
        (340, 370),
        (362, 330),
        (350, 285),
        (318, 250),
        (290, 215),
    ]
    cv2.fillPoly(body, [pts(suit)], 1.0, lineType=cv2.LINE_AA)
    for centre, axes, angle in (((211, 222), (92, 68), 12), ((226, 115), (46, 50), 0), ((392, 462), (112, 118), 0)):
        cv2.ellipse(body, tuple(pts([centre])[0]), tuple(pts([axes])[0]), angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    cv2.rectangle(body, tuple(pts([(200, 140)])[0]), tuple(pts([(256, 200)])[0]), 1.0, -1)
    body = cv2.GaussianBlur(body, (0, 0), 0.6 * k)

    # Hair: an ellipse with a wide soft edge.
    hair_centre, hair_axes = (227.0, 74.0), (76.0, 60.0)
    hair = np.zeros((size, size), np.float32)
    cv2.ellipse(hair, tuple(pts([hair_centre])[0]), tuple(pts([hair_axes])[0]), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    hair = cv2.GaussianBlur(hair, (0, 0), 2.5 * k)
    cv2.ellipse(hair, tuple(pts([hair_centre])[0]), tuple(pts([(66, 52)])[0]), 0, 0, 360, 1.0, -1, cv2.LINE_AA)

    # Thin hair strands flying off the head, 1 px wide at any size, partly transparent.
    strands = np.zeros((size, size), np.float32)
    centre = np.array(hair_centre)
    for _ in range(70):
        ang = rng.uniform(-np.pi * 0.95, -np.pi * 0.05)  # upper half
        direction = np.array([np.cos(ang), np.sin(ang)])
        start = centre + direction * np.array(hair_axes) * 0.97
        length = rng.uniform(12, 40)
        bend = np.array([-direction[1], direction[0]]) * rng.uniform(-12, 12)
        curve = _bezier(start, start + direction * length / 2 + bend, start + direction * length)
        cv2.polylines(
            strands, [np.round(curve * k).astype(np.int32)], False, float(rng.uniform(0.35, 0.9)), 1, cv2.LINE_AA
        )
    hair = np.maximum(hair, strands)
    hair_zone = strands > 0
    fg[hair_zone] = HAIR_RGB + 0.06 * rng.standard_normal((int(hair_zone.sum()), 3)).astype(np.float32)
    person = np.maximum(body, hair)

    # Translucent scarf over the left shoulder, extending beyond the body.
    scarf = np.zeros((size, size), np.float32)
    cv2.fillPoly(
        scarf, [pts([(95, 245), (40, 262), (0, 330), (0, 392), (30, 340), (78, 295), (125, 262)])], 1.0, cv2.LINE_AA
    )
    ramp = np.clip(np.linspace(0.65, 0.3, size)[None, :], 0, 1).astype(np.float32)
    scarf = cv2.GaussianBlur(scarf, (0, 0), 1.0 * k) * ramp

    alpha = person + scarf * (1 - person)
    scarf_w = scarf * (1 - person)
    fg = (person[..., None] * fg + scarf_w[..., None] * SCARF_RGB) / np.maximum(alpha, 1e-6)[..., None]
    face = tuple(v * k for v in FACE_BOX_512)
    return np.clip(fg, 0, 1).astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32), face


def make_background(name: str, size: int, seed: int = 1) -> np.ndarray:
    """Old-photo-like backgrounds, size×size×3 float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if name in ("paper", "toned_paper"):
        tone = np.array([0.86, 0.80, 0.68], np.float32)
        blotch = 0.05 * _smooth_noise(rng, size, 6)
        grain = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 0.8) * 0.05
        return tone * (1 + blotch + grain)[..., None]
    if name == "sepia_gradient":
        top, bottom = np.array([0.80, 0.66, 0.46]), np.array([0.30, 0.20, 0.12])
        grad = (1 - yy)[..., None] * top + yy[..., None] * bottom
        vignette = 1 - 0.45 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.5
        return (grad * vignette[..., None]).astype(np.float32)
    if name == "scratched":
        bg = 0.55 + 0.08 * _smooth_noise(rng, size, 5)
        bg = np.repeat(bg[..., None], 3, axis=2) * np.array([1.0, 0.97, 0.9], np.float32)
        for _ in range(25):
            x = rng.uniform(0, size)
            pts = np.array([[x, 0], [x + rng.uniform(-0.1, 0.1) * size, size]], np.int32)
            cv2.polylines(
                bg,
                [pts],
                False,
                (0.95, 0.93, 0.88) if rng.random() < 0.7 else (0.15, 0.12, 0.1),
                max(1, size // 700),
                cv2.LINE_AA,
            )
        for _ in range(300):
            c = (int(rng.uniform(0, size)), int(rng.uniform(0, size)))
            v = 0.95 if rng.random() < 0.5 else 0.1
            cv2.circle(bg, c, int(rng.integers(1, max(2, size // 300))), (v, v, v), -1, cv2.LINE_AA)
        return bg.astype(np.float32)
    if name in ("studio", "toned_studio"):
        cloud = 0.5 * _smooth_noise(rng, size, 4) + 0.3 * _smooth_noise(rng, size, 12)
        base = np.array([0.42, 0.48, 0.55], np.float32)
        return (base * (1 + 0.35 * cloud)[..., None]).astype(np.float32)
    if name == "chelsea":
        cat = data.chelsea()
        side = min(cat.shape[:2])
        cat = cat[:side, :side]
        return cv2.resize(cat, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    raise ValueError(f"unknown background {name!r}")


BACKGROUNDS = ("paper", "sepia_gradient", "scratched", "studio", "chelsea", "toned_paper", "toned_studio")


def _tone(image: np.ndarray, seed: int = 2) -> np.ndarray:
    """Whole-photo ageing: monochrome sepia, faded contrast, film grain."""
    rng = np.random.default_rng(seed)
    luma = image @ np.array([0.299, 0.587, 0.114], np.float32)
    luma = 0.12 + 0.76 * luma + 0.02 * rng.standard_normal(luma.shape).astype(np.float32)
    return np.clip(luma[..., None] * np.array([1.0, 0.86, 0.66], np.float32) + 0.04, 0, 1).astype(np.float32)


def make_scene(background: str, size: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    fg, alpha, face = make_foreground(size)
    bg = np.clip(make_background(background, size), 0, 1)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    if background.startswith("toned_"):
        image = _tone(image)
    return np.clip(image, 0, 1).astype(np.float32), alpha, face


# ------------------------------------------------------------------------------------------------
# Metrics


def sad(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - gt).sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean((pred.astype(np.float64) - gt) ** 2))


def _grad_mag(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """Gradient magnitude with first-order Gaussian-derivative kernels scaled to unit L2 norm (the usual
    matting-benchmark convention, which makes Grad comparable with published numbers)."""
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2 * np.pi) * sigma * 1e-2))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dgauss = -x * gauss / sigma**2
    kx = np.outer(gauss, dgauss)
    kx /= np.sqrt((kx**2).sum())
    a = alpha.astype(np.float64)
    gx = cv2.filter2D(a, cv2.CV_64F, kx, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(a, cv2.CV_64F, kx.T, borderType=cv2.BORDER_REPLICATE)
    return np.hypot(gx, gy)


def gradient_error(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(((_grad_mag(pred) - _grad_mag(gt)) ** 2).sum() / 1000.0)


def connectivity_error(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> float:
    """For each pixel, the last threshold at which it is still in the largest component of both mattes."""
    pred = pred.astype(np.float64)
    gt = gt.astype(np.float64)
    level = np.full(pred.shape, -1.0)
    thresholds = np.arange(0.0, 1.0 + step / 2, step)
    for prev, thr in zip(thresholds[:-1], thresholds[1:], strict=True):
        both = ((pred >= thr) & (gt >= thr)).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        if n > 1:
            largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            omega = comp == largest
        else:
            omega = np.zeros(pred.shape, bool)
        newly_lost = (level < 0) & ~omega
        level[newly_lost] = prev
    level[level < 0] = 1.0
    d_pred = pred - level
    d_gt = gt - level
    phi_pred = 1.0 - d_pred * (d_pred >= 0.15)
    phi_gt = 1.0 - d_gt * (d_gt >= 0.15)
    return float(np.abs(phi_pred - phi_gt).sum() / 1000.0)


# ------------------------------------------------------------------------------------------------
# Runner


def _parse_sets(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in DEFAULTS:
            raise SystemExit(f"--set: unknown key {key!r}; known: {sorted(DEFAULTS)}")
        kind = type(DEFAULTS[key])
        out[key] = kind(float(value)) if kind in (int, float) else value
    return out


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="side of the square composites (default 1024)")
    parser.add_argument("--model", default=None, help="BSHM model file (.onnx/.pb); default config's if present")
    parser.add_argument("--set", nargs="*", default=[], help="classical overrides key=value")
    parser.add_argument("--sweep", nargs="*", default=None, help="run classical sweep variants (none: all)")
    parser.add_argument("--backgrounds", nargs="*", default=list(BACKGROUNDS))
    parser.add_argument("--large", action="store_true", help="also time one 6000×4000 scan per backend")
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "matting.csv"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    models_dir = ROOT / "models"
    overrides = _parse_sets(args.set)
    runs: list[tuple[str, dict]] = []
    if args.sweep is not None:
        names = args.sweep or list(SWEEP)
        runs += [(f"classical:{name}", {**overrides, **SWEEP[name], "backend": "classical"}) for name in names]
    else:
        runs.append(("classical", {**overrides, "backend": "classical"}))
    model = Path(args.model) if args.model else models_dir / "bshm.onnx"
    if model.is_file():
        runs.append(("bshm", {"backend": "bshm", "model": str(model.resolve())}))
    else:
        print(f"# bshm: no model file at {model}; skipped")

    print(f"# load before (uptime 1/5/15 min): {_load()}   cpus: {os.cpu_count()}")
    scenes = {name: make_scene(name, args.size) for name in args.backgrounds}
    rows: list[dict] = []
    header = f"{'run':<22}{'background':<16}{'SAD':>8}{'MSE e-3':>9}{'Grad':>8}{'Conn':>8}{'s':>7}{'s/MP':>7}"
    print(header)
    for label, cfg in runs:
        matter = Matter(cfg, models_dir)
        for name, (image, gt, face) in scenes.items():
            result = matter.matte(image, [face])
            mp = image.shape[0] * image.shape[1] / 1e6
            row = {
                "run": label,
                "backend": result.backend,
                "background": name,
                "size": f"{image.shape[1]}x{image.shape[0]}",
                "sad": sad(result.alpha, gt),
                "mse": mse(result.alpha, gt),
                "grad": gradient_error(result.alpha, gt),
                "conn": connectivity_error(result.alpha, gt),
                "seconds": result.seconds,
                "s_per_mp": result.seconds / mp,
                "load1": os.getloadavg()[0],
                "config": " ".join(f"{k}={v}" for k, v in cfg.items()),
            }
            rows.append(row)
            print(
                f"{label:<22}{name:<16}{row['sad']:8.2f}{row['mse'] * 1e3:9.2f}{row['grad']:8.2f}"
                f"{row['conn']:8.2f}{row['seconds']:7.2f}{row['s_per_mp']:7.2f}",
                flush=True,
            )
        mine = [r for r in rows if r["run"] == label]
        print(
            f"{label:<22}{'MEAN':<16}{np.mean([r['sad'] for r in mine]):8.2f}"
            f"{np.mean([r['mse'] for r in mine]) * 1e3:9.2f}{np.mean([r['grad'] for r in mine]):8.2f}"
            f"{np.mean([r['conn'] for r in mine]):8.2f}{np.mean([r['seconds'] for r in mine]):7.2f}"
            f"{np.mean([r['s_per_mp'] for r in mine]):7.2f}",
            flush=True,
        )
        if args.large:
            image, gt, face = make_scene("paper", 1024)
            big = cv2.resize(image, (6000, 4000), interpolation=cv2.INTER_CUBIC)
            scale_x, scale_y = 6000 / 1024, 4000 / 1024
            box = (face[0] * scale_x, face[1] * scale_y, face[2] * scale_x, face[3] * scale_y)
            start = time.perf_counter()
            result = matter.matte(np.clip(big, 0, 1), [box])
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "run": label,
                    "backend": result.backend,
                    "background": "large-paper",
                    "size": "6000x4000",
                    "sad": "",
                    "mse": "",
                    "grad": "",
                    "conn": "",
                    "seconds": seconds,
                    "s_per_mp": seconds / 24.0,
                    "load1": os.getloadavg()[0],
                    "config": "",
                }
            )
            print(f"{label:<22}{'6000x4000':<16}{'':>8}{'':>9}{'':>8}{'':>8}{seconds:7.2f}{seconds / 24:7.2f}")
    print(f"# load after (uptime 1/5/15 min): {_load()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"# wrote {out}")


if __name__ == "__main__":
    main()
