"""Global enhancement of a scan: presets, the `auto` choice, and the operations they chain.

Images are float32 H×W×3 RGB in [0, 1] (see CONTRIBUTING.md). Every operation works in float so a
16-bit source keeps its precision; the only 8-bit step is OpenCV's non-local means, whose change is
applied to the float image (see `denoise`). All operations are deterministic.

A preset sets three knobs on a 0–100 scale, each a range in config (`presets.<name>.<knob>`):
- strength: how much of the colour cast, contrast stretch and CLAHE is applied (fraction = value / 100),
- denoise:  non-local means filter strength h = value / 100 · nlmeans.h_max (8-bit units),
- sharpen:  unsharp-mask amount = value / 100 · unsharp.amount_max.
A fixed preset uses the middle of each range; `auto` picks the preset from the image's measures and
places each knob inside the preset's range from the measure that drives it.

Order of operations: denoise, colour cast, contrast stretch, CLAHE, brightness, sharpen (denoise first
so that later steps do not amplify noise, sharpen last so that it is not smoothed away).
"""

from __future__ import annotations

import logging
import math
import time

import cv2
import numpy as np

from photoarchive.qa import (
    check_image,
    lab_cast,
    lab_thumbnail,
    lab_to_rgb,
    noise_sigma,
    require_keys,
    rgb_to_lab,
    sharpness,
    to_gray,
)

log = logging.getLogger(__name__)

PRESETS = ("natural", "detail", "strong")
KNOBS = ("strength", "denoise", "sharpen")
# Keys of config["enhance"] (the schema fills their defaults).
ENHANCE_KEYS = ("preset", "presets", "overrides", "brightness", "measure", "auto")
ENHANCE_KEYS += ("cast", "nlmeans", "stretch", "clahe", "unsharp")

# Which measure drives which knob in `auto` (strength: the worse of fading and colour cast).
_KNOB_DRIVERS = {"strength": ("dynamic_range", "colour_cast"), "denoise": ("noise",), "sharpen": ("sharpness",)}
# How each auto measure reads in a reason: (format of the value, what the preset does about it).
_MEASURE_TEXT = {
    "noise": ("noise σ={:.3f}", "denoise"),
    "sharpness": ("sharpness {:.0f}", "sharpening"),
    "dynamic_range": ("dynamic range {:.2f} (faded)", "contrast"),
    "colour_cast": ("colour cast {:.1f}", "cast removal"),
}
TONES = ("keep", "neutral")
# Largest a*b* spread (90th percentile around the median of each lightness band) of a monochrome print.
_MONO_SPREAD = 6.0
# With tone `keep`, the paper cast is removed from tones above this L* only (ramping up to the paper).
_TONE_KEPT_BELOW = 50.0
# A monochrome print is toned when its mid-tone chroma is at least this and this × the paper's.
_TONED_MIN_CHROMA = 3.0
_TONED_RATIO = 1.2
# Rows per chunk in `local_contrast`, to bound memory on large scans.
_CLAHE_CHUNK_PIXELS = 1 << 20
# Pixels per band of the band-wise operations: a 100 MP scan is processed a band of rows at a time, so
# the Lab copies and filter buffers of an operation are a few tens of MB, not several GB. Measured on a
# 108 MP scan: 111 CPU-s with bands of 1 M pixels, 138 with 4 M (bigger bands fall out of the caches).
_BAND_PIXELS = 1 << 20


