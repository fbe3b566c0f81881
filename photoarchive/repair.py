"""Damage repair of a scan: scratches, dust and specks, creases; filled so that grain and texture stay.

Images are float32 H×W×3 RGB in [0, 1] (see CONTRIBUTING.md).

Detection works on the luminance, in horizontal strips (bounded memory), at a threshold relative to
the scan's own grain:

1. two-sided line contrast: at 8 angles each pixel is compared with the pixels `max_width` + 1 px
   away on both sides; a bright mark is brighter than both (a dark one darker), less half their
   difference, so step edges and lines between two different areas give little;
2. z-score: that contrast divided by its local robust spread (median per 32-px tile), so the
   threshold follows the grain and texture around each pixel;
3. candidates: hysteresis (seeds at `seed_z`, grown to `grow_z`), plus faint lines found by averaging
   z along lines at 8 angles (`line_z`);
4. scratches: candidates closer than 2 px are joined, and a component counts when it is long
   (`min_length`), thin (`max_width`) and nearly straight (`max_bend`). A component too bent as a
   whole (two crossing scratches, a strongly curved one) is split by the direction of its pixels (45°
   windows of the angle that gave each pixel's contrast) and each piece judged the same way; one that
   yields more than two parallel pieces in a direction is a grid (brick joints, bars) and is dropped.
   A bent component is also taken apart into its unjoined strands (two close parallel scratches that the
   join made one component with each other or a nearby outline), each judged like a whole component
   but held to half the bend. Pieces and strands must also keep clear of an outline beside them (the
   slope within 4 px), not only under them.
   Dust: unjoined compact specks up to `dust_max_area`;
5. what is not damage is left alone by the company it keeps: a mark in a neighbourhood dense with
   other contrasty pixels (`density_max`: text, pinstripes, fabric, hair) or, for dust, with many
   other specks (`neighbours_max`: a star field) or with anything nearly as contrasty in the ring
   2–5 px around it (the end or a piece of a stroke, a letter, a branch), a mark along an object's
   outline (`edge_max`: the picture under it is steep), and dark lines unless `dark_factor` × longer and straighter
   (eyebrows, pen strokes). Inside face boxes the z-scores are divided by `face_factor`.

Creases (long, wider folds) are found the same way on a half-size copy, kept only when they are long
(`crease.min_length` of the short side).

Learned detector: with a `LearnedDetector` (the small U-Net of `photoarchive.models.damage_unet`, its
weights made here by `python -m photoarchive.damage_training`), scratches and dust are its probabilities
above a threshold set by `sensitivity` (0.8 for both at 50, see `learned_threshold`;
higher inside face boxes, by `face_factor`); creases are still found as above. Without weights the
classical detector runs, and the record says which ran.

Fill: Telea inpainting (OpenCV) of the image fills the damage with the surrounding tones and edges;
grain (the high-pass layer, clipped so that edges are not copied) is added from nearby undamaged pixels
at a fixed offset, so the fill has the grain of its surroundings rather than a smooth patch. Inside face
boxes thresholds are higher (only clear damage) and the fill is the same structure-keeping one.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from photoarchive.qa import check_image, require_keys

if TYPE_CHECKING:
    import torch

    from photoarchive.models.damage_unet import DamageUNet

log = logging.getLogger(__name__)

DAMAGE_TYPES = ("scratch", "dust", "crease")
# Colour of each damage type in the published `<name>_damage.png` (black: no damage).
DAMAGE_COLOURS = {"scratch": (1.0, 0.0, 0.0), "dust": (1.0, 1.0, 0.0), "crease": (0.0, 0.5, 1.0)}
REPAIR_KEYS = ("enabled", "types", "sensitivity", "max_width", "min_length", "dust_max_area", "seed_z",
               "grow_z", "line_z", "density_max", "edge_max", "max_bend", "dark_factor", "neighbours_max",
               "face_factor", "dilate", "strip_rows", "crease")
# Line-averaging kernels: length (px, on the half-size copy) and number of angles.
_LINE_LENGTH = 11
_LINE_ANGLES = 8
# Neighbourhood (px) over which candidate density and speck counts are taken.
_DENSITY_WINDOW = 61
_COUNT_WINDOW = 101
# A speck's ring (px from it) and how far (share of the speck's own contrast) the ring may stand out.
_RING_INNER, _RING_OUTER, _RING_SHARE = 2, 5, 0.5
# Fill grain: the high-pass of the image below this Gaussian sigma (px), clipped to this many robust sigmas.
_GRAIN_SIGMA, _GRAIN_CLIP = 1.0, 2.5
# A mark's own offset (how much it lightens or darkens what shows through it) is averaged along the mark
# over a line of this many px, at the best-fitting of this many angles.
_MARK_LENGTH, _MARK_ANGLES = 15, 16
# Rows of overlap between strips, so a component cut by a strip border is seen whole in one of them.
_STRIP_MARGIN = 64
# Fill tiles (px) and the context around each.
_FILL_TILE, _FILL_PAD = 256, 40
# A bent component with more parallel straight pieces than this is a grid (brick joints, bars), not damage.
_MAX_PIECES = 2
# Share of a bent component its straight pieces must cover to be kept.
_PIECE_COVER = 0.6
# Bent components are also judged as their unjoined strands (`_strands`), held to this share of `max_bend`
# (two close parallel scratches come apart there; a rim's gently curved highlight stays out).
_STRAND_BEND = 0.5
# Pieces and strands of bent components: the slope under them is the largest within this many px (a
# highlight along an object's outline has the outline beside it, not only under it).
_SIDE_R = 4
# Curved lines (bend above this) get the same side test as pieces; -1: off. Measured at 0.09: tune-set
# scratch precision 0.57 -> 0.64 but held-out recall 0.43 -> 0.37 (curved scratches near outlines are
# lost): not kept. It would drop the saucer rim of demo/family/coffee_damaged.png.
_CURVED_BEND = -1.0
# Gap (px) along a line's own direction across which its broken pieces are joined; 0: off. Measured
# at 5: tune-set scratch recall 0.39 -> 0.40, precision 0.56 -> 0.68, but held-out recall 0.43 -> 0.31,
# precision 0.60 -> 0.55 (texture joined to a scratch makes it too wide or busy): not kept.
_LINK = 0


# ---------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n"):
        return False
    raise ValueError(f"repair: expected on/off (yes/no, true/false, 1/0), got {value!r}")


# metadata.csv columns that override a photo's repair settings; empty cells keep the config value.
CATALOGUE_COLUMNS = {"repair": "enabled", "repair_sensitivity": "sensitivity"}


def catalogue_overrides(row: dict[str, Any]) -> dict[str, Any]:
    """Per-photo overrides from a metadata.csv row (`repair`: on/off, `repair_sensitivity`: 0–100)."""
    out: dict[str, Any] = {}
    for column, key in CATALOGUE_COLUMNS.items():
        value = row.get(column)
        if value is None or str(value).strip() == "":
            continue
        if key == "enabled":
            out[key] = _truthy(value)
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                raise ValueError(f"metadata.csv {column}={value!r}: expected a number 0-100") from None
            if not 0 <= number <= 100:
                raise ValueError(f"metadata.csv {column}={value!r}: expected a number 0-100")
            out[key] = number
    return out


def apply_overrides(cfg: dict, overrides: dict[str, Any]) -> dict:
    """`cfg` with per-photo `overrides` (from `catalogue_overrides`) applied; `cfg` is not changed."""
    return {**cfg, **overrides}


# ---------------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------------


def _line_kernels(length: int = _LINE_LENGTH, angles: int = _LINE_ANGLES) -> list[np.ndarray]:
    """Averaging kernels along a `length`-px line at each of `angles` angles over 180°."""
    kernels = []
    half = length // 2
    for k in range(angles):
        angle = math.pi * k / angles
        kernel = np.zeros((length, length), np.float32)
        dx, dy = math.cos(angle) * half, math.sin(angle) * half
        cv2.line(kernel, (round(half - dx), round(half - dy)), (round(half + dx), round(half + dy)), 1.0, 1,
                 cv2.LINE_8)
        kernels.append(kernel / kernel.sum())
    return kernels


_KERNELS = _line_kernels()
# The taps of each mark line: (dy, dx) offsets of its pixels from the centre, one K×2 array an angle.
_MARK_TAPS = [np.argwhere(k > 0) - _MARK_LENGTH // 2 for k in _line_kernels(_MARK_LENGTH, _MARK_ANGLES)]


def _local_scale(residual: np.ndarray, floor: float, block: int = 32) -> np.ndarray:
    """Local spread of a residual: 1.4826 × median |residual| per `block`² tile, smoothly interpolated.

    A median ignores the damage in a tile (a small share of it), so the scale is that of the grain and
    texture around it: textured areas (grass, hair, fabric) need stronger evidence than a plain sky.
    """
    h, w = residual.shape
    th, tw = max(1, -(-h // block)), max(1, -(-w // block))
    padded = np.pad(np.abs(residual), ((0, th * block - h), (0, tw * block - w)), mode="reflect")
    tiles = padded.reshape(th, block, tw, block).transpose(0, 2, 1, 3).reshape(th, tw, block * block)
    scale = np.maximum(1.4826 * np.median(tiles, axis=2), floor).astype(np.float32)
    scale = cv2.resize(scale, (tw * block, th * block), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return cv2.GaussianBlur(scale, (0, 0), block / 2)


def _zscores(gray: np.ndarray, width: int, floor: float) -> tuple[np.ndarray, ...]:
    """(bright z, dark z, bright contrast, dark contrast, bright angle, dark angle): two-sided line
    contrast of `gray`, it in units of its local robust spread, and the index (0..7) of the angle that
    gave it.

    At 8 angles the pixel is compared with the two pixels `width` + 1 px away on either side: a bright
    line is brighter than both, by the smaller of the two differences, less half their difference (a
    scratch lies on top of the picture, which continues alike on both sides; a highlight along an
    object's edge separates two different sides). A step edge gives nothing.
    """
    smooth = cv2.GaussianBlur(gray, (0, 0), 0.7)
    h, w = gray.shape
    d = float(width + 1)
    bright = np.full((h, w), -np.inf, np.float32)
    dark = np.full((h, w), -np.inf, np.float32)
    bright_angle = np.zeros((h, w), np.uint8)
    dark_angle = np.zeros((h, w), np.uint8)
    for k in range(_LINE_ANGLES):
        angle = math.pi * k / _LINE_ANGLES
        nx, ny = -math.sin(angle) * d, math.cos(angle) * d
        sides = [cv2.warpAffine(smooth, np.float32([[1, 0, sx], [0, 1, sy]]), (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT) for sx, sy in ((nx, ny), (-nx, -ny))]
        asym = np.abs(sides[0] - sides[1]) * np.float32(0.5)
        for best, angle, value in ((bright, bright_angle, np.minimum(smooth - sides[0], smooth - sides[1]) - asym),
                                   (dark, dark_angle, np.minimum(sides[0] - smooth, sides[1] - smooth) - asym)):
            angle[value > best] = k
            np.maximum(best, value, out=best)
    return (bright / _local_scale(bright, floor), dark / _local_scale(dark, floor), bright, dark, bright_angle,
            dark_angle)


def _hysteresis(z: np.ndarray, seed: float, grow: float) -> np.ndarray:
    low = (z >= grow).astype(np.uint8)
    count, labels = cv2.connectedComponents(low, connectivity=8)
    if count <= 1:
        return low.astype(bool)
    has_seed = np.zeros(count, bool)
    has_seed[np.unique(labels[z >= seed])] = True
    has_seed[0] = False
    return has_seed[labels]


def _line_response(z: np.ndarray) -> np.ndarray:
    """Largest mean of z along a 21-px line at 8 angles (faint straight or gently curved lines).

    Computed on a half-size copy (11-px lines there) and enlarged: a quarter of the pixels and of the
    kernel, nearly the same evidence (the 2×2 mean halves the grain as well as a 1-px line).
    """
    clipped = np.clip(z, -3.0, 6.0)
    h, w = z.shape
    small = cv2.resize(clipped, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    best = None
    for kernel in _KERNELS:
        response = cv2.filter2D(small, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT)
        best = response if best is None else np.maximum(best, response, out=best)
    return cv2.resize(best, (w, h), interpolation=cv2.INTER_LINEAR)


def _line_elements(link: int) -> list[np.ndarray]:
    """Structuring elements: a (2 × `link` + 1)-px line at each of the `_LINE_ANGLES` angles."""
    elements = []
    for k in range(_LINE_ANGLES):
        angle = math.pi * k / _LINE_ANGLES
        element = np.zeros((2 * link + 1, 2 * link + 1), np.uint8)
        dx, dy = math.cos(angle) * link, math.sin(angle) * link
        cv2.line(element, (round(link - dx), round(link - dy)), (round(link + dx), round(link + dy)), 1, 1,
                 cv2.LINE_8)
        elements.append(element)
    return elements


def _components(candidates: np.ndarray, z: np.ndarray, join: int = 2, angles: np.ndarray | None = None,
                link: int = 0) -> dict[str, np.ndarray]:
    """Per-component measures of a boolean candidate mask (index 0 is the background).

    Candidates closer than `join` px are one component (a scratch broken by the grain stays one long
    line; texture merges into broad patches, which the width test then rejects). Area and peak count
    candidate pixels only; length is the larger of the bounding box diagonal and half the outline of
    the joined shape.
    """
    cand8 = candidates.astype(np.uint8)
    joined = cv2.dilate(cand8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * join + 1,) * 2)) if join else cand8
    if angles is not None and link > join:
        # Pieces of one line broken by the grain are joined across gaps of up to 2 × `link` px along
        # their own direction (the angle that gave each pixel's contrast), not sideways into texture.
        for k, element in enumerate(_line_elements(link)):
            joined |= cv2.dilate(cand8 & (angles == k), element)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(joined, connectivity=8)
    inner = cv2.erode(joined, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    outline = np.bincount(labels[(joined > 0) & (inner == 0)], minlength=count).astype(np.float64)
    labels = np.where(candidates, labels, 0)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=count).astype(np.float64)
    area[0] = 0.0
    diagonal = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) - 2 * join
    length = np.maximum(np.maximum(diagonal, outline / 2.0 - 2 * join), 1.0)
    width = area / length
    zsum = np.bincount(flat, weights=z.ravel(), minlength=count)
    # Bend: spread across / spread along the component's main axis (second moments of its pixels):
    # about 0 for a straight line, 0.13 for an arc bent by an eighth of its length, 0.3+ for a rim.
    ys, xs = np.nonzero(labels)
    lab = labels[ys, xs]
    peak = np.full(count, -np.inf)
    np.maximum.at(peak, lab, z[ys, xs].astype(np.float64))  # on the candidate pixels only (no full sort)
    peak[0] = 0.0
    n = np.maximum(area, 1.0)
    moments = [np.bincount(lab, weights=v, minlength=count) / n
               for v in (xs.astype(np.float64), ys.astype(np.float64), xs * xs.astype(np.float64),
                         ys * ys.astype(np.float64), xs * ys.astype(np.float64))]
    mx, my, mxx, myy, mxy = moments
    sxx, syy, sxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    half_trace, root = (sxx + syy) / 2, np.sqrt(((sxx - syy) / 2) ** 2 + sxy**2)
    bend = np.sqrt(np.maximum(half_trace - root, 0.0) / np.maximum(half_trace + root, 1e-9))
    return {"count": count, "labels": labels, "area": area, "length": length, "width": width, "peak": peak,
            "bend": bend,
            "zmean": zsum / np.maximum(area, 1.0), "centroids": centroids}


def _neighbourhood(texture: np.ndarray, comps: dict, window: int, count_window: int,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(share of `texture` pixels not its own, other-component count) around each component.

    `texture`: every pixel above the grow threshold, seeded or not; a lone scratch of width w covers
    about w / `window` of its neighbourhood, text, brick joints, fabric or hair much more.
    """
    labels, count = comps["labels"], comps["count"]
    if texture.dtype == np.float32:  # already the share of texture pixels per window (computed once)
        density = texture
    else:
        density = cv2.blur(texture.astype(np.float32), (window, window), borderType=cv2.BORDER_REFLECT)
    mean_density = np.bincount(labels.ravel(), weights=density.ravel(), minlength=count)
    mean_density /= np.maximum(comps["area"], 1.0)
    # Less the component's own share (a line of width w crosses the window once: w × window pixels).
    mean_density = np.maximum(mean_density - np.minimum(comps["area"], comps["width"] * window) / window**2, 0.0)
    h, w = labels.shape
    dots = np.zeros((h, w), np.float32)
    cy = np.clip(np.rint(comps["centroids"][1:, 1]).astype(int), 0, h - 1)
    cx = np.clip(np.rint(comps["centroids"][1:, 0]).astype(int), 0, w - 1)
    np.add.at(dots, (cy, cx), 1.0)
    counts = cv2.boxFilter(dots, -1, (count_window, count_window), normalize=False, borderType=cv2.BORDER_CONSTANT)
    near = np.zeros(count)
    near[1:] = counts[cy, cx] - 1.0
    return mean_density, near


def _isolated(gray: np.ndarray, comps: dict, chosen: np.ndarray, bright: bool) -> np.ndarray:
    """Per component: whether a speck stands alone, i.e. the ring 2–5 px around it holds nothing nearly
    as far from the ring's mean as the speck itself (the end or a piece of a stroke, a letter or a
    branch has its continuation in that ring)."""
    keep = np.ones(comps["count"], bool)
    ids = np.flatnonzero(chosen)
    if not ids.size:
        return keep
    labels = np.where(np.isin(comps["labels"], ids), comps["labels"], 0).astype(np.float32)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _RING_OUTER + 1,) * 2)
    inner = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _RING_INNER + 1,) * 2)
    ring = np.where(cv2.dilate(labels, inner) > 0, 0, cv2.dilate(labels, disc)).astype(np.int32)
    count = comps["count"]
    signed = gray if bright else -gray
    ry, rx = np.nonzero(ring)
    rl, rv = ring[ry, rx], signed[ry, rx].astype(np.float64)
    ring_mean = np.bincount(rl, weights=rv, minlength=count) / np.maximum(np.bincount(rl, minlength=count), 1)
    ring_peak = np.full(count, -np.inf)
    np.maximum.at(ring_peak, rl, rv)
    sy, sx = np.nonzero(labels)
    speck_peak = np.full(count, -np.inf)
    np.maximum.at(speck_peak, comps["labels"][sy, sx], signed[sy, sx].astype(np.float64))
    keep[ids] = (ring_peak[ids] - ring_mean[ids]) <= _RING_SHARE * (speck_peak[ids] - ring_mean[ids])
    return keep


