"""Matting: an alpha matte and foreground colours of the person in a photo.

Two backends, picked by ``config["matting"]["backend"]``:

- ``bshm``: the public BSHM portrait-matting network (see `photoarchive.models.bshm`), run on a copy whose
  long side is capped at ``max_side``. The published matte is the model's alpha, only brought back to
  full resolution by a guided filter.
- ``classical``: no matting weights. A GrabCut seed prior (see "Person prior" below), GrabCut for a coarse
  segmentation on a ``work_side`` copy, closed-form matting (Levin et al. 2008, via pymatting) in a
  narrow unknown band on a ``matte_side`` copy.
- ``auto`` (default): ``bshm`` when the model file exists, else ``classical``; the choice is recorded.

Both backends share the last two steps: guided-filter upsampling of the alpha to full resolution (the
fast guided filter of He & Sun 2015, colour guide = the full-resolution image), and foreground colours by
pymatting's multilevel foreground estimation, refined at full resolution.

Person prior of the classical backend (``person_prior``):

- ``segmenter`` (default): the soft person mask of MediaPipe's selfie segmenter (`photoarchive.person`,
  a 250 KB model inside the mediapipe wheel; loaded once per job), run on the whole photo and on a crop
  around each face. Confident mask (>= ``person_fg_level``, eroded) seeds definite foreground, the rest of
  the mask (>= ``person_threshold``) probable foreground, a band around it and faint mask
  (>= ``person_bg_level``) probable background, the remainder definite background. Faces still add their
  face core (definite) and head/hair ellipse (probable). With faces, the mask is used when it covers at
  least ``person_min_fraction`` of the photo or half of a face box (else the faces prior); a person is
  found. Without faces, a person is found when the mask covers at least ``person_min_fraction`` of the
  photo with a mean certainty (`mask_confidence`) of at least ``person_min_confidence``, so a person
  whose face was missed gets a matte and ``person_found`` True (QA's "person but no face" rule). If
  the model file or its runtime is missing, the faces prior is used and a note says so.
- ``faces``: the older prior from face boxes alone (a person lies below and around a face); with no face
  boxes the alpha is all zeros and ``person_found`` is False.

The selfie segmenter was trained on photos that always hold a person: on a photo without one it can
mark a dominant central object as a person. Its guesses are mostly hesitant (the confidence rule drops a
cup and textures), but a close-up of a cat is segmented as surely as a person. Paper and text stay empty.

The bshm backend runs the network regardless and sets ``person_found`` when at least
``min_person_fraction`` of the image has alpha >= 0.5 (the segmenter is not loaded).

Paths: ``model`` is used as is when absolute; a relative path is resolved against the parent of
``models_dir`` (the working directory of the pipeline), so the default ``models/bshm.onnx`` means
``<models_dir>/bshm.onnx`` for the usual ``models_dir: models``.

pymatting JIT-compiles on first import (about a minute): it is imported only when a matte is computed.
Set ``NUMBA_CACHE_DIR`` to a kept folder so that this happens once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from photoarchive.models.bshm import TF2ONNX_COMMAND, BSHMModel
from photoarchive.person import PACKAGED as PACKAGED_PERSON_MODEL
from photoarchive.person import PersonSegmenter, box_coverage, mask_confidence, mask_coverage
from photoarchive.settings import schema_defaults

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "bshm", "classical")
PERSON_PRIORS = ("segmenter", "faces")
_IGNORED_KEYS = {"activate"}  # the workflow's own switch for the stage; not a matting parameter

# Defaults of config["matting"], from config.schema.yaml (documented in config.yaml).
DEFAULTS: dict = schema_defaults("matting")

# Person prior around a face box of width w and height h, centre (cx, cy), chin at y1. Fractions of w/h.
_FACE_CORE = (0.32, 0.42)  # definite foreground: ellipse half-axes inside the face
_HEAD_PROBABLE = (0.80, 0.85, -0.15)  # probable foreground: head+hair ellipse half-axes, centre shift (h)
_HEAD_ENVELOPE = (1.40, 1.45, -0.20)  # beyond this ellipse (and the body envelope) is definite background
_NECK_CORE = (0.22, 0.9)  # definite: neck half-width (w), from the face centre down to chin+0.9h
_TORSO_CORE = (0.55, 2.6)  # definite: torso core widening to this half-width (w), down to chin+2.6h
_BODY_PROBABLE = (0.6, 2.2, 2.8)  # probable: half-width at the chin, at chin+1h, at the image bottom (w)
_BODY_ENVELOPE = (1.2, 3.6, 5.0)  # envelope: half-widths likewise (w)
_MIN_FACE_PX = 4.0  # face boxes narrower than this (work pixels) are ignored as noise
_MAX_HOLE_FRACTION = 1 / 300  # enclosed background holes smaller than this share of the image are filled
_FG_LEVEL = 0.9999  # pymatting's trimap_split treats >= 0.9 as foreground; we use exact 0 / 0.5 / 1
_MASK_ERODE = 0.01  # segmenter prior: definite foreground is eroded by this share of the work long side
_MASK_BAND = 0.03  # segmenter prior: probable background reaches this share of the long side beyond the mask
# GrabCut labels ordered from background to foreground, for merging priors by "most foreground wins".
_RANK = {cv2.GC_BGD: 0, cv2.GC_PR_BGD: 1, cv2.GC_PR_FGD: 2, cv2.GC_FGD: 3}
_BY_RANK = np.array([cv2.GC_BGD, cv2.GC_PR_BGD, cv2.GC_PR_FGD, cv2.GC_FGD], np.uint8)


@dataclass
class Matte:
    """Result of `Matter.matte` for one photo."""

    alpha: np.ndarray  # H×W float32 [0, 1], full resolution
    foreground: np.ndarray  # H×W×3 float32 RGB [0, 1], estimated foreground colours
    backend: str  # "bshm" | "classical": what actually ran
    model_file: str | None  # path of the model file used, None for classical
    model_sha256: str | None
    person_found: bool  # False for photos with no person (documents, landscapes)
    notes: list[str] = field(default_factory=list)  # human-readable notes
    model_runtime: str | None = None  # "onnxruntime" | "tensorflow" for bshm, None for classical
    seconds: float = 0.0  # wall time of `Matter.matte`
    # What the person decision and the classical prior came from: "bshm" | "segmenter" | "faces" |
    # "segmenter+faces" | "none" (classical, nothing found).
    person_source: str = "none"
    person_coverage: float | None = None  # segmenter: share of the photo its mask covers (person_threshold)
    person_model: dict | None = None  # segmenter provenance (`PersonSegmenter.info`), None when not used


# --------------------------------------------------------------------------------------------------------
# Shared helpers


def resize_long_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale `image` (area interpolation) so its long side is at most `max_side`; returns (copy, scale).

    An image already small enough is returned as is, with scale 1.0.
    """
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² window, mirrored borders."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_upsample(
    alpha: np.ndarray,
    image: np.ndarray,
    radius: int,
    eps: float,
    guide: np.ndarray | None = None,
) -> np.ndarray:
    """Bring a low-resolution `alpha` (h×w) to the resolution of `image` (H×W×3) with a fast guided filter.

    The linear coefficients of a colour guided filter (He et al.) are fitted at low resolution between
    `guide` (the image at h×w; made from `image` when None) and `alpha`, smoothed, upsampled bilinearly,
    and applied to the full-resolution image, so alpha edges follow the full-resolution image (He & Sun,
    "Fast Guided Filter", 2015). `radius` is in low-resolution pixels. When `alpha` already has the image's
    size it is returned unchanged (clipped): the filter only serves to upsample.
    """
    H, W = image.shape[:2]
    h, w = alpha.shape
    p = np.ascontiguousarray(alpha, dtype=np.float32)
    if (h, w) == (H, W):
        return np.clip(p, 0.0, 1.0)
    if guide is None:
        guide = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    guide = np.ascontiguousarray(guide, dtype=np.float32)
    if guide.shape[:2] != (h, w):
        raise ValueError(f"guide shape {guide.shape[:2]} differs from alpha shape {(h, w)}")

    mean_i = _box(guide, radius)  # h×w×3
    mean_p = _box(p, radius)
    cov_ip = _box(guide * p[:, :, None], radius) - mean_i * mean_p[:, :, None]
    sigma = np.empty((h, w, 3, 3), dtype=np.float64)
    for i in range(3):
        for j in range(i, 3):
            cov = _box(guide[:, :, i] * guide[:, :, j], radius) - mean_i[:, :, i] * mean_i[:, :, j]
            sigma[:, :, i, j] = cov
            sigma[:, :, j, i] = cov
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[:, :, :, None].astype(np.float64))[:, :, :, 0].astype(np.float32)
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    mean_a = _box(a, radius)
    mean_b = _box(b, radius)

    # q = mean_a · I + mean_b at full resolution, one channel at a time to bound memory on big scans.
    q = cv2.resize(mean_b, (W, H), interpolation=cv2.INTER_LINEAR)
    for c in range(3):
        term = cv2.resize(np.ascontiguousarray(mean_a[:, :, c]), (W, H), interpolation=cv2.INTER_LINEAR)
        term *= image[:, :, c]  # in place: one full-size temporary, not two
        q += term
        del term
    return np.clip(q, 0.0, 1.0, out=q)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, max_side: int) -> np.ndarray:
    """Foreground colours F (H×W×3 float32 in [0, 1]) such that image ≈ alpha·F + (1 − alpha)·B.

    pymatting's multilevel estimator runs on a copy capped at `max_side`. At full resolution the
    compositing residual r = I − αF − (1 − α)B is then split between F and B with the least change
    (F += α·r / (α² + (1 − α)²)), which restores full-resolution detail; where alpha is 1, F equals the image.
    """
    from pymatting import estimate_foreground_ml

    H, W = alpha.shape
    small, scale = resize_long_side(image, max_side)
    if scale == 1.0:
        fg = estimate_foreground_ml(image, alpha)
        return np.clip(fg, 0.0, 1.0).astype(np.float32, copy=False)
    h, w = small.shape[:2]
    alpha_small = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA)
    fg_small, bg_small = estimate_foreground_ml(small, alpha_small, return_background=True)
    fg = cv2.resize(np.asarray(fg_small, dtype=np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    rows = max(1, (1 << 22) // max(1, W))  # about 4 M pixels per strip bounds the temporaries
    for y in range(0, H, rows):
        a = alpha[y : y + rows]
        f = fg[y : y + rows]
        opaque = a >= 1.0
        np.copyto(f, image[y : y + rows], where=opaque[:, :, None])  # opaque: F is the image
        sy, sx = np.nonzero((a > 0.0) & ~opaque)  # soft pixels: split the compositing residual
        if sy.size == 0:
            continue
        a_soft = a[sy, sx][:, None]
        f_soft = f[sy, sx]
        b_soft = _bilinear_at(np.asarray(bg_small, dtype=np.float32), sy + y, sx, (H, W))
        residual = image[y : y + rows][sy, sx] - a_soft * f_soft - (1.0 - a_soft) * b_soft
        f_soft += a_soft * residual / (a_soft * a_soft + (1.0 - a_soft) ** 2)
        f[sy, sx] = np.clip(f_soft, 0.0, 1.0)
    return np.clip(fg, 0.0, 1.0, out=fg)


def _bilinear_at(small: np.ndarray, ys: np.ndarray, xs: np.ndarray, full_shape: tuple[int, int]) -> np.ndarray:
    """Values of `small` (h×w×C) upsampled bilinearly to `full_shape`, only at pixels (ys, xs).

    Same pixel-centre alignment as cv2.resize(INTER_LINEAR), without building the full-size array.
    """
    h, w = small.shape[:2]
    H, W = full_shape
    v = np.clip((ys + 0.5) * (h / H) - 0.5, 0.0, h - 1.0)
    u = np.clip((xs + 0.5) * (w / W) - 0.5, 0.0, w - 1.0)
    y0 = np.floor(v).astype(np.intp)
    x0 = np.floor(u).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    fy = (v - y0)[:, None].astype(np.float32)
    fx = (u - x0)[:, None].astype(np.float32)
    top = small[y0, x0] * (1 - fx) + small[y0, x1] * fx
    bottom = small[y1, x0] * (1 - fx) + small[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


# --------------------------------------------------------------------------------------------------------
# Classical backend steps


def _ellipse(mask: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], value: int) -> None:
    cv2.ellipse(
        mask,
        (round(centre[0]), round(centre[1])),
        (max(1, round(axes[0])), max(1, round(axes[1]))),
        0.0,
        0.0,
        360.0,
        value,
        thickness=-1,
    )


def _trapezoid(
    mask: np.ndarray, cx: float, y_top: float, y_bottom: float, half_top: float, half_bottom: float, value: int
) -> None:
    if y_bottom <= y_top:
        return
    pts = np.array(
        [
            [cx - half_top, y_top],
            [cx + half_top, y_top],
            [cx + half_bottom, y_bottom],
            [cx - half_bottom, y_bottom],
        ]
    )
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], value)


def person_prior(
    shape: tuple[int, int], face_boxes: list[tuple[float, float, float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut labels (H×W uint8: GC_BGD / GC_PR_BGD / GC_PR_FGD / GC_FGD) for people under `face_boxes`.

    Per face: definite foreground in the face and a neck/torso core below it; probable foreground over head,
    hair and a body widening towards the bottom of the image; probable background in a wider envelope;
    definite background elsewhere. Also returns the head zones (H×W bool) where hair makes edges wide.
    Boxes are in the pixels of `shape`.
    """
    h, w = shape
    envelope = np.zeros((h, w), np.uint8)
    probable = np.zeros((h, w), np.uint8)
    core = np.zeros((h, w), np.uint8)
    head = np.zeros((h, w), np.uint8)
    bottom = float(h - 1)
    for x0, y0, x1, y1 in face_boxes:
        fw, fh = x1 - x0, y1 - y0
        if fw < _MIN_FACE_PX or fh < _MIN_FACE_PX:
            continue
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        _ellipse(core, (cx, cy), (_FACE_CORE[0] * fw, _FACE_CORE[1] * fh), 1)
        neck_end = y1 + _NECK_CORE[1] * fh
        _trapezoid(core, cx, cy, neck_end, _NECK_CORE[0] * fw, _NECK_CORE[0] * fw, 1)
        _trapezoid(
            core,
            cx,
            neck_end,
            min(bottom, y1 + _TORSO_CORE[1] * fh),
            _NECK_CORE[0] * fw,
            _TORSO_CORE[0] * fw,
            1,
        )
        hx, hy, hs = _HEAD_PROBABLE
        _ellipse(probable, (cx, cy + hs * fh), (hx * fw, hy * fh), 1)
        _ellipse(head, (cx, cy + hs * fh), (hx * fw * 1.25, hy * fh * 1.25), 1)
        ex, ey, es = _HEAD_ENVELOPE
        _ellipse(envelope, (cx, cy + es * fh), (ex * fw, ey * fh), 1)
        for target, (top, mid, low) in ((probable, _BODY_PROBABLE), (envelope, _BODY_ENVELOPE)):
            y_mid = y1 + fh
            _trapezoid(target, cx, y1 - 0.1 * fh, y_mid, top * fw, mid * fw, 1)
            _trapezoid(target, cx, y_mid, bottom, mid * fw, low * fw, 1)
    labels = np.full((h, w), cv2.GC_BGD, np.uint8)
    labels[envelope > 0] = cv2.GC_PR_BGD
    labels[probable > 0] = cv2.GC_PR_FGD
    labels[core > 0] = cv2.GC_FGD
    return labels, head > 0


def head_prior(shape: tuple[int, int], face_boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """GrabCut labels from faces for the head only: face core definite, head and hair probable foreground,
    a head envelope probable background, definite background elsewhere (the body is left to a mask)."""
    h, w = shape
    labels = np.full((h, w), cv2.GC_BGD, np.uint8)
    for x0, y0, x1, y1 in face_boxes:
        fw, fh = x1 - x0, y1 - y0
        if fw < _MIN_FACE_PX or fh < _MIN_FACE_PX:
            continue
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for (ax, ay, shift), value in ((_HEAD_ENVELOPE, cv2.GC_PR_BGD), (_HEAD_PROBABLE, cv2.GC_PR_FGD)):
            zone = np.zeros((h, w), np.uint8)
            _ellipse(zone, (cx, cy + shift * fh), (ax * fw, ay * fh), 1)
            labels = merge_labels(labels, np.where(zone > 0, value, cv2.GC_BGD).astype(np.uint8))
        core = np.zeros((h, w), np.uint8)
        _ellipse(core, (cx, cy), (_FACE_CORE[0] * fw, _FACE_CORE[1] * fh), 1)
        labels[core > 0] = cv2.GC_FGD
    return labels


def mask_prior(mask: np.ndarray, threshold: float, fg_level: float, bg_level: float) -> np.ndarray:
    """GrabCut labels (H×W uint8) from a soft person mask (H×W float in [0, 1]).

    Definite foreground: mask >= `fg_level`, eroded by about 1 % of the long side (the mask comes from a
    256-pixel model: its edge is not where the photo's edge is). Probable foreground: mask >= `threshold`.
    Probable background: mask >= `bg_level`, or within about 3 % of the long side of the probable
    foreground. Definite background: the rest.
    """
    h, w = mask.shape
    long_side = max(h, w)
    person = (mask >= threshold).astype(np.uint8)
    sure = cv2.erode((mask >= fg_level).astype(np.uint8), _disk(max(1, round(_MASK_ERODE * long_side)))) > 0
    near = cv2.dilate(person, _disk(max(1, round(_MASK_BAND * long_side)))) > 0
    labels = np.full((h, w), cv2.GC_BGD, np.uint8)
    labels[near | (mask >= bg_level)] = cv2.GC_PR_BGD
    labels[person > 0] = cv2.GC_PR_FGD
    labels[sure] = cv2.GC_FGD
    return labels


def merge_labels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the more foreground of two GrabCut label maps (BGD < PR_BGD < PR_FGD < FGD)."""
    rank = np.zeros(256, np.uint8)
    for label, r in _RANK.items():
        rank[label] = r
    return _BY_RANK[np.maximum(rank[a], rank[b])]


def _to_u8(image: np.ndarray) -> np.ndarray:
    """8-bit copy for GrabCut, which only takes CV_8UC3 (an algorithm input, not a file conversion)."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _grabcut(image: np.ndarray, labels: np.ndarray, iters: int) -> np.ndarray:
    """Foreground mask (bool) from GrabCut seeded with `labels`; deterministic (fixed RNG seed)."""
    mask = labels.copy()
    has_bg = bool(np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any())
    has_fg = bool(np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any())
    if iters > 0 and has_bg and has_fg:  # GrabCut needs samples of both sides
        cv2.setRNGSeed(0)
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.grabCut(_to_u8(image), mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK)
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    # Keep the pieces connected to a seed core (drops background blobs GrabCut liked).
    n, comp = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    seeded = np.unique(comp[(labels == cv2.GC_FGD) & fg])
    keep = np.isin(comp, seeded[seeded > 0])
    keep[labels == cv2.GC_FGD] = True
    # Small enclosed holes (specular highlights, badges) go back to foreground; gaps that reach the image
    # border or are large (between arm and body) stay background.
    n, comp, stats, _ = cv2.connectedComponentsWithStats((~keep).astype(np.uint8), connectivity=4)
    h, w = keep.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    inner = (x > 0) & (y > 0) & (x + stats[:, cv2.CC_STAT_WIDTH] < w) & (y + stats[:, cv2.CC_STAT_HEIGHT] < h)
    holes = np.flatnonzero(inner & (stats[:, cv2.CC_STAT_AREA] < keep.size * _MAX_HOLE_FRACTION))
    holes = holes[holes > 0]
    if holes.size:
        keep |= np.isin(comp, holes)
    return keep


def _disk(radius: int) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def make_trimap(fg: np.ndarray, band_px: int, wide_zone: np.ndarray | None, wide_factor: float) -> np.ndarray:
    """Trimap (float64 0 / 0.5 / 1) with an unknown band of half-width `band_px` around the edge of `fg`.

    Inside `wide_zone` (head and hair) the band is `wide_factor` times wider. `band_px` 0 gives a hard
    trimap (no unknown pixels: the closed-form step is skipped).
    """
    if band_px <= 0:
        return fg.astype(np.float64)
    fg8 = fg.astype(np.uint8)
    sure_fg = cv2.erode(fg8, _disk(band_px)) > 0
    maybe = cv2.dilate(fg8, _disk(band_px)) > 0
    if wide_zone is not None and wide_factor > 1.0:
        wide = int(round(band_px * wide_factor))
        sure_fg &= ~wide_zone | (cv2.erode(fg8, _disk(wide)) > 0)
        maybe |= wide_zone & (cv2.dilate(fg8, _disk(wide)) > 0)
    trimap = np.full(fg.shape, 0.5, np.float64)
    trimap[~maybe] = 0.0
    trimap[sure_fg] = 1.0
    return trimap


def closed_form_alpha(image: np.ndarray, trimap: np.ndarray, epsilon: float) -> np.ndarray:
    """Closed-form matting (pymatting) solved only over the bounding box of the unknown band."""
    from pymatting import estimate_alpha_cf

    alpha = (trimap >= _FG_LEVEL).astype(np.float32)
    unknown = (trimap > 0.0) & (trimap < _FG_LEVEL)
    if not unknown.any():
        return alpha
    ys, xs = np.nonzero(unknown)
    pad = 3  # window radius 1 needs neighbours
    y0, y1 = max(0, ys.min() - pad), min(trimap.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(trimap.shape[1], xs.max() + pad + 1)
    crop = np.clip(np.asarray(image[y0:y1, x0:x1], dtype=np.float64), 0.0, 1.0)  # resizing can overshoot 1
    sub = np.ascontiguousarray(trimap[y0:y1, x0:x1])
    if not (sub >= _FG_LEVEL).any() or not (sub <= 0.0).any():
        # Nothing to anchor one side: closed-form matting would be degenerate; keep the coarse mask.
        return alpha
    result = estimate_alpha_cf(crop, sub, laplacian_kwargs={"epsilon": epsilon})
    alpha[y0:y1, x0:x1] = result.astype(np.float32)
    return alpha


# --------------------------------------------------------------------------------------------------------
# The stage


def resolve_model_path(model: str | Path, models_dir: Path) -> Path:
    """Absolute `model` as is; a relative one against the parent of `models_dir` (the pipeline's workdir)."""
    path = Path(model).expanduser()
    if path.is_absolute():
        return path
    return Path(models_dir).parent / path


def matting_model_files(cfg: dict, models_dir: Path) -> list[Path]:
    """The model files a `Matter` with this config loads: the BSHM model (``bshm``, or ``auto`` when the file
    is there); else, with the segmenter prior, the person segmenter when ``person_model`` is a file of the
    user's (the packaged mediapipe model changes only with the package)."""
    cfg = {**DEFAULTS, **{k: v for k, v in cfg.items() if k not in _IGNORED_KEYS}}
    model = resolve_model_path(cfg["model"], Path(models_dir))
    if cfg["backend"] == "bshm" or (cfg["backend"] == "auto" and model.is_file()):
        return [model]
    if cfg["person_prior"] == "segmenter" and str(cfg["person_model"]) != PACKAGED_PERSON_MODEL:
        return [Path(cfg["person_model"]).expanduser()]
    return []


class Matter:
    """Matting for one job: pick the backend once (and load the model), then `matte` each photo.

    Args:
        cfg (dict): ``config["matting"]`` (keys and defaults: `DEFAULTS`).
        models_dir (Path): ``config["models_dir"]``; relative ``model`` paths resolve against its parent.
    """

    def __init__(self, cfg: dict, models_dir: Path) -> None:
        unknown = set(cfg) - set(DEFAULTS) - _IGNORED_KEYS
        if unknown:
            raise ValueError(f"unknown matting config keys: {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.cfg = {**DEFAULTS, **{k: v for k, v in cfg.items() if k not in _IGNORED_KEYS}}
        requested = self.cfg["backend"]
        if requested not in BACKENDS:
            raise ValueError(f"matting.backend must be one of {BACKENDS}, got {requested!r}")
        self.model_path = resolve_model_path(self.cfg["model"], Path(models_dir))
        self._model: BSHMModel | None = None
        self._setup_notes: list[str] = []

        if requested == "bshm":
            if not self.model_path.is_file():
                raise FileNotFoundError(
                    f"matting.backend is 'bshm' but the model file {self.model_path} does not exist. "
                    f"Put the BSHM model (ModelScope damo/cv_unet_image-matting) there as ONNX, converted "
                    f"once with: {TF2ONNX_COMMAND} (or as its tf_graph.pb with tensorflow installed), point "
                    f"matting.model at it, or set matting.backend to 'auto' or 'classical'."
                )
            self._model = BSHMModel(self.model_path)
        elif requested == "auto":
            if self.model_path.is_file():
                try:
                    self._model = BSHMModel(self.model_path)
                except ImportError as err:
                    logger.warning("matting backend auto: cannot run %s (%s); using classical", self.model_path, err)
                    self._setup_notes.append(f"backend auto: {self.model_path} cannot run here ({err}); used classical")
            else:
                self._setup_notes.append(f"backend auto: no model file at {self.model_path}; used classical")
        self.backend = "bshm" if self._model is not None else "classical"
        logger.info("matting backend %s (requested %s)", self.backend, requested)

        prior = self.cfg["person_prior"]
        if prior not in PERSON_PRIORS:
            raise ValueError(f"matting.person_prior must be one of {PERSON_PRIORS}, got {prior!r}")
        self._segmenter: PersonSegmenter | None = None
        if self.backend == "classical" and prior == "segmenter":  # loaded once per job, never for bshm
            try:
                self._segmenter = PersonSegmenter(
                    self.cfg["person_model"],
                    max_side=int(self.cfg["person_side"]),
                    face_crop=float(self.cfg["person_face_crop"]),
                    tiles=int(self.cfg["person_tiles"]),
                )
            except (ImportError, OSError, ValueError, RuntimeError) as err:
                logger.warning("person segmenter unavailable (%s); the classical prior uses faces only", err)
                self._setup_notes.append(f"person_prior segmenter unavailable ({err}); used the faces prior")

    def matte(self, image: np.ndarray, face_boxes: list[tuple[float, float, float, float]]) -> Matte:
        """Alpha matte and foreground colours of the person in `image` (H×W×3 float32 RGB in [0, 1])."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
        image = np.asarray(image, dtype=np.float32)
        boxes = [tuple(float(v) for v in box) for box in face_boxes]
        for box in boxes:
            if len(box) != 4 or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"face box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
        start = time.perf_counter()
        if self._model is not None:
            result = self._matte_bshm(image, boxes)
        else:
            result = self._matte_classical(image, boxes)
        result.notes[:0] = self._setup_notes
        result.seconds = time.perf_counter() - start
        logger.info(
            "matte %dx%d backend=%s person=%s in %.2f s",
            image.shape[1],
            image.shape[0],
            result.backend,
            result.person_found,
            result.seconds,
        )
        return result

    # -- backends ------------------------------------------------------------------------------------------

    def _matte_bshm(self, image: np.ndarray, boxes: list[tuple[float, ...]]) -> Matte:
        assert self._model is not None
        cfg = self.cfg
        small, scale = resize_long_side(image, int(cfg["max_side"]))
        alpha_small = self._model.predict_alpha(small)
        alpha = guided_upsample(alpha_small, image, int(cfg["guided_radius"]), float(cfg["guided_eps"]), small)
        coverage = float(np.mean(alpha_small >= 0.5))
        person = coverage >= float(cfg["min_person_fraction"])
        notes = [f"bshm on {small.shape[1]}x{small.shape[0]} (scale {scale:.3f}); person coverage {coverage:.3f}"]
        if not person:
            notes.append(
                f"no person: model alpha >= 0.5 covers {coverage:.4f} of the image "
                f"(< min_person_fraction {cfg['min_person_fraction']})"
            )
        elif not boxes:
            notes.append("no face found, but the model found a person")
        foreground = estimate_foreground(image, alpha, int(cfg["foreground_side"]))
        return Matte(
            alpha=alpha,
            foreground=foreground,
            backend="bshm",
            model_file=str(self._model.path),
            model_sha256=self._model.sha256,
            person_found=person,
            notes=notes,
            model_runtime=self._model.runtime,
            person_source="bshm",
            person_coverage=coverage,
        )

    def _matte_classical(self, image: np.ndarray, boxes: list[tuple[float, ...]]) -> Matte:
        cfg = self.cfg
        H, W = image.shape[:2]
        work, ws = resize_long_side(image, int(cfg["work_side"]))
        work_boxes = [tuple(v * ws for v in b) for b in boxes]
        notes: list[str] = []

        # 0. Person prior: the segmenter's mask (whole photo + face crops) and/or the faces.
        mask = None
        coverage = None
        if self._segmenter is not None:
            mask_small = self._segmenter.person_mask(image, boxes)
            threshold = float(cfg["person_threshold"])
            coverage = mask_coverage(mask_small, threshold)
            confidence = mask_confidence(mask_small, threshold)
            if boxes:  # faces say there is a person; use the mask if it agrees somewhere
                to_mask = mask_small.shape[1] / W
                faces_covered = max(box_coverage(mask_small, b, to_mask, threshold) for b in boxes)
                use_mask = coverage >= float(cfg["person_min_fraction"]) or faces_covered >= 0.5
            else:  # the mask alone must be large and sure enough
                use_mask = coverage >= float(cfg["person_min_fraction"]) and (
                    confidence >= float(cfg["person_min_confidence"])
                )
            notes.append(
                f"person segmenter: mask covers {coverage:.3f} of the photo (person_min_fraction "
                f"{cfg['person_min_fraction']}), confidence {confidence:.2f} (person_min_confidence "
                f"{cfg['person_min_confidence']}, needed without a face): "
                + ("mask used as prior" if use_mask else "mask not used")
            )
            if use_mask:
                mask = cv2.resize(mask_small, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_LINEAR)
        if mask is not None:
            labels = mask_prior(
                mask, float(cfg["person_threshold"]), float(cfg["person_fg_level"]), float(cfg["person_bg_level"])
            )
            if boxes:
                labels = merge_labels(labels, head_prior(work.shape[:2], work_boxes))
                source = "segmenter+faces"
            else:
                source = "segmenter"
                notes.append("no face found, but the person segmenter found a person")
        elif boxes:
            labels, _ = person_prior(work.shape[:2], work_boxes)
            source = "faces"
        else:
            why = ("the person segmenter found no person" if self._segmenter is not None
                   else "no face found: the faces prior seeds from faces")
            return Matte(
                alpha=np.zeros((H, W), np.float32),
                foreground=image.copy(),
                backend="classical",
                model_file=None,
                model_sha256=None,
                person_found=False,
                notes=notes + [f"no person: matte is empty ({why})"],
                person_source="none",
                person_coverage=coverage,
                person_model=self._segmenter.info() if self._segmenter is not None else None,
            )

        # 1. Coarse segmentation: GrabCut seeded by the prior on a small copy.
        fg_work = _grabcut(work, labels, int(cfg["grabcut_iters"]))

        # 2. Closed-form alpha in a narrow band on the matting copy.
        mat, ms = resize_long_side(image, int(cfg["matte_side"]))
        mh, mw = mat.shape[:2]
        fg_mat = cv2.resize(fg_work.astype(np.float32), (mw, mh), interpolation=cv2.INTER_LINEAR) >= 0.5
        head = person_prior((mh, mw), [tuple(v * ms for v in b) for b in boxes])[1] if boxes else None
        trimap = make_trimap(fg_mat, int(cfg["unknown_band_px"]), head, float(cfg["hair_band_factor"]))
        alpha_mat = closed_form_alpha(mat, trimap, float(cfg["cf_epsilon"]))

        # 3. Full resolution.
        alpha = guided_upsample(alpha_mat, image, int(cfg["guided_radius"]), float(cfg["guided_eps"]), mat)
        foreground = estimate_foreground(image, alpha, int(cfg["foreground_side"]))
        unknown = int(np.count_nonzero((trimap > 0) & (trimap < _FG_LEVEL)))
        notes.append(
            f"classical ({source} prior): {len(boxes)} face(s); grabcut on {work.shape[1]}x{work.shape[0]}, "
            f"closed-form on {mw}x{mh} with {unknown} unknown pixels"
        )
        return Matte(
            alpha=alpha,
            foreground=foreground,
            backend="classical",
            model_file=None,
            model_sha256=None,
            person_found=True,
            notes=notes,
            person_source=source,
            person_coverage=coverage,
            person_model=self._segmenter.info() if self._segmenter is not None else None,
        )