def _band_rows(width: int) -> int:
    return max(1, _BAND_PIXELS // max(1, width))


def _output(image: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.empty_like(image) if out is None else out


def _lab_bands(image: np.ndarray, out: np.ndarray, change) -> np.ndarray:
    """out = clip(Lab → RGB(change(RGB → Lab(image)))), a band of rows at a time; `out` may be `image`.

    `change(lab, rows)` edits the Lab band in place. The result equals the whole-image conversion up
    to float32 rounding (OpenCV's vectorised pow and transform round the last bit of a few values
    differently with the array's length: below 1e-6 in RGB, far under a 16-bit level).
    """
    step = _band_rows(image.shape[1])
    for start in range(0, image.shape[0], step):
        rows = slice(start, min(start + step, image.shape[0]))
        lab = rgb_to_lab(image[rows])
        change(lab, rows)
        rgb = lab_to_rgb(lab)
        np.clip(rgb, 0.0, 1.0, out=out[rows])
    return out


def _filter_bands(image: np.ndarray, out: np.ndarray, margin: int, filt) -> np.ndarray:
    """out = filt(image) for a neighbourhood filter reaching `margin` rows, a band of rows at a time.

    Each band is filtered with `margin` rows of context either side (the image border stays a border),
    so the result equals filtering the whole image at once. `out` may be `image`: the rows a later band
    still needs as context are kept aside before they are overwritten. `filt(padded, top)` returns the
    filtered band without its context: rows top .. top + band of `padded`.
    """
    h = image.shape[0]
    step = max(_band_rows(image.shape[1]), 4 * margin)
    in_place = np.shares_memory(image, out)
    saved = None  # original rows [start - margin, start) when working in place
    for start in range(0, h, step):
        stop = min(start + step, h)
        lo, hi = max(0, start - margin), min(h, stop + margin)
        if in_place and saved is not None:
            padded = np.concatenate([saved, image[start:hi]])
        else:
            padded = np.ascontiguousarray(image[lo:hi])
        result = filt(padded, start - lo)
        if in_place:  # every band but the last has at least `margin` rows (step >= 4 margin)
            saved = image[max(0, stop - margin):stop].copy()
        out[start:stop] = result[: stop - start]
    return out


# ---------------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------------


def remove_cast(
    image: np.ndarray,
    strength: float,
    method: str = "consensus",
    max_shift: float = 20.0,
    white_percent: float = 2.0,
    tone: str = "neutral",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Remove a colour cast (e.g. yellowing) by shifting Lab a*/b* of every pixel towards neutral.

    The cast is estimated by `photoarchive.qa.lab_cast` with `method` (consensus, grayworld,
    whitepatch) on a 512-px copy. `strength` in [0, 1] is the fraction removed; the shift is limited
    to `max_shift` Lab units so that a wrong estimate cannot recolour the whole picture.

    `tone`: `neutral` removes the cast from every tone alike; `keep` does the same for a colour photo,
    but on a monochrome print (see `print_tone`) removes only the paper's cast, from the light tones
    (see `_remove_paper_cast`), so a sepia, selenium or cyanotype toning in the mid-tones stays (an
    aged sepia print's paper is often as yellow as its image: the two cannot be told apart by colour).
    `out`: where to write the result (may be `image` itself); a new array by default.
    """
    image = check_image(image)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"cast strength must be in [0, 1], got {strength}")
    if tone not in TONES:
        raise ValueError(f"tone must be one of {TONES}, got {tone!r}")
    out = _output(image, out)
    if strength == 0.0:
        out[...] = image
        return out
    if tone == "keep":
        toned = print_tone(image, white_percent)
        if toned["monochrome"]:
            return _remove_paper_cast(image, strength, toned, max_shift, out)
    a, b = lab_cast(image, method, white_percent)
    shift_a, shift_b = -strength * a, -strength * b
    norm = math.hypot(shift_a, shift_b)
    if norm > max_shift:
        shift_a, shift_b = shift_a * max_shift / norm, shift_b * max_shift / norm

    def shift(lab: np.ndarray, rows: slice) -> None:
        lab[..., 1] += np.float32(shift_a)
        lab[..., 2] += np.float32(shift_b)

    return _lab_bands(image, out, shift)


def print_tone(image: np.ndarray, white_percent: float = 2.0) -> dict:
    """Is this a monochrome (possibly toned) print, and what are its paper and mid-tone colours?

    On a 512-px copy, mid-tone pixels (L* 15–95) are binned by L*; a print whose a*b* stay within
    `_MONO_SPREAD` of their bin's median (90th percentile) is monochrome: its colour is a function of
    lightness only (toning, yellowing), not of the subject; it is toned when its mid-tones carry more
    colour than its paper. Returns monochrome, toned, paper_a/paper_b/paper_l (the brightest
    `white_percent` % below clipping) and mid_a/mid_b (median of L* 35–65).
    """
    lab = lab_thumbnail(check_image(image))
    light = lab[:, 0]
    unclipped = lab[light < 99.0] if np.count_nonzero(light < 99.0) >= 16 else lab
    bright = unclipped[unclipped[:, 0] >= np.percentile(unclipped[:, 0], 100.0 - white_percent)]
    paper = bright.astype(np.float64).mean(axis=0)
    mids = lab[(light >= 15.0) & (light <= 95.0)]
    monochrome = False
    if len(mids) >= 64:
        bins = np.minimum(((mids[:, 0] - 15.0) / 8.0).astype(int), 9)
        spread = np.zeros(len(mids), np.float32)
        for k in np.unique(bins):
            sel = bins == k
            centre = np.median(mids[sel, 1:], axis=0)
            spread[sel] = np.hypot(*(mids[sel, 1:] - centre).T)
        monochrome = bool(np.percentile(spread, 90) < _MONO_SPREAD)
    core = lab[(light >= 35.0) & (light <= 65.0)]
    mid = np.median(core[:, 1:], axis=0) if len(core) else np.zeros(2)
    # Toned: the mid-tones carry more colour than the paper (a toner acts on the silver). A yellowed
    # untoned print is the other way round: its filter-like cast grows towards the light tones.
    mid_chroma, paper_chroma = float(np.hypot(*mid)), float(np.hypot(paper[1], paper[2]))
    toned = monochrome and mid_chroma >= _TONED_MIN_CHROMA and mid_chroma > _TONED_RATIO * paper_chroma
    return {"monochrome": monochrome, "toned": bool(toned),
            "paper_a": round(float(paper[1]), 3), "paper_b": round(float(paper[2]), 3),
            "paper_l": round(float(paper[0]), 3), "mid_a": round(float(mid[0]), 3), "mid_b": round(float(mid[1]), 3)}


def _remove_paper_cast(image: np.ndarray, strength: float, toned: dict, max_shift: float,
                       out: np.ndarray | None = None) -> np.ndarray:
    """Shift a*b* by −strength × paper cast × w(L*) (limited to `max_shift`), keeping the toning.

    w rises smoothly from 0 at the mid-tones (L* 50) to 1 at the paper's L*: the paper and highlights
    lose their yellowing, the mid-tones and shadows, where a toner shows, keep their colour.
    """
    shift_a, shift_b = -strength * toned["paper_a"], -strength * toned["paper_b"]
    norm = math.hypot(shift_a, shift_b)
    if norm > max_shift:
        shift_a, shift_b = shift_a * max_shift / norm, shift_b * max_shift / norm
    start = np.float32(_TONE_KEPT_BELOW)
    span = np.float32(max(toned["paper_l"] - _TONE_KEPT_BELOW, 1.0))

    def shift(lab: np.ndarray, rows: slice) -> None:
        weight = np.clip((lab[..., 0] - start) / span, 0.0, 1.0)
        weight = weight * weight * (3.0 - 2.0 * weight)
        lab[..., 1] += np.float32(shift_a) * weight
        lab[..., 2] += np.float32(shift_b) * weight

    return _lab_bands(image, _output(image, out), shift)


def denoise(
    image: np.ndarray,
    h: float,
    h_colour: float | None = None,
    template_window: int = 7,
    search_window: int = 7,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Non-local means denoising of Lab L* (strength `h`) and a*b* (`h_colour`), OpenCV's filter.

    `h` is in 8-bit units (≈ the noise σ to remove, ×255). As in `cv2.fastNlMeansDenoisingColored`,
    L* and a*b* are filtered apart, but the Lab conversion is done here in float: the filter needs
    uint8, so it runs on a rounded 8-bit copy of L*/a*/b* and only its change (filtered − copy) is
    added to the float Lab image. Where the filter leaves a pixel alone the result is the input, so a
    16-bit source keeps its fine levels (and no 8-bit Lab round trip shifts colours). Cost grows with
    search_window²: 7 is about 5× faster than OpenCV's default 21 and, on grain of σ 0.01–0.03, as
    close or closer to the clean image at the best h (fewer, nearer patches blur less).

    Band by band: each band of rows is filtered with the rows its patches and search windows reach
    around it, which gives the whole-image filter's values (Lab conversions: see `_lab_bands`).
    `out`: where to write the result (may be `image` itself); a new array by default.
    """
    image = check_image(image)
    h_colour = h if h_colour is None else h_colour
    if h < 0 or h_colour < 0:
        raise ValueError(f"denoise strengths must be >= 0, got h={h}, h_colour={h_colour}")
    if template_window % 2 == 0 or search_window % 2 == 0:
        raise ValueError(f"NL-means windows must be odd, got {template_window} and {search_window}")
    out = _output(image, out)
    if h == 0 and h_colour == 0:
        out[...] = image
        return out
    # OpenCV's 8-bit Lab scaling: L* 0–100 → 0–255, a*/b* offset by 128.
    scale = np.float32([255.0 / 100.0, 1.0, 1.0])
    offset = np.float32([0.0, 128.0, 128.0])

    def filt(padded: np.ndarray, top: int) -> np.ndarray:
        lab = rgb_to_lab(padded)
        copy8 = np.clip(np.rint(lab * scale + offset), 0, 255).astype(np.uint8)
        for channels, strength in ((slice(0, 1), h), (slice(1, 3), h_colour)):
            if strength == 0:
                continue
            plane = np.ascontiguousarray(copy8[..., channels])
            filtered = cv2.fastNlMeansDenoising(
                plane, h=float(strength), templateWindowSize=template_window, searchWindowSize=search_window
            ).reshape(plane.shape)
            change = filtered.astype(np.float32) - plane.astype(np.float32)
            lab[..., channels] += change / scale[channels]
        rgb = lab_to_rgb(lab[top:])
        return np.clip(rgb, 0.0, 1.0, out=rgb)

    # A pixel's filtered value reads patches (template_window) centred within search_window of it.
    return _filter_bands(image, out, template_window // 2 + search_window // 2 + 2, filt)


def stretch_contrast(
    image: np.ndarray, strength: float, low_percent: float = 0.5, high_percent: float = 99.5,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Percentile contrast stretch of the luminance, same linear map on R, G, B (keeps hues).

    The `low_percent`/`high_percent` luminance percentiles move `strength` (in [0, 1]) of the way to
    0 and 1: 1 is a full stretch, 0 changes nothing. Already-full-range images barely change.
    """
    image = check_image(image)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"stretch strength must be in [0, 1], got {strength}")
    if not 0.0 <= low_percent < high_percent <= 100.0:
        raise ValueError(f"need 0 <= low_percent < high_percent <= 100, got {low_percent}, {high_percent}")
    lo, hi = _luminance_percentiles(image, (low_percent, high_percent))
    out = _output(image, out)
    if hi - lo < 1e-4 or strength == 0.0:
        out[...] = image
        return out
    new_lo, new_hi = lo * (1.0 - strength), hi + (1.0 - hi) * strength
    gain = (new_hi - new_lo) / (hi - lo)
    step = _band_rows(image.shape[1])
    for start in range(0, image.shape[0], step):
        rows = slice(start, start + step)
        band = (image[rows] - np.float32(lo)) * np.float32(gain) + np.float32(new_lo)
        np.clip(band, 0.0, 1.0, out=out[rows])
    return out


def local_contrast(
    image: np.ndarray, strength: float, clip_limit: float = 2.0, tiles: int = 8, bins: int = 256,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """CLAHE on the Lab L* channel, blended in by `strength` (in [0, 1]); a* and b* are kept.

    Implemented in float (OpenCV's CLAHE needs 8/16-bit and its 16-bit mode ignores the clip limit):
    `tiles`×`tiles` histograms of `bins` bins, each clipped at `clip_limit` × the mean bin count, turned
    into piecewise-linear maps that are evaluated at the exact pixel value and blended bilinearly
    between tile centres, so the output is not quantised to `bins` levels.

    Memory: the Lab image is built in `out` band by band and turned back into RGB in place; only L*
    and its equalised copy are held whole. `out` may be `image` itself; a new array by default.
    """
    image = check_image(image)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"CLAHE strength must be in [0, 1], got {strength}")
    if clip_limit < 1.0 or tiles < 1 or bins < 2:
        raise ValueError(f"need clip_limit >= 1, tiles >= 1, bins >= 2; got {clip_limit}, {tiles}, {bins}")
    out = _output(image, out)
    if strength == 0.0:
        out[...] = image
        return out
    lab = out  # Lab in the output's memory, band by band
    step = _band_rows(image.shape[1])
    for start in range(0, image.shape[0], step):
        rows = slice(start, start + step)
        lab[rows] = rgb_to_lab(image[rows])
    clipped = lab[..., 0] * np.float32(1.0 / 100.0)
    np.clip(clipped, 0.0, 1.0, out=clipped)
    equalised = _clahe(clipped, clip_limit, tiles, bins, out=clipped)  # in place: 4 bytes a pixel less
    for start in range(0, image.shape[0], step):
        rows = slice(start, start + step)
        band = lab[rows]
        light = band[..., 0] * np.float32(1.0 / 100.0)
        band[..., 0] = (light + np.float32(strength) * (equalised[rows] - light)) * np.float32(100.0)
        rgb = lab_to_rgb(band)
        np.clip(rgb, 0.0, 1.0, out=out[rows])
    return out


def adjust_brightness(image: np.ndarray, offset: float, out: np.ndarray | None = None) -> np.ndarray:
    """Add `offset` (in [-1, 1], fraction of full scale) to every channel, clipped to [0, 1]."""
    image = check_image(image)
    if not -1.0 <= offset <= 1.0:
        raise ValueError(f"brightness offset must be in [-1, 1], got {offset}")
    out = _output(image, out)
    np.add(image, np.float32(offset), out=out)
    return np.clip(out, 0.0, 1.0, out=out)


def sharpen(image: np.ndarray, amount: float, sigma: float = 1.0, max_overshoot: float | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """Unsharp mask on the luminance: add `amount` × (Y − Gaussian(Y, sigma)) to R, G and B.

    Sharpening the luminance only avoids coloured halos on edges. With `max_overshoot` each value stays
    within the range of its 3×3 neighbourhood in the input ± `max_overshoot`: edges get steeper, but no
    bright or dark halo (the rim a plain unsharp mask draws around dust and along edges) appears.
    Band by band, with the rows the blur reaches as context (the same values as the whole image at once).
    `out`: where to write the result (may be `image` itself); a new array by default.
    """
    image = check_image(image)
    if amount < 0 or sigma <= 0:
        raise ValueError(f"need amount >= 0 and sigma > 0, got {amount}, {sigma}")
    out = _output(image, out)
    if amount == 0:
        out[...] = image
        return out

    def filt(padded: np.ndarray, top: int) -> np.ndarray:
        gray = to_gray(padded)
        detail = gray - cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        band = padded + (np.float32(amount) * detail)[..., None]
        if max_overshoot is not None:
            box = np.ones((3, 3), np.uint8)
            low = cv2.erode(padded, box, borderType=cv2.BORDER_REFLECT) - np.float32(max_overshoot)
            high = cv2.dilate(padded, box, borderType=cv2.BORDER_REFLECT) + np.float32(max_overshoot)
            band = np.minimum(np.maximum(band, low, out=band), high, out=band)
        band = band[top:]
        return np.clip(band, 0.0, 1.0, out=band)

    # OpenCV's Gaussian kernel for float images reaches 4 sigma; the 3×3 range one row more.
    return _filter_bands(image, out, int(math.ceil(4.0 * sigma)) + 3, filt)


def _luminance_percentiles(image: np.ndarray, percents: tuple[float, ...]) -> tuple[float, ...]:
    """Percentiles of the luminance, read from at most ~1 M pixels at a fixed stride."""
    gray = to_gray(image).ravel()
    gray = gray[:: max(1, gray.size // 1_000_000)]
    return tuple(float(v) for v in np.percentile(gray, percents))


def _clahe(light: np.ndarray, clip_limit: float, tiles: int, bins: int, out: np.ndarray | None = None) -> np.ndarray:
    """Contrast-limited adaptive equalisation of a 2-D float image in [0, 1] (see `local_contrast`).

    `out` may be `light` itself: each chunk is read before its result is written.
    """
    h, w = light.shape
    ty, tx = min(tiles, h), min(tiles, w)
    step = max(1, _CLAHE_CHUNK_PIXELS // w)
    chunks = [slice(start, min(start + step, h)) for start in range(0, h, step)]
    # Histogram of each tile (tiles of equal-ish size, no padding), chunk by chunk to bound memory.
    row_tile = (np.arange(h) * ty) // h
    col_tile = (np.arange(w) * tx) // w
    hist = np.zeros(ty * tx * bins, dtype=np.int64)
    for rows in chunks:
        tile = row_tile[rows, None] * tx + col_tile[None, :]
        level = np.minimum((light[rows] * bins).astype(np.int64), bins - 1)
        hist += np.bincount((tile * bins + level).ravel(), minlength=hist.size)
    hist = hist.reshape(ty * tx, bins).astype(np.float64)
    # Clip each histogram and spread the excess evenly over its bins.
    limit = np.maximum(clip_limit * hist.sum(axis=1, keepdims=True) / bins, 1.0)
    excess = np.maximum(hist - limit, 0.0).sum(axis=1, keepdims=True)
    hist = np.minimum(hist, limit) + excess / bins
    # Map of each tile at the bin edges (0 at 0, cumulative fraction at each upper edge); the value
    # inside a bin is interpolated linearly, so the map is continuous.
    lut = np.zeros((ty * tx, bins + 1), dtype=np.float32)
    lut[:, 1:] = np.cumsum(hist, axis=1) / hist.sum(axis=1, keepdims=True)
    lut = lut.ravel()
    # Each row/column blends the maps of the two nearest tile centres.
    r0, r1, wr = _tile_neighbours(h, ty)
    c0, c1, wc = _tile_neighbours(w, tx)
    out = np.empty_like(light) if out is None else out
    for rows in chunks:
        value = light[rows] * bins
        k = np.minimum(value.astype(np.int64), bins - 1)
        frac = value - k
        wr_rows = wr[rows, None]
        out[rows] = 0.0
        for tile_rows, weight_r in ((r0[rows], 1.0 - wr_rows), (r1[rows], wr_rows)):
            for tile_cols, weight_c in ((c0, 1.0 - wc), (c1, wc)):
                base = (tile_rows[:, None] * tx + tile_cols[None, :]) * (bins + 1) + k
                low = lut[base]
                out[rows] += (low + frac * (lut[base + 1] - low)) * (weight_r * weight_c)
    return out


def _tile_neighbours(n: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of n rows (columns): the tile before and after it, and the weight of the one after."""
    pos = np.clip((np.arange(n) + 0.5) * count / n - 0.5, 0.0, count - 1.0)
    before = np.minimum(np.floor(pos).astype(np.int64), max(count - 2, 0))
    return before, np.minimum(before + 1, count - 1), (pos - before).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Measures, preset choice, and the whole stage
# ---------------------------------------------------------------------------------------------------


def measure_image(
    image: np.ndarray,
    size: int = 512,
    percentiles: tuple[float, float] = (1.0, 99.0),
    cast_method: str = "consensus",
    white_percent: float = 2.0,
) -> dict:
    """Measures that drive the `auto` choice, as a JSON-serialisable dict.

    noise (σ of the luminance, [0, 1] units, full resolution), sharpness (noise-compensated variance of
    the Laplacian at long side <= `size`, 8-bit units), colour_cast with cast_a/cast_b (Lab a*/b* by
    `cast_method`, see `photoarchive.qa.lab_cast`), dynamic_range (`percentiles` of the luminance:
    high − low) with p_low/p_median/p_high, width, height, long_side and megapixels.
    """
    image = check_image(image)
    h, w = image.shape[:2]
    cast_a, cast_b = lab_cast(image, cast_method, white_percent)
    p_low, p_median, p_high = _luminance_percentiles(image, (percentiles[0], 50.0, percentiles[1]))
    return {
        "noise": round(noise_sigma(image), 5),
        "sharpness": round(sharpness(image, size=size), 2),
        "colour_cast": round(math.hypot(cast_a, cast_b), 3),
        "cast_a": round(cast_a, 3),
        "cast_b": round(cast_b, 3),
        "dynamic_range": round(p_high - p_low, 4),
        "p_low": round(p_low, 4),
        "p_median": round(p_median, 4),
        "p_high": round(p_high, 4),
        "width": int(w),
        "height": int(h),
        "long_side": int(max(h, w)),
        "megapixels": round(h * w / 1e6, 4),
    }


def _badness(value: float, thresholds: dict) -> float:
    """Place a measure on a 0–3 scale: 1 at the `detail` threshold, 2 at `strong` (either direction)."""
    detail, strong = float(thresholds["detail"]), float(thresholds["strong"])
    if detail == strong:
        raise ValueError(f"auto thresholds need detail != strong, got {thresholds}")
    return min(max(1.0 + (value - detail) / (strong - detail), 0.0), 3.0)


def _describe(measure: str, value: float, thresholds: dict, level: int) -> str:
    template, action = _MEASURE_TEXT[measure]
    name = PRESETS[level]
    worse_is_higher = float(thresholds["strong"]) > float(thresholds["detail"])
    threshold = float(thresholds[name])
    sign = ">" if worse_is_higher else "<"
    threshold_text = f"{threshold:.3f}" if measure == "noise" else f"{threshold:g}"
    return f"{template.format(value)} {sign} {threshold_text} → {name} {action}"


def choose_preset(measures: dict, cfg: dict) -> tuple[str, list[str]]:
    """Preset for config["enhance"] `cfg`: the configured one, or for `auto` the worst measure's level.

    Each measure in cfg["auto"] (noise, sharpness, dynamic_range, colour_cast) has a `detail` and a
    `strong` threshold; crossing one asks for that preset. Reasons quote the value and the threshold.
    """
    preset = cfg["preset"]
    if preset != "auto":
        if preset not in PRESETS:
            raise ValueError(f"enhance.preset must be 'auto' or one of {PRESETS}, got {preset!r}")
        return preset, [f"preset '{preset}' set in config"]
    level, reasons, clean = 0, [], []
    for measure, thresholds in cfg["auto"].items():
        if measure not in _MEASURE_TEXT:
            raise ValueError(f"enhance.auto.{measure}: unknown measure, use one of {tuple(_MEASURE_TEXT)}")
        value = float(measures[measure])
        measure_level = min(int(_badness(value, thresholds)), 2)
        if measure_level:
            reasons.append(_describe(measure, value, thresholds, measure_level))
        else:
            clean.append(_MEASURE_TEXT[measure][0].format(value).replace(" (faded)", ""))
        level = max(level, measure_level)
    if not reasons:
        reasons.append(f"clean scan ({', '.join(clean)}) → natural")
    return PRESETS[level], reasons


def choose_params(preset: str, measures: dict, cfg: dict, *, adapt: bool = False) -> tuple[dict, list[str]]:
    """Knob values (0–100) for `preset`, with reasons for any adjustment.

    The middle of each configured range; with `adapt` (the `auto` preset) the knob is placed inside the
    range by the measure that drives it (denoise: noise, sharpen: sharpness, strength: the worse of
    dynamic range and colour cast), at 0 when the measure is below the preset's band and 1 above it.
    Values in cfg["overrides"] win over both.
    """
    ranges = cfg["presets"][preset]
    level = PRESETS.index(preset)
    knobs, reasons = {}, []
    for knob in KNOBS:
        low, high = (float(v) for v in ranges[knob])
        if low > high:
            raise ValueError(f"enhance.presets.{preset}.{knob}: range {ranges[knob]} must be [low, high]")
        drivers = [m for m in _KNOB_DRIVERS[knob] if m in cfg["auto"]] if adapt else []
        position = 0.5
        if drivers:
            badness = max(_badness(float(measures[m]), cfg["auto"][m]) for m in drivers)
            position = min(max(badness - level, 0.0), 1.0)
        knobs[knob] = round(low + position * (high - low), 2)
        if drivers:
            source = " and ".join(drivers)
            reasons.append(f"{knob} {knobs[knob]:.0f} in {preset} range {low:g}–{high:g} (from {source})")
    for knob, value in (cfg.get("overrides") or {}).items():
        if value is None:
            continue
        if knob not in KNOBS or not 0 <= float(value) <= 100:
            raise ValueError(f"enhance.overrides.{knob}={value!r}: knobs are {KNOBS}, values 0–100")
        knobs[knob] = float(value)
        reasons.append(f"{knob} {float(value):g} from enhance.overrides")
    return knobs, reasons


def operation_params(knobs: dict, cfg: dict) -> dict:
    """Keyword arguments of each operation, in the order they run, from the knobs and config["enhance"]."""
    strength = knobs["strength"] / 100.0
    nl, cast, st, cl, us = cfg["nlmeans"], cfg["cast"], cfg["stretch"], cfg["clahe"], cfg["unsharp"]
    h = round(knobs["denoise"] / 100.0 * float(nl["h_max"]), 3)
    return {
        "denoise": {
            "h": h,
            "h_colour": round(h * float(nl["colour_factor"]), 3),
            "template_window": int(nl["template_window"]),
            "search_window": int(nl["search_window"]),
        },
        "cast": {
            "strength": strength,
            "method": str(cast["method"]),
            "max_shift": float(cast["max_shift"]),
            "white_percent": float(cast["white_percent"]),
            "tone": str(cfg.get("tone", "neutral")),
        },
        "stretch": {
            "strength": strength,
            "low_percent": float(st["low_percent"]),
            "high_percent": float(st["high_percent"]),
        },
        "clahe": {
            "strength": strength,
            "clip_limit": float(cl["clip_limit"]),
            "tiles": int(cl["tiles"]),
            "bins": int(cl["bins"]),
        },
        "brightness": {"offset": float(cfg["brightness"])},
        "sharpen": {
            "amount": round(knobs["sharpen"] / 100.0 * float(us["amount_max"]), 4),
            "sigma": float(us["sigma"]),
            "max_overshoot": None if us.get("max_overshoot") is None else float(us["max_overshoot"]),
        },
    }


_OPERATIONS = {
    "denoise": denoise,
    "cast": remove_cast,
    "stretch": stretch_contrast,
    "clahe": local_contrast,
    "brightness": adjust_brightness,
    "sharpen": sharpen,
}


def enhance(image: np.ndarray, cfg: dict, overwrite: bool = False) -> tuple[np.ndarray, dict]:
    """Enhance one scan with config["enhance"] `cfg`; return the image and a JSON-serialisable record.

    With `overwrite`, a float32 `image` is enhanced in its own memory (the caller no longer needs the
    input): a 100 MP scan then needs one float image, not two.

    Record: requested (cfg preset), preset (the one used), reasons, knobs (0–100), parameters (each
    operation's exact keyword arguments, in the order they ran) and measures_before. It holds no
    timings, so the same input gives the same record.
    """
    started = time.perf_counter()
    require_keys(cfg, ENHANCE_KEYS, "enhance")
    image = check_image(image)
    measure_cfg = cfg["measure"]
    measures = measure_image(
        image,
        size=int(measure_cfg["size"]),
        percentiles=tuple(measure_cfg["percentiles"]),
        cast_method=cfg["cast"]["method"],
        white_percent=float(cfg["cast"]["white_percent"]),
    )
    tone = str(cfg.get("tone", "neutral"))
    if tone not in TONES:
        raise ValueError(f"enhance.tone must be one of {TONES}, got {tone!r}")
    if tone == "keep":
        # A monochrome print's colour is its character, not a cast: auto weighs only the part of the
        # paper's cast that the picture's own tone does not explain (paper chroma beyond mid-tone chroma).
        toned = print_tone(image, float(cfg["cast"]["white_percent"]))
        measures["toned"] = toned
        if toned["monochrome"]:
            beyond = math.hypot(toned["paper_a"], toned["paper_b"]) - math.hypot(toned["mid_a"], toned["mid_b"])
            measures["colour_cast"] = round(min(measures["colour_cast"], max(beyond, 0.0)), 3)
    preset, reasons = choose_preset(measures, cfg)
    knobs, knob_reasons = choose_params(preset, measures, cfg, adapt=cfg["preset"] == "auto")
    parameters = operation_params(knobs, cfg)
    # One working image: the first operation writes it, the others change it in place, band by band.
    out = image if overwrite else np.empty_like(image)
    keep_chroma = tone == "keep" and measures.get("toned", {}).get("monochrome", False)
    chroma = None
    source = image
    for name, operation in _OPERATIONS.items():
        operation(source, **parameters[name], out=out)
        source = out
        if name == "cast" and keep_chroma:
            chroma = np.empty(out.shape[:2] + (2,), np.float32)
            step = _band_rows(out.shape[1])
            for start in range(0, out.shape[0], step):
                chroma[start:start + step] = rgb_to_lab(out[start:start + step])[..., 1:]
    if chroma is not None:
        # The contrast steps scale R, G and B alike, which would saturate a toned print: its tone is
        # the one left after the paper was cleaned, whatever the new lightness.
        def restore(lab: np.ndarray, rows: slice) -> None:
            lab[..., 1:] = chroma[rows]

        _lab_bands(out, out, restore)
        reasons = reasons + ["monochrome print: its tone is kept (enhance.tone keep)"]
    log.info("enhance: %s (%s) in %.2f s", preset, "; ".join(reasons), time.perf_counter() - started)
    record = {
        "requested": cfg["preset"],
        "preset": preset,
        "reasons": reasons + knob_reasons,
        "knobs": knobs,
        "parameters": parameters,
        "measures_before": measures,
        "tone_kept": bool(keep_chroma),
    }
    return out, record


# metadata.csv columns that override a photo's enhance settings; empty cells keep the config value.
CATALOGUE_COLUMNS = {"enhance_tone": "tone"}


def catalogue_overrides(row: dict) -> dict:
    """Per-photo overrides of config["enhance"] from a metadata.csv row (`enhance_tone`: keep | neutral;
    `enhance_preset`: auto or a preset name)."""
    out = {}
    preset = str(row.get("enhance_preset") or "").strip().lower()
    if preset:
        if preset != "auto" and preset not in PRESETS:
            raise ValueError(f"metadata.csv enhance_preset={preset!r}: use auto or one of {PRESETS}")
        out["preset"] = preset
    value = str(row.get("enhance_tone") or "").strip().lower()
    if value:
        if value not in TONES:
            raise ValueError(f"metadata.csv enhance_tone={value!r}: use one of {TONES}")
        out["tone"] = value
    return out