def _speck_neighbours(comps: dict, speck: np.ndarray, window: int) -> np.ndarray:
    """Per component: how many other `speck` components have their centre within the `window`² square
    around its centre."""
    h, w = comps["labels"].shape
    cy = np.clip(np.rint(comps["centroids"][:, 1]).astype(int), 0, h - 1)
    cx = np.clip(np.rint(comps["centroids"][:, 0]).astype(int), 0, w - 1)
    dots = np.zeros((h, w), np.float32)
    chosen = np.flatnonzero(speck[1:]) + 1
    np.add.at(dots, (cy[chosen], cx[chosen]), 1.0)
    counts = cv2.boxFilter(dots, -1, (window, window), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return counts[cy, cx] - speck.astype(np.float32)


def _classify(gray: np.ndarray, cfg: dict, floor: float, face_mask: np.ndarray | None,
              scale: float = 1.0) -> dict[str, np.ndarray]:
    """Scratch and dust masks of one strip (or of the half-size copy for creases when scale < 1)."""
    factor = 2.0 ** ((50.0 - float(cfg["sensitivity"])) / 50.0)  # sensitivity 50 → 1, 100 → 0.5, 0 → 2
    max_width = max(1, round(float(cfg["max_width"]) * scale))
    seed, grow, line_t = (float(cfg[k]) * factor for k in ("seed_z", "grow_z", "line_z"))
    min_length = float(cfg["min_length"]) * scale
    types = set(cfg["types"])
    h, w = gray.shape
    out = {"scratch": np.zeros((h, w), bool), "dust": np.zeros((h, w), bool)}
    # Slope of the picture under the marks (marks removed by a median a little wider than them, then
    # smoothed): a highlight or shadow line along an object's outline sits on a steep slope, a scratch
    # across the picture mostly on flat ground.
    gray8 = np.clip(gray * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)
    ground = cv2.medianBlur(gray8, 2 * max_width + 3).astype(np.float32) * np.float32(1 / 255)
    ground = cv2.GaussianBlur(ground, (0, 0), 2.0)
    slope = cv2.magnitude(cv2.Sobel(ground, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(ground, cv2.CV_32F, 0, 1, ksize=3))
    slope *= np.float32(4.0 / 8.0)  # Sobel gain 8; the rise over 4 px
    side_slope = cv2.dilate(slope, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _SIDE_R + 1,) * 2)
                            ) if _SIDE_R else slope
    bright_z, dark_z, bright_c, dark_c, bright_a, dark_a = _zscores(gray, max_width, floor)
    # Dark lines in pictures are common (eyebrows, pen strokes, wires, hair), dark scratches on prints
    # rarer: a dark line must be `dark_factor` × longer and straighter to count as a scratch.
    dark = float(cfg["dark_factor"])
    for polarity, (z, contrast, angles, stretch) in enumerate(((bright_z, bright_c, bright_a, 1.0),
                                                               (dark_z, dark_c, dark_a, dark))):
        if face_mask is not None:
            z = np.where(face_mask, z / np.float32(cfg["face_factor"]), z)
        candidates = _hysteresis(z, seed, grow)
        if "scratch" in types:
            candidates |= (_line_response(z) >= line_t) & (z >= 1.0)
        quiet_args = (z >= grow, slope, contrast, float(cfg["density_max"]), float(cfg["edge_max"]))
        line_args = (z >= grow, side_slope, *quiet_args[2:])
        if "scratch" in types:
            comps = _components(candidates, z, angles=angles, link=_LINK)
            if comps["count"] > 1:
                length, width = comps["length"], comps["width"]
                quiet, _ = _quiet(comps, *quiet_args)
                if _CURVED_BEND >= 0:
                    curved = comps["bend"] > _CURVED_BEND
                    if curved.any():
                        quiet &= ~curved | _quiet(comps, *line_args)[0]
                lined = (length >= min_length * stretch) & (width <= max_width + 1) & (length >= 4 * width) & quiet
                straight = comps["bend"] <= float(cfg["max_bend"]) / stretch
                scratch = lined & straight
                scratch[0] = False
                out["scratch"] |= scratch[comps["labels"]]
                # Crossing or curved scratches make one bent component: split the bent ones by the
                # direction of their pixels (45° windows) and judge each straight piece on its own.
                # (Only components long and thin enough for a piece of them to pass.)
                bent = ~straight & (length >= min_length * stretch) & (width <= max_width + 1)
                bent[0] = False
                if bent.any():
                    parents = np.where(bent[comps["labels"]], comps["labels"], 0)
                    texture = cv2.blur(line_args[0].astype(np.float32), (_DENSITY_WINDOW,) * 2,
                                       borderType=cv2.BORDER_REFLECT)
                    # Work on the bent components' bounding box only (plus the 61-px texture context,
                    # already in `texture`).
                    rows, cols = np.flatnonzero(parents.any(axis=1)), np.flatnonzero(parents.any(axis=0))
                    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                    sub = tuple(a[box] for a in (texture, *line_args[1:3])) + tuple(line_args[3:])
                    out["scratch"][box] |= _straight_pieces(parents[box], z[box], angles[box], sub, cfg, stretch,
                                                            min_length, max_width)
                    out["scratch"][box] |= _strands(parents[box], z[box], sub, cfg, stretch, min_length, max_width)
        if "dust" in types:
            # Specks are judged as they are, not joined to their neighbours.
            comps = _components(candidates & ~out["scratch"], z, join=0)
            if comps["count"] > 1:
                length, area = comps["length"], comps["area"]
                quiet, _ = _quiet(comps, *quiet_args)
                compact = length <= 2.5 * np.sqrt(area) + 2.0  # a speck, not a piece of a line or an edge
                speck = ((area <= float(cfg["dust_max_area"]) * scale * scale) & compact & (comps["peak"] >= seed)
                         & (area >= 2))
                # Crowding counts other specks only (a star field is many), not the grain's small blobs.
                near = _speck_neighbours(comps, speck, _COUNT_WINDOW)
                dust = speck & quiet & (near <= float(cfg["neighbours_max"]))
                dust &= _isolated(gray, comps, dust, bright=polarity == 0)
                dust[0] = False
                out["dust"] |= dust[comps["labels"]]
    return out


def _straight_pieces(parents: np.ndarray, z: np.ndarray, angles: np.ndarray, quiet_args: tuple, cfg: dict,
                     stretch: float, min_length: float, max_width: int) -> np.ndarray:
    """Scratch pixels of bent components (`parents`: their labels, 0 elsewhere) taken by direction.

    For each pair of neighbouring angles (a 45° window) the pixels whose line runs that way form
    components, each judged like a whole one (long, thin, straight, quiet). A bent component with more
    than `_MAX_PIECES` such pieces in one direction (parallel lines joined by cross lines) is a grid or
    a net (brick joints, window bars, a fence), not a scratch or two crossing ones: none of its pieces
    is kept.
    """
    found = np.zeros(parents.shape, bool)
    pieces: Counter = Counter()  # (window, parent label): kept pieces
    for k in range(_LINE_ANGLES):
        window = (parents > 0) & ((angles == k) | (angles == (k + 1) % _LINE_ANGLES))
        if not window.any():
            continue
        comps = _components(window, z)
        if comps["count"] <= 1:
            continue
        length, width = comps["length"], comps["width"]
        quiet, _ = _quiet(comps, *quiet_args)
        keep = ((length >= min_length * stretch) & (width <= max_width + 1) & (length >= 4 * width) & quiet
                & (comps["bend"] <= float(cfg["max_bend"]) / stretch))
        keep[0] = False
        if not keep.any():
            continue
        # A piece lies within one bent component (both are joined the same way, the piece from fewer pixels).
        parent_of = np.zeros(comps["count"], np.int64)
        lab = comps["labels"]
        parent_of[lab[window]] = parents[window]
        pieces.update((k, int(parent)) for parent in parent_of[np.flatnonzero(keep)])
        found |= keep[lab]
    if not pieces:
        return found
    grid = np.zeros(int(parents.max()) + 1, bool)
    grid[[parent for (_, parent), n in pieces.items() if n > _MAX_PIECES]] = True
    found &= ~grid[parents]
    # The straight pieces must make up most of their component: a line with many short branches (a
    # joint between bricks, a twig) is content, two crossing lines or an arc are covered by their pieces.
    size = np.bincount(parents.ravel())
    covered = np.bincount(parents[found], minlength=size.size)
    share = covered / np.maximum(size, 1)
    return found & (share[parents] >= _PIECE_COVER)


def _strands(parents: np.ndarray, z: np.ndarray, quiet_args: tuple, cfg: dict, stretch: float,
             min_length: float, max_width: int) -> np.ndarray:
    """Scratch pixels of bent components (`parents`: their labels, 0 elsewhere) taken as their unjoined
    strands: two close parallel scratches that the 2-px join made one bent component (with each other,
    or with an outline nearby) come apart again, and each strand is judged like a whole component, held
    to `_STRAND_BEND` × the bend allowed. Its strands must make up most of their bent component, as for
    `_straight_pieces` (words, a branching twig are mostly short or curved strokes)."""
    comps = _components(parents > 0, z, join=0)
    found = np.zeros(parents.shape, bool)
    if comps["count"] <= 1:
        return found
    length, width = comps["length"], comps["width"]
    shaped = ((length >= min_length * stretch) & (width <= max_width + 1) & (length >= 4 * width)
              & (comps["bend"] <= _STRAND_BEND * float(cfg["max_bend"]) / stretch))
    shaped[0] = False
    if not shaped.any():
        return found
    quiet, _ = _quiet(comps, *quiet_args)
    found = (shaped & quiet)[comps["labels"]]
    size = np.bincount(parents.ravel())
    covered = np.bincount(parents[shaped[comps["labels"]]], minlength=size.size)
    share = covered / np.maximum(size, 1)
    return found & (share[parents] >= _PIECE_COVER)


def _quiet(comps: dict, texture: np.ndarray, slope: np.ndarray, contrast: np.ndarray, density_max: float,
           edge_max: float) -> tuple[np.ndarray, np.ndarray]:
    """(quiet, neighbour count) per component: quiet when its neighbourhood is not busy with texture and
    it does not lie along an object's outline (the slope under it, summed, exceeds `edge_max` × its
    summed contrast)."""
    density, near = _neighbourhood(texture, comps, _DENSITY_WINDOW, _COUNT_WINDOW)
    flat = comps["labels"].ravel()
    rise = np.bincount(flat, weights=slope.ravel(), minlength=comps["count"])
    height = np.bincount(flat, weights=np.maximum(contrast, 0).ravel(), minlength=comps["count"])
    return (density <= density_max) & (rise <= edge_max * height), near


def _face_mask(shape: tuple[int, int], faces: Sequence[Sequence[float]] | None, margin: float = 0.15,
               ) -> np.ndarray | None:
    if not faces:
        return None
    h, w = shape
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in (tuple(f)[:4] for f in faces):
        mx, my = (x1 - x0) * margin, (y1 - y0) * margin
        rows = slice(max(0, int(y0 - my)), min(h, math.ceil(y1 + my)))
        mask[rows, max(0, int(x0 - mx)):min(w, math.ceil(x1 + mx))] = True
    return mask


def grain_floor(gray: np.ndarray) -> float:
    """Smallest residual scale used for z-scores: half an 8-bit level, so a clean digital image does not
    turn its last rounding step into 'damage'."""
    return 0.5 / 255.0


# ---------------------------------------------------------------------------------------------------
# Learned detector
# ---------------------------------------------------------------------------------------------------

# The learned detector's weights file in models_dir (made by `python -m photoarchive.damage_training`).
DETECTOR_FILE = "damage_unet.pt"
# Learned marks smaller than this (px) are left alone (a lone pixel over threshold is grain).
_MIN_LEARNED_AREA = 3


@dataclass
class LearnedDetector:
    """The damage U-Net, loaded once (per batch), and the file it came from."""

    model: DamageUNet
    path: Path
    sha256: str
    device: torch.device

    @classmethod
    def load(cls, path: Path, device: str = "auto") -> LearnedDetector:
        """Load the state dict at `path` (weights_only); ValueError naming the file when it is not one."""
        from photoarchive.ingest import file_sha256
        from photoarchive.models.damage_unet import load_model, pick_device

        path = Path(path)
        where = pick_device(device)
        return cls(load_model(path, where), path, file_sha256(path), where)

    def info(self) -> dict[str, str]:
        return {"detector": "learned", "model_file": self.path.name, "model_sha256": self.sha256}

    def probabilities(self, gray: np.ndarray) -> dict[str, np.ndarray]:
        """{scratch, dust: H×W float32 probability} of an H×W luminance image in [0, 1]."""
        from photoarchive.models.damage_unet import CLASSES, predict

        prob = predict(self.model, gray, self.device)
        return dict(zip(CLASSES, prob, strict=True))


def load_detector(models_dir: Path, threads: int = 1) -> LearnedDetector | None:
    """The learned detector from `models_dir`/DETECTOR_FILE, or None (the classical detector runs) when the
    file is not there or torch is not installed (a warning in the log). A file that is there but broken raises.
    Torch is held to `threads` CPU threads (the job's)."""
    path = Path(models_dir) / DETECTOR_FILE
    if not path.exists():
        log.warning("repair: no %s: the classical detector runs as a fallback and misses more damage (make the "
                    "learned one, about 60 min on 2 CPU cores: python -m photoarchive.damage_training --out %s)",
                    path, path)
        return None
    try:
        import torch
    except ImportError:
        log.warning("repair: %s is there but torch is not installed: the classical detector runs", path)
        return None
    torch.set_num_threads(max(1, int(threads)))
    detector = LearnedDetector.load(path)
    log.info("repair: learned detector %s (sha256 %s) on %s", path, detector.sha256[:12], detector.device)
    return detector


# The doubt (1 - probability) the learned detector may leave at sensitivity 50, per class, each chosen
# on the benchmark's tune set (its photos are training photos; held-out photos never choose): for
# scratches the lowest threshold whose precision is still ≥ 0.92 there, for dust the most precise that
# finds ≥ 85 % of the dust there. With `predict`'s two views both come to 0.8 (one view: 0.9 and 0.8).
_LEARNED_DOUBT = {"scratch": 0.2, "dust": 0.2}


def learned_threshold(sensitivity: float, kind: str = "scratch") -> float:
    """Probability above which a pixel is damage of `kind`: 0.8 at sensitivity 50, 0.6 at 75, 0.9 at 25.
    Each 25 points halve or double the doubt allowed."""
    return 1.0 - _LEARNED_DOUBT[kind] * 2.0 ** ((float(sensitivity) - 50.0) / 25.0)


def _learned_masks(gray: np.ndarray, cfg: dict, faces: np.ndarray | None, detector: LearnedDetector,
                   ) -> dict[str, np.ndarray]:
    """{scratch, dust: bool mask} from the net: probability above `learned_threshold` of its kind; inside
    faces above 1 - (1 - threshold) / face_factor (only clear damage). Marks under `_MIN_LEARNED_AREA` px
    are dropped."""
    out = {}
    for name, prob in detector.probabilities(gray).items():
        threshold = learned_threshold(cfg["sensitivity"], name)
        limit = np.float32(threshold)
        if faces is not None:
            limit = np.where(faces, np.float32(1 - (1 - threshold) / float(cfg["face_factor"])), limit)
        mask = (prob > limit).astype(np.uint8)
        if name not in cfg["types"]:
            mask[:] = 0
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= _MIN_LEARNED_AREA
        keep[0] = False
        out[name] = keep[labels]
    return out


def damage_mask(image: np.ndarray, cfg: dict, faces: Sequence[Sequence[float]] | None = None,
                detector: LearnedDetector | None = None) -> dict[str, np.ndarray]:
    """{damage type: H×W bool mask} for `DAMAGE_TYPES`, with config["repair"] `cfg`.

    `faces`: optional face boxes (x0, y0, x1, y1); inside them only clear damage is marked. A pixel
    belongs to at most one type (crease, then scratch, then dust). `detector`: scratches and dust come
    from the learned detector instead of the classical one (creases stay classical).
    """
    require_keys(cfg, REPAIR_KEYS, "repair")
    image = check_image(image)
    h, w = image.shape[:2]
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    floor = grain_floor(gray)
    faces_full = _face_mask((h, w), faces)
    masks = {t: np.zeros((h, w), bool) for t in DAMAGE_TYPES}
    if detector is not None:
        masks.update(_learned_masks(gray, cfg, faces_full, detector))
    else:
        step = max(int(cfg["strip_rows"]), 2 * _STRIP_MARGIN)
        for top in range(0, h, step):
            bottom = min(h, top + step)
            lo, hi = max(0, top - _STRIP_MARGIN), min(h, bottom + _STRIP_MARGIN)
            face_strip = faces_full[lo:hi] if faces_full is not None else None
            found = _classify(gray[lo:hi], cfg, floor, face_strip)
            for name, mask in found.items():
                masks[name][top:bottom] = mask[top - lo:bottom - lo]
    crease_cfg = cfg["crease"]
    if "crease" in cfg["types"] and crease_cfg["enabled"]:
        masks["crease"] = _creases(gray, cfg, floor, faces_full)
    masks["scratch"] &= ~masks["crease"]
    masks["dust"] &= ~(masks["crease"] | masks["scratch"])
    return masks


def _creases(gray: np.ndarray, cfg: dict, floor: float, faces: np.ndarray | None) -> np.ndarray:
    """Long folds: the scratch detector on a half-size copy with `crease.max_width`, kept when long."""
    h, w = gray.shape
    small = cv2.resize(gray, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    crease_cfg = cfg["crease"]
    sub = {**cfg, "types": ["scratch"], "max_width": float(crease_cfg["max_width"]),
           "min_length": float(crease_cfg["min_length"]) * min(h, w)}
    face_small = None if faces is None else cv2.resize(faces.astype(np.uint8), small.shape[::-1],
                                                        interpolation=cv2.INTER_NEAREST).astype(bool)
    found = _classify(small, sub, floor, face_small, scale=0.5)["scratch"]
    big = cv2.resize(found.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.dilate(big, np.ones((3, 3), np.uint8)).astype(bool)


# ---------------------------------------------------------------------------------------------------
# Fill
# ---------------------------------------------------------------------------------------------------


def grown(mask: np.ndarray, px: int) -> np.ndarray:
    """`mask` (H×W bool) grown by a disc of radius `px` (the margin the stage fills round what it finds)."""
    if px <= 0:
        return mask
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2)
                      ).astype(bool)


def fill(image: np.ndarray, mask: np.ndarray, core: np.ndarray | None = None, radius: int = 3) -> np.ndarray:
    """Fill the `mask` pixels of `image`, keeping what shows through the damage.

    Telea inpainting carries in the tones and edges around the damage. Most marks are translucent (a
    scratch lightens or darkens the picture under it), so each `core` pixel (the damage itself; `mask` may
    be it grown by a px or two, default: `mask`) then has the mark's offset from that fill taken off,
    averaged along the mark (`_mark_offset`); what remains of the pixel beyond the fill is kept as its
    own grain and detail, clipped to `_GRAIN_CLIP` grain sigmas. Where less grain shows through than
    around (an opaque speck), grain copied from nearby undamaged pixels makes up the rest (the high-pass
    layer at the nearest clean offset, clipped so that an edge nearby is not copied as grain).
    Grain is taken only outside the damage's 2-px rim, so it carries none of the damage.
    """
    image = check_image(image)
    out = image.copy()
    if not mask.any():
        return out
    m8 = mask.astype(np.uint8)
    core8 = m8 if core is None else (core & mask).astype(np.uint8)
    rim = cv2.dilate(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))).astype(bool)
    h, w = mask.shape
    # Work per tile that holds damage (the tile plus a margin of context): memory and time follow the
    # damage, not the scan, and a long scratch across a 100-MP scan never makes one huge region.
    core_px, pad = _FILL_TILE, _FILL_PAD
    for ty in range(0, h, core_px):
        for tx in range(0, w, core_px):
            if not m8[ty:ty + core_px, tx:tx + core_px].any():
                continue
            y0, y1, x0, x1 = max(0, ty - pad), min(h, ty + core_px + pad), max(0, tx - pad), min(w, tx + core_px + pad)
            region_mask = m8[y0:y1, x0:x1]
            crop, valid = image[y0:y1, x0:x1], ~rim[y0:y1, x0:x1]
            # OpenCV's float Telea is unstable on [0, 1] values (its gradient term overshoots): work in 0–255.
            filled = np.stack([cv2.inpaint(np.ascontiguousarray(crop[..., c] * np.float32(255)), region_mask, radius,
                                           cv2.INPAINT_TELEA) for c in range(3)], axis=-1) * np.float32(1 / 255)
            grain, limit = _grain_layer(crop, valid)
            own = np.clip(crop - _mark_offset(crop - filled, core8[y0:y1, x0:x1]) - filled, -limit, limit)
            missing = _missing_grain(own, region_mask, grain, valid)
            detail = own + missing[..., None] * _borrow_grain(grain, valid, region_mask)
            # Only the tile's own pixels are written; its margin is someone else's tile.
            sel = np.zeros(region_mask.shape, bool)
            sel[ty - y0:ty - y0 + core_px, tx - x0:tx - x0 + core_px] = region_mask[ty - y0:ty - y0 + core_px,
                                                                                 tx - x0:tx - x0 + core_px] > 0
            out[y0:y1, x0:x1][sel] = filled[sel] + detail[sel]
    return np.clip(out, 0.0, 1.0, out=out)


def _mark_offset(offset: np.ndarray, core: np.ndarray) -> np.ndarray:
    """H×W×3 offset of the marks in `core` (H×W uint8): `offset` averaged over the core pixels along the
    line through each pixel that lies most inside the mark (along a scratch, over a speck); 0 off it.

    Gathered at the mark's own pixels only (a few % of a tile), not convolved over the whole tile."""
    out = np.zeros_like(offset)
    ys, xs = np.nonzero(core)
    if not len(ys):
        return out
    h, w = core.shape
    best = np.full(len(ys), -1.0)
    total = np.zeros((len(ys), offset.shape[2]), np.float32)
    count = np.ones(len(ys), np.float32)
    for taps in _MARK_TAPS:
        yy, xx = ys[:, None] + taps[:, 0], xs[:, None] + taps[:, 1]  # N×K pixels along the line
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        yy, xx = np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)
        on_mark = inside & (core[yy, xx] > 0)
        support = on_mark.sum(axis=1) / len(taps)  # the share of the line on the mark
        better = support > best + 1e-6  # the first angle of the largest share wins
        if better.any():
            total[better] = np.einsum("nk,nkc->nc", on_mark[better].astype(np.float32),
                                      offset[yy[better], xx[better]])
            count[better] = on_mark[better].sum(axis=1)
            best[better] = support[better]
    out[ys, xs] = total / count[:, None]
    return out


def _missing_grain(own: np.ndarray, region: np.ndarray, grain: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """H×W share (0–1, in amplitude) of the surroundings' grain that the filled pixels' own detail lacks."""
    own_high = own - cv2.GaussianBlur(own, (0, 0), _GRAIN_SIGMA, borderType=cv2.BORDER_REFLECT)
    inside = region.astype(np.float32)
    energy = cv2.boxFilter(np.mean(own_high**2, axis=2) * inside, -1, (5, 5), normalize=False)
    energy /= np.maximum(cv2.boxFilter(inside, -1, (5, 5), normalize=False), 1.0)
    around = float(np.mean(grain[valid] ** 2)) if valid.any() else 0.0
    if around <= 0:
        return np.zeros(region.shape, np.float32)
    return np.sqrt(np.clip(1.0 - energy / around, 0.0, 1.0))


def _grain_layer(crop: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """(H×W×3 grain, limit) of a crop: its high-pass below `_GRAIN_SIGMA`, zero outside `valid`, clipped to
    the limit, `_GRAIN_CLIP` robust sigmas (1.4826 × MAD) of the valid pixels (grain passes, the step of
    an edge does not)."""
    high = (crop - cv2.GaussianBlur(crop, (0, 0), _GRAIN_SIGMA, borderType=cv2.BORDER_REFLECT)) * valid[..., None]
    sigma = 1.4826 * float(np.median(np.abs(high[valid]))) + 1e-4 if valid.any() else 1e-4
    limit = np.float32(_GRAIN_CLIP * sigma)
    return np.clip(high, -limit, limit), limit


def _borrow_grain(high: np.ndarray, valid: np.ndarray, region_mask: np.ndarray) -> np.ndarray:
    """High-pass values for the damaged pixels of one region crop, each from the nearest offset (among
    8 directions and a few distances) whose source pixel is `valid` (away from any damage)."""
    h, w = valid.shape
    grain = np.zeros((h, w, 3), np.float32)
    yy, xx = np.nonzero(region_mask)
    for distance in (5, 8, 12, 17, 23):
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1)):
            if not yy.size:
                return grain
            sy, sx = yy + dy * distance, xx + dx * distance
            inside = (sy >= 0) & (sy < h) & (sx >= 0) & (sx < w)
            ok = np.zeros(yy.size, bool)
            ok[inside] = valid[sy[inside], sx[inside]]
            grain[yy[ok], xx[ok]] = high[sy[ok], sx[ok]]
            yy, xx = yy[~ok], xx[~ok]
    return grain


# ---------------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------------


def label_image(masks: dict[str, np.ndarray]) -> np.ndarray:
    """The damage masks as an H×W×3 float picture: each type in its `DAMAGE_COLOURS`, black elsewhere."""
    first = next(iter(masks.values()))
    out = np.zeros((*first.shape, 3), np.float32)
    for name in DAMAGE_TYPES:
        if name in masks:
            out[masks[name]] = DAMAGE_COLOURS[name]
    return out


def shares_text(shares: dict[str, float]) -> str:
    """'scratch 0.12%; dust 0.03%' (types with no damage left out; 'none' when nothing was repaired)."""
    parts = [f"{name} {100 * share:.2f}%" for name, share in shares.items() if share > 0]
    return "; ".join(parts) or "none"


def repair(image: np.ndarray, cfg: dict, faces: Sequence[Sequence[float]] | None = None,
           detector: LearnedDetector | None = None) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """Detect and fill damage with config["repair"] `cfg`; return (image, masks, record).

    record: enabled, detector (learned: also model_file and model_sha256; classical), shares (repaired
    share of pixels per damage type, before the fill's dilation), shares_text, parameters (the settings
    used, with the detector) and seconds. With `enabled` false the image is returned unchanged (a copy)
    and every share is 0. `detector`: the learned detector (see `load_detector`); None: classical.
    """
    started = time.perf_counter()
    require_keys(cfg, REPAIR_KEYS, "repair")
    image = check_image(image)
    h, w = image.shape[:2]
    used = detector.info() if detector is not None else {"detector": "classical"}
    parameters = {k: cfg[k] for k in ("enabled", "types", "sensitivity", "max_width", "min_length")}
    parameters.update(used)
    if not cfg["enabled"]:
        masks = {t: np.zeros((h, w), bool) for t in DAMAGE_TYPES}
        record = {"enabled": False, "shares": {t: 0.0 for t in DAMAGE_TYPES}, "shares_text": "off",
                  "parameters": parameters}
        return image.copy(), masks, record
    masks = damage_mask(image, cfg, faces, detector)
    union = np.zeros((h, w), bool)
    for mask in masks.values():
        union |= mask
    region = grown(union, int(cfg["dilate"]))
    out = fill(image, region, core=union)
    shares = {t: round(float(masks[t].mean()), 6) for t in DAMAGE_TYPES}
    seconds = time.perf_counter() - started
    log.info("repair (%s detector): %s in %.2f s", used["detector"], shares_text(shares), seconds)
    record = {"enabled": True, **used, "shares": shares, "shares_text": shares_text(shares),
              "filled_share": round(float(region.mean()), 6), "parameters": parameters,
              "faces": len(faces or [])}
    return out, masks, record
