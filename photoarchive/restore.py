"""Face restorer backends (``classical``, ``gpen``) and the style controls around them.

A job builds its restorers once with `build_restorer(cfg, models_dir)`, which returns a
`RestorerSelector`: `restorer_for(image_shape)` picks GPEN-512 or GPEN-1024 per photo (``model:
auto``) and loads each model at most once. `restore_faces` then, for every face: aligns it
(`photoarchive.faces.align_face`), optionally degrades the crop (``degradation_scale``), restores it,
applies ``skin_protection`` in crop space, pastes all faces back with a soft mask scaled by
``strength`` × ``region_weights`` (`photoarchive.faces.paste_faces`), and finally puts back
``grain`` in photo pixels. Where that mask is 0 the photo keeps its input values bit for bit, so
``strength: 0`` returns the photo unchanged.

Region weights use soft ellipses around the template's eyes, lips, cheeks and forehead, defined in
aligned-crop space; a face-parsing network (e.g. facexlib's ParseNet/BiSeNet) would give sharper
regions and could replace `region_masks` later.

Arrays are float32 H×W×3 RGB in [0, 1].
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from photoarchive.faces import (
    Face,
    align_face,
    alignment_template,
    as_rgb,
    crop_scale,
    paste_faces,
    resolve_device,
)
from photoarchive.ingest import file_sha256
from photoarchive.settings import schema_defaults

log = logging.getLogger(__name__)

__all__ = [
    "CLASSICAL_DEFAULTS",
    "CONTROL_DEFAULTS",
    "RESTORE_DEFAULTS",
    "ClassicalRestorer",
    "GPENRestorer",
    "Restorer",
    "RestorerSelector",
    "build_restorer",
    "catalogue_overrides",
    "degrade",
    "estimate_noise",
    "face_provenance",
    "guard_identity",
    "protect_skin",
    "region_masks",
    "region_weight_map",
    "reinject_grain",
    "resolve_controls",
    "restore_faces",
]

REGIONS = ("eyes", "lips", "cheeks", "forehead", "other")

# Defaults from config.schema.yaml (documented in config.yaml). The style controls a catalogue row may
# override per photo are the section's top-level knobs below.
RESTORE_DEFAULTS: dict[str, Any] = schema_defaults("restore")
CONTROL_DEFAULTS: dict[str, Any] = {k: RESTORE_DEFAULTS[k] for k in
                                    ("strength", "skin_protection", "grain", "region_weights", "degradation_scale")}
CLASSICAL_DEFAULTS: dict[str, Any] = RESTORE_DEFAULTS["classical"]

DOWNLOAD_HINT = "python -m photoarchive.download {name}"


# ------------------------------------------------------------------------------------------- backends


def _check_crop(crop: np.ndarray) -> np.ndarray:
    crop = np.asarray(crop, dtype=np.float32)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
        raise ValueError(f"expected an S×S×3 RGB crop, got shape {crop.shape}")
    return crop


class Restorer(ABC):
    """A face restorer: aligned S×S×3 float RGB crop in [0, 1] → restored crop, same size and range.

    Attributes:
        name: ``"classical"`` or ``"gpen"``.
        size: side S of the aligned crop it expects.
        model_file: weights file name, or None.
        model_sha256: hex digest of the weights file, or None.
    """

    name: str = ""
    size: int = 512
    model_file: str | None = None
    model_sha256: str | None = None

    @abstractmethod
    def restore_crop(self, crop: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Restore one aligned crop; ``scale`` = crop pixels per photo pixel (a hint, may be ignored)."""

    def restore_crops(self, crops: list[np.ndarray], scales: list[float] | None = None) -> list[np.ndarray]:
        """Restore several crops (backends may batch)."""
        scales = scales or [1.0] * len(crops)
        return [self.restore_crop(c, s) for c, s in zip(crops, scales, strict=True)]

    def info(self) -> dict[str, Any]:
        """What ran, for the record."""
        return {"backend": self.name, "size": self.size, "model_file": self.model_file,
                "model_sha256": self.model_sha256}


class ClassicalRestorer(Restorer):
    """Fallback without weights: bilateral denoise, unsharp mask on L, coarse unsharp (local contrast).

    It cannot invent detail; it only cleans and crispens what is there. The work happens at the
    face's native resolution: a crop that was enlarged from a small face is shrunk back first (using
    the ``scale`` hint), and only the change is enlarged again and added to the crop.

    Args:
        cfg (dict | None): ``restore.classical`` (see `CLASSICAL_DEFAULTS`). Default: None.
        size (int): crop side it works at (same alignment as GPEN-512). Default: 512.
    """

    name = "classical"

    def __init__(self, cfg: dict[str, Any] | None = None, size: int = 512):
        self.cfg = {**CLASSICAL_DEFAULTS, **(cfg or {})}
        self.size = int(size)
        for key in ("denoise", "local_contrast"):
            if not 0.0 <= float(self.cfg[key]) <= 1.0:
                raise ValueError(f"restore.classical.{key} must be in [0, 1], got {self.cfg[key]!r}")
        if self.cfg["denoise_sigma"] != "auto" and float(self.cfg["denoise_sigma"]) <= 0:
            raise ValueError("restore.classical.denoise_sigma must be 'auto' or > 0")

    def restore_crop(self, crop: np.ndarray, scale: float = 1.0) -> np.ndarray:
        crop = _check_crop(crop)
        size = crop.shape[0]
        native = int(round(min(size, max(64, size / max(float(scale), 1e-6)))))
        if native < size:
            small = cv2.resize(crop, (native, native), interpolation=cv2.INTER_AREA)
            delta = self._process(small) - small
            delta = cv2.resize(delta, (size, size), interpolation=cv2.INTER_CUBIC)
            return np.clip(crop + delta, 0.0, 1.0).astype(np.float32)
        return self._process(crop)

    def _process(self, x: np.ndarray) -> np.ndarray:
        size = x.shape[0]
        # 1. Edge-preserving denoise; the colour sigma follows the measured noise when "auto".
        amount = float(self.cfg["denoise"])
        if amount > 0:
            sigma_c = self.cfg["denoise_sigma"]
            sigma_c = float(np.clip(4.0 * estimate_noise(x), 0.02, 0.3)) if sigma_c == "auto" else float(sigma_c)
            smooth = cv2.bilateralFilter(x, d=0, sigmaColor=sigma_c, sigmaSpace=2.0)
            x = x + amount * (smooth - x)
        lab = cv2.cvtColor(np.clip(x, 0.0, 1.0), cv2.COLOR_RGB2Lab)
        lum = lab[:, :, 0] / 100.0
        # 2. Detail: unsharp mask on luminance only (no colour fringes), fine scale.
        amount = float(self.cfg["sharpen"])
        if amount > 0:
            sigma = max(1.0, 1.5 * size / 512.0)
            lum = lum + amount * (lum - cv2.GaussianBlur(lum, (0, 0), sigmaX=sigma))
        # 3. Local contrast ("clarity"): the same on a coarse scale, ~6 % of the face crop.
        amount = float(self.cfg["local_contrast"])
        if amount > 0:
            lum = lum + amount * (lum - cv2.GaussianBlur(lum, (0, 0), sigmaX=0.06 * size))
        lab[:, :, 0] = np.clip(lum, 0.0, 1.0) * 100.0
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0).astype(np.float32)


def estimate_noise(image: np.ndarray) -> float:
    """Gaussian noise sigma of an image in [0, 1] (Immerkær 1996, mean over channels)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    h, w = image.shape[:2]
    if h < 3 or w < 3:
        return 0.0
    total = 0.0
    for c in range(image.shape[2]):
        response = cv2.filter2D(image[:, :, c], -1, kernel, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
        total += float(np.abs(response).sum()) * math.sqrt(math.pi / 2.0) / (6.0 * (w - 2) * (h - 2))
    return total / image.shape[2]


class GPENRestorer(Restorer):
    """GPEN-BFR through `photoarchive.models.gpen.load_gpen`, pre/post-processing as the official wrapper.

    Input RGB [0, 1] → (x − 0.5) / 0.5 → N×3×S×S float32; output y·0.5 + 0.5, clamped to [0, 1].
    The official wrapper then truncates to uint8; we keep float (quantisation happens once, with
    rounding, when the photo is written).

    Args:
        model_path (str | Path): GPEN checkpoint.
        device (str): ``auto`` | ``cpu`` | ``cuda``. Default: "auto".
        fp16 (bool): float16 autocast, only used on CUDA. Default: False.
        batch_size (int): crops per forward. Default: 1.
        seed (int): `torch.manual_seed` before each batch (GPEN draws no random numbers; kept so
            any future stochastic layer stays reproducible). Default: 0.
    """

    name = "gpen"

    def __init__(self, model_path: str | Path, device: str = "auto", fp16: bool = False, batch_size: int = 1,
                 seed: int = 0):
        import torch

        from photoarchive.models.gpen import load_gpen

        self.path = Path(model_path)
        self.device = resolve_device(device) if isinstance(device, str) else torch.device(device)
        self.fp16 = bool(fp16) and self.device.type == "cuda"
        self.batch_size = max(1, int(batch_size))
        self.seed = int(seed)
        self.model_file = self.path.name
        self.model_sha256 = file_sha256(self.path)
        started = time.perf_counter()
        self.model = load_gpen(self.path, self.device)
        self.model.eval()
        self.size = int(self.model.size)
        log.info("GPEN-%d loaded from %s on %s in %.1f s (sha256 %s)", self.size, self.path, self.device,
                 time.perf_counter() - started, self.model_sha256[:12])

    def restore_crop(self, crop: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return self.restore_crops([crop])[0]

    def restore_crops(self, crops: list[np.ndarray], scales: list[float] | None = None) -> list[np.ndarray]:
        """Batched forward passes of ``batch_size`` crops; ``scales`` is not used by GPEN."""
        import torch

        out: list[np.ndarray] = []
        for start in range(0, len(crops), self.batch_size):
            batch = [_check_crop(c) for c in crops[start : start + self.batch_size]]
            for c in batch:
                if c.shape[0] != self.size:
                    raise ValueError(f"GPEN-{self.size} needs {self.size}×{self.size} crops, got {c.shape}")
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()  # N×3×S×S RGB [0, 1]
            x = ((x - 0.5) / 0.5).to(self.device)
            torch.manual_seed(self.seed)
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.fp16):
                y = self.model(x)
            y = y[0] if isinstance(y, tuple | list) else y
            y = (y.float() * 0.5 + 0.5).clamp_(0.0, 1.0)
            out.extend(y.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32))
            del x, y
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return out

    def info(self) -> dict[str, Any]:
        return {**super().info(), "device": str(self.device), "fp16": self.fp16}


# ------------------------------------------------------------------------------------------- selection


class RestorerSelector:
    """The restorers of one job: picks (and loads once) the right one per photo.

    Built by `build_restorer`. ``backend`` is the resolved backend (``gpen`` or ``classical``);
    ``fallback_reason`` says why ``auto`` fell back to classical (None when it did not).
    """

    def __init__(self, cfg: dict[str, Any], models_dir: str | Path):
        self.cfg = cfg
        self.models_dir = Path(models_dir)
        self.fallback_reason: str | None = None
        self.model_note: str | None = None
        self._loaded: dict[int, Restorer] = {}
        self._classical: ClassicalRestorer | None = None
        requested = str(cfg["backend"])
        if requested not in ("auto", "gpen", "classical"):
            raise ValueError(f"restore.backend must be auto, gpen or classical, got {requested!r}")
        model = str(cfg["model"])
        if model not in ("auto", "512", "1024"):
            raise ValueError(f"restore.model must be auto, 512 or 1024, got {cfg['model']!r}")
        self.requested, self.model = requested, model
        self.backend = "classical" if requested == "classical" else "gpen"
        self._sizes: dict[str, int] = {}
        if self.backend == "gpen":
            self._plan_gpen()

    # ---- planning (file checks only; models load lazily)

    def model_path(self, size: int) -> Path:
        return self.models_dir / str(self.cfg[f"model_file_{size}"])

    def _missing_message(self, size: int) -> str:
        path = self.model_path(size)
        return (f"GPEN weights {path.name} not found in {self.models_dir}; run "
                f"`{DOWNLOAD_HINT.format(name=f'GPEN-BFR-{size}')}` (or set restore.backend: classical)")

    def _fall_back(self, reason: str, error: type[Exception] = RuntimeError) -> None:
        """``backend: gpen`` → raise ``error(reason)``; ``auto`` → use classical and remember why."""
        if self.requested == "gpen":
            raise error(reason)
        log.warning("restore.backend auto → classical: %s", reason)
        self.backend, self.fallback_reason = "classical", reason

    def _plan_gpen(self) -> None:
        if self.model in ("512", "1024"):
            size = int(self.model)
            if not self.model_path(size).is_file():
                self._fall_back(self._missing_message(size), FileNotFoundError)
                return
            self._sizes = {"small": size, "large": size}
        else:
            present = [s for s in (512, 1024) if self.model_path(s).is_file()]
            if not present:
                self._fall_back(self._missing_message(512), FileNotFoundError)
                return
            if len(present) == 1:
                only = present[0]
                other = 1024 if only == 512 else 512
                self.model_note = f"{self.model_path(other).name} not found: GPEN-{only} is used for every photo"
                log.info("restore.model auto: %s", self.model_note)
                self._sizes = {"small": only, "large": only}
            else:
                self._sizes = {"small": 512, "large": 1024}
        try:
            from photoarchive.models import gpen
        except ImportError as exc:
            self._fall_back(f"the GPEN network cannot be imported ({exc})")
            return
        if not hasattr(gpen, "load_gpen"):
            self._fall_back("photoarchive.models.gpen has no load_gpen()")

    # ---- per photo

    def size_for(self, image_shape: tuple[int, ...]) -> int | None:
        """GPEN size for a photo (None when classical)."""
        if self.backend != "gpen":
            return None
        long_side = max(int(image_shape[0]), int(image_shape[1]))
        key = "small" if long_side <= int(self.cfg["auto_1024_min_side"]) else "large"
        return self._sizes[key]

    def classical(self) -> ClassicalRestorer:
        if self._classical is None:
            self._classical = ClassicalRestorer(self.cfg.get("classical"), size=int(self.cfg["classical_size"]))
        return self._classical

    def restorer_for(self, image_shape: tuple[int, ...]) -> Restorer:
        """The restorer for a photo of this shape; each GPEN model is loaded at most once."""
        size = self.size_for(image_shape)
        if size is None:
            return self.classical()
        if size not in self._loaded:
            try:
                self._loaded[size] = GPENRestorer(self.model_path(size), device=str(self.cfg["device"]),
                                                  fp16=bool(self.cfg["fp16"]),
                                                  batch_size=int(self.cfg["face_batch"]),
                                                  seed=int(self.cfg["seed"]))
            except Exception as exc:  # auto must survive any bad model file; gpen re-raises it
                if self.requested == "gpen":
                    raise
                self._fall_back(f"loading {self.model_path(size).name} failed: {type(exc).__name__}: {exc}")
                return self.classical()
        return self._loaded[size]

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.backend, "requested_backend": self.requested,
                               "model": self.model, "fallback_reason": self.fallback_reason}
        if self.model_note:
            out["model_note"] = self.model_note
        return out


def restore_model_files(cfg: dict[str, Any] | None, models_dir: str | Path) -> list[Path]:
    """The GPEN weights files a job may load with this config (`RestorerSelector`): none for the classical
    backend; ``model_file_512`` or ``model_file_1024`` for ``model: 512`` or ``1024``; both for ``auto``
    (which of them a photo gets depends on the files present and the photo's size)."""
    cfg = _merge(RESTORE_DEFAULTS, cfg or {})
    if str(cfg["backend"]) == "classical":
        return []
    sizes = (512, 1024) if str(cfg["model"]) == "auto" else (int(cfg["model"]),)
    return [Path(models_dir) / str(cfg[f"model_file_{size}"]) for size in sizes]


def build_restorer(cfg: dict[str, Any] | None, models_dir: str | Path) -> RestorerSelector:
    """Restorers for one job from the ``restore`` section.

    ``backend: gpen`` with missing weights raises FileNotFoundError naming the file and the download
    command; ``auto`` falls back to classical and says why in ``fallback_reason``.
    """
    merged = _merge(RESTORE_DEFAULTS, cfg or {})
    return RestorerSelector(merged, models_dir)


# -------------------------------------------------------------------------------------------- controls

# metadata.csv columns that override a photo's style controls; empty cells keep the config value.
CATALOGUE_COLUMNS: dict[str, str] = {
    "restore_strength": "strength",
    "restore_skin_protection": "skin_protection",
    "restore_grain": "grain",
    "restore_degradation_scale": "degradation_scale",
    **{f"restore_weight_{region}": f"region_weights.{region}" for region in REGIONS},
}


def catalogue_overrides(row: dict[str, Any]) -> dict[str, Any]:
    """Per-photo overrides from a metadata.csv row (`CATALOGUE_COLUMNS`), for `restore_faces`.

    Other columns are ignored; empty cells are skipped; values stay strings (`resolve_controls`
    converts and checks them, naming a bad one).
    """
    out: dict[str, Any] = {}
    for column, key in CATALOGUE_COLUMNS.items():
        value = row.get(column)
        if value is not None and str(value).strip() != "":
            out[key] = str(value).strip()
    return out



def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def resolve_controls(cfg: dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Effective style controls: config values, then per-photo overrides, checked and as floats.

    Overrides (e.g. from metadata.csv) may be strings; ``region_weights`` may be a dict or dotted keys
    like ``region_weights.eyes``. Unknown keys raise ValueError naming them.
    """
    cfg = cfg or {}
    controls = {k: copy.deepcopy(cfg.get(k, v)) for k, v in CONTROL_DEFAULTS.items()}
    controls["region_weights"] = {**CONTROL_DEFAULTS["region_weights"], **(controls["region_weights"] or {})}
    for key, value in (overrides or {}).items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key.startswith("region_weights."):
            controls["region_weights"][key.split(".", 1)[1]] = value
        elif key == "region_weights":
            controls["region_weights"].update(value)
        elif key in CONTROL_DEFAULTS:
            controls[key] = value
        else:
            raise ValueError(f"unknown restore override {key!r}; known: {sorted(CONTROL_DEFAULTS)}")
    def number(name: str, value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"restore {name} must be a number, got {value!r}") from None

    out = {k: number(k, controls[k]) for k in ("strength", "skin_protection", "grain", "degradation_scale")}
    weights = {k: number(f"region_weights.{k}", v) for k, v in controls["region_weights"].items()}
    unknown = set(weights) - set(REGIONS)
    if unknown:
        raise ValueError(f"unknown region(s) {sorted(unknown)} in region_weights; known: {list(REGIONS)}")
    limits = {"strength": (0.0, 100.0), "skin_protection": (0.0, 1.0), "grain": (0.0, 1.0),
              "degradation_scale": (1.0, 16.0)}
    for key, (low, high) in limits.items():
        if not low <= out[key] <= high or math.isnan(out[key]):
            raise ValueError(f"restore {key} must be in [{low:g}, {high:g}], got {out[key]!r}")
    for key, value in weights.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"restore region_weights.{key} must be in [0, 1], got {value!r}")
    out["region_weights"] = weights
    return out


def _soft_ellipse(size: int, centre: np.ndarray, axes: tuple[float, float]) -> np.ndarray:
    """1 inside 60 % of the ellipse, smooth fall-off to 0 at its edge."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt(((xx - centre[0]) / axes[0]) ** 2 + ((yy - centre[1]) / axes[1]) ** 2)
    t = np.clip((1.0 - r) / 0.4, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@functools.lru_cache(maxsize=8)
def region_masks(size: int) -> dict[str, np.ndarray]:
    """Soft S×S masks of eyes, lips, cheeks and forehead in aligned-crop (template) space.

    Built from the template points: ellipses around each eye, the mouth, below each eye beside the
    nose, and above the eyes; where they overlap they are normalised to sum ≤ 1. Read-only arrays.
    """
    t = alignment_template(size).astype(np.float64)
    eye_l, eye_r, _nose, mouth_l, mouth_r = t
    d = float(np.hypot(*(eye_r - eye_l)))  # eye distance
    mw = float(np.hypot(*(mouth_r - mouth_l)))  # mouth width
    up = np.array([0.0, 1.0])
    masks = {
        "eyes": np.maximum(_soft_ellipse(size, eye_l - 0.03 * d * up, (0.42 * d, 0.26 * d)),
                           _soft_ellipse(size, eye_r - 0.03 * d * up, (0.42 * d, 0.26 * d))),
        "lips": _soft_ellipse(size, (mouth_l + mouth_r) / 2 + 0.02 * d * up, (0.62 * mw, 0.34 * mw)),
        "cheeks": np.maximum(_soft_ellipse(size, eye_l + [-0.12 * d, 0.62 * d], (0.34 * d, 0.36 * d)),
                             _soft_ellipse(size, eye_r + [0.12 * d, 0.62 * d], (0.34 * d, 0.36 * d))),
        "forehead": _soft_ellipse(size, (eye_l + eye_r) / 2 - 0.78 * d * up, (1.0 * d, 0.42 * d)),
    }
    total = sum(masks.values())
    scale = 1.0 / np.maximum(total, 1.0)
    for key in masks:
        masks[key] = (masks[key] * scale).astype(np.float32)
        masks[key].setflags(write=False)
    return masks


def region_weight_map(size: int, weights: dict[str, float]) -> np.ndarray:
    """S×S per-pixel weight: Σ w_region·mask_region + w_other·(1 − Σ masks)."""
    masks = region_masks(size)
    covered = np.zeros((size, size), np.float32)
    out = np.zeros((size, size), np.float32)
    for key, mask in masks.items():
        out += float(weights.get(key, 1.0)) * mask
        covered += mask
    out += float(weights.get("other", 1.0)) * np.clip(1.0 - covered, 0.0, 1.0)
    return np.clip(out, 0.0, 1.0)


def degrade(crop: np.ndarray, factor: float) -> np.ndarray:
    """Down-scale by ``factor`` (area) and back up (cubic): a softer, more conservative restorer input."""
    if factor <= 1.0:
        return crop
    size = crop.shape[0]
    small = max(4, int(round(size / factor)))
    low = cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA)
    return np.clip(cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def protect_skin(original: np.ndarray, restored: np.ndarray, amount: float) -> np.ndarray:
    """Lab L from ``restored``; a/b blended (1 − amount)·restored + amount·original (crop space)."""
    if amount <= 0:
        return restored
    lab = cv2.cvtColor(np.clip(restored, 0.0, 1.0).astype(np.float32), cv2.COLOR_RGB2Lab)
    lab_orig = cv2.cvtColor(np.clip(original, 0.0, 1.0).astype(np.float32), cv2.COLOR_RGB2Lab)
    lab[:, :, 1:] += float(amount) * (lab_orig[:, :, 1:] - lab[:, :, 1:])
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0).astype(np.float32)


def reinject_grain(original: np.ndarray, result: np.ndarray, amount: float, sigma_px: float = 1.0) -> np.ndarray:
    """Put back ``amount`` of the original's finest band (film grain) where ``result`` differs from it.

    Works in photo pixels, after paste-back, so the grain keeps the scan's own pixel scale (in crop
    space it would be resampled twice and lose most of its energy). The finest band is
    ``x − GaussianBlur(x, sigma_px)``; inside changed pixels it becomes
    (1 − amount)·result's + amount·original's. Unchanged pixels stay bit-identical. Returns a new array.
    """
    out = np.array(result, dtype=np.float32, copy=True)
    _reinject_grain_into(out, original, amount, sigma_px)
    return out


def _reinject_grain_into(out: np.ndarray, original: np.ndarray, amount: float, sigma_px: float) -> None:
    if amount <= 0:
        return
    # The rows and columns that changed, found band by band (no full-size comparison arrays on a large scan).
    height, width = out.shape[:2]
    changed_rows = np.zeros(height, bool)
    changed_cols = np.zeros(width, bool)
    step = max(1, (1 << 20) // max(1, width))
    for start in range(0, height, step):
        band = np.any(out[start:start + step] != original[start:start + step], axis=2)
        changed_rows[start:start + step] = band.any(axis=1)
        changed_cols |= band.any(axis=0)
    if not changed_rows.any():
        return
    rows, cols = np.nonzero(changed_rows)[0], np.nonzero(changed_cols)[0]
    margin = int(math.ceil(4 * sigma_px)) + 1
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, height)
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, width)
    region = out[y0:y1, x0:x1]  # a view: edits land in `out`
    diff = region - original[y0:y1, x0:x1].astype(np.float32)  # what restoring changed
    diff -= cv2.GaussianBlur(diff, (0, 0), sigmaX=float(sigma_px))  # …its finest band
    diff *= np.float32(amount)
    grained = np.subtract(region, diff, out=diff)  # region − amount·fine, in place (same values)
    np.clip(grained, 0.0, 1.0, out=grained)
    mask = np.any(region != original[y0:y1, x0:x1], axis=2)  # changed pixels (none outside this box)
    region[mask] = grained[mask]


# ------------------------------------------------------------------------------------------- the stage


class IdentityEmbedder(Protocol):
    """What the identity guard needs of an embedder (`photoarchive.identity.FaceEmbedder`)."""

    def reference(self, before: np.ndarray, box: tuple[float, float, float, float]) -> Any: ...

    def compare_with(self, ref: Any, after: np.ndarray) -> dict[str, Any]: ...

    def info(self) -> dict[str, Any]: ...


def guard_identity(embedder: IdentityEmbedder, crop: np.ndarray, restored: np.ndarray, region_map: np.ndarray,
                   strength: float, box: tuple[float, float, float, float], cfg: dict[str, Any]) -> dict[str, Any]:
    """The identity guard of one face, in aligned-crop space → the strength to paste with and why.

    The restored crop is blended into the restorer's input at ``strength`` (× ``region_map``), as the
    paste will do, and compared with the input with the same landmarks (found in ``box`` of the input):
    the embedding distance (another person?) and the shape drift (features moved, % of the face). Above
    ``warn`` or ``drift_warn`` the strength is lowered by ``strength_step`` and the face tried again,
    down to ``min_strength``. Verdict: ``ok`` (first try), ``lowered`` (a lower strength passed), ``warn``
    (still above a warn level at the lowest strength) or ``review`` (above ``review`` or ``drift_review``).
    """
    reference = embedder.reference(crop, box)  # the input face is embedded once for all tries
    tries: list[list[float]] = []
    while True:
        blended = crop + (strength / 100.0) * region_map[:, :, None] * (restored - crop)
        found = embedder.compare_with(reference, blended)
        distance, drift = float(found["distance"]), float(found["drift"])
        tries.append([round(strength, 3), round(distance, 4), round(drift, 3)])
        over = distance > float(cfg["warn"]) or drift > float(cfg["drift_warn"])
        lower = strength - float(cfg["strength_step"])
        if not over or lower < float(cfg["min_strength"]) - 1e-9:
            break
        strength = lower
    if distance > float(cfg["review"]) or drift > float(cfg["drift_review"]):
        verdict = "review"
    elif over:
        verdict = "warn"
    else:
        verdict = "ok" if len(tries) == 1 else "lowered"
    return {"strength": strength, "identity_distance": round(distance, 4), "shape_drift": round(drift, 3),
            "identity_tries": tries, "identity": verdict}


def _box_in_crop(face: Face, affine: np.ndarray) -> tuple[float, float, float, float]:
    """The face's detection box carried into aligned-crop pixels (bounding box of its corners)."""
    x0, y0, x1, y1 = face.box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64) @ affine.T
    return (float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()),
            float(corners[:, 1].max()))


def restore_faces(
    image: np.ndarray,
    faces: list[Face | dict[str, Any]],
    restorer: Restorer | RestorerSelector,
    matte: np.ndarray | None = None,
    cfg: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    return_crops: bool = False,
    embedder: IdentityEmbedder | None = None,
) -> tuple[np.ndarray, dict[str, Any]] | tuple[np.ndarray, dict[str, Any], list[dict[str, Any]]]:
    """Restore every face of one photo → (new image, JSON-ready record[, QA crops]).

    ``faces`` are `Face` objects or their dicts. ``restorer`` is a `Restorer`, or the job's
    `RestorerSelector` (then the restorer is picked for this photo's size). ``overrides`` are the
    per-photo style controls (metadata.csv). One face failing is recorded and skipped; the others
    are still restored. With an ``embedder`` and ``identity.guard`` on, each face passes
    `guard_identity` (its strength may be lowered; distance and verdict go into the face's entry).
    With ``return_crops=True`` a third value lists, per restored face,
    ``{"index", "before", "after"}`` aligned S×S crops (``after`` = what is blended in, strength and
    region weights applied in crop space, grain not included) for QA; they are never in the record.
    """
    cfg = _merge(RESTORE_DEFAULTS, cfg or {})
    controls = resolve_controls(cfg, overrides)
    guard = embedder if embedder is not None and cfg["identity"]["guard"] else None
    source = as_rgb(image)
    selector_info: dict[str, Any] = {}
    if isinstance(restorer, RestorerSelector):
        chosen = restorer.restorer_for(source.shape)
        selector_info = restorer.info()  # after the choice: a failed load shows as a fallback
        restorer = chosen
    rinfo = restorer.info()
    size = int(restorer.size)
    region_map = region_weight_map(size, controls["region_weights"])
    active = bool(controls["strength"] > 0 and region_map.max() > 0)
    record: dict[str, Any] = {
        **rinfo,
        "fallback_reason": selector_info.get("fallback_reason"),
        **({"model_note": selector_info["model_note"]} if "model_note" in selector_info else {}),
        "controls": controls,
        "matte": matte is not None,
        "identity_guard": {**cfg["identity"], **guard.info()} if guard is not None else None,
        "faces": [],
    }
    prepared: list[dict[str, Any]] = []
    for index, item in enumerate(faces):
        face = item if isinstance(item, Face) else Face.from_dict(item)
        entry: dict[str, Any] = {"index": index, "box": [round(v, 3) for v in face.box],
                                 "score": round(face.score, 6), "landmarks_source": face.landmarks_source,
                                 "backend": rinfo["backend"], "model_file": rinfo["model_file"],
                                 "model_sha256": rinfo["model_sha256"], "controls": controls}
        record["faces"].append(entry)
        if not active:
            entry.update(status="unchanged", reason="strength or region weights are 0")
            continue
        try:
            crop, affine = align_face(source, face.landmarks, size, cfg["align_interpolation"],
                                      cfg["align_border"])
            prepared.append({"entry": entry, "crop": crop, "affine": affine, "scale": crop_scale(affine),
                             "input": degrade(crop, controls["degradation_scale"]),
                             "box": _box_in_crop(face, affine)})
        except Exception as exc:  # one bad face must not fail the photo
            _fail(entry, exc)

    _run_restorer(restorer, prepared)

    crops, affines, weights, qa = [], [], [], []
    for item in prepared:
        entry = item["entry"]
        if "restored" not in item:
            continue
        try:
            restored = item["restored"]
            if restored.shape[:2] != (size, size):
                restored = cv2.resize(restored, (size, size), interpolation=cv2.INTER_AREA)
            final = protect_skin(item["crop"], restored, controls["skin_protection"])
            if not np.all(np.isfinite(final)):
                raise ValueError("restorer returned non-finite values")
            strength = controls["strength"]
            if guard is not None:
                checked = guard_identity(guard, item["crop"], final, region_map, strength, item["box"],
                                         cfg["identity"])
                strength = checked["strength"]
                entry.update(checked)
        except Exception as exc:
            _fail(entry, exc)
            continue
        weight_map = (strength / 100.0) * region_map
        crops.append(final)
        affines.append(item["affine"])
        weights.append(weight_map)
        entry.update(status="restored", strength=strength)
        if return_crops:
            after = item["crop"] + weight_map[:, :, None] * (final - item["crop"])
            qa.append({"index": entry["index"], "before": item["crop"], "after": after.astype(np.float32)})

    result = paste_faces(source, crops, affines, matte=matte, cfg=cfg["paste"], weights=weights)
    _reinject_grain_into(result, source, controls["grain"], float(cfg["grain_sigma_px"]))
    record["n_faces"] = len(record["faces"])
    record["n_restored"] = sum(1 for e in record["faces"] if e.get("status") == "restored")
    record["n_failed"] = sum(1 for e in record["faces"] if e.get("status") == "error")
    record["identity_flags"] = [_identity_flag(e, cfg["identity"]) for e in record["faces"]
                                if e.get("identity") in ("review", "warn")]
    if return_crops:
        return result, record, qa
    return result, record


def _identity_flag(entry: dict[str, Any], cfg: dict[str, Any]) -> str:
    """The QA reason for a face the identity guard could not pass, with its numbers and thresholds."""
    numbers = (f"face {entry['index']}: identity distance {entry['identity_distance']:.2f}, shape drift "
               f"{entry['shape_drift']:.2f} % of the face")
    if entry["identity"] == "review":
        return (f"{numbers} (review above {cfg['review']:.2f} or {cfg['drift_review']:.2f} %): the restored face "
                "may have become someone else")
    return (f"{numbers}: still above the warn level ({cfg['warn']:.2f} or {cfg['drift_warn']:.2f} %) at the lowest "
            f"strength {entry['strength']:g} after {len(entry['identity_tries']) - 1} retries")


def face_provenance(faces: list[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per face, what the XMP records: detector, score, box, landmarks, and what restore did with it."""
    done = {entry["index"]: entry for entry in record.get("faces", [])}
    out = []
    for index, face in enumerate(faces):
        entry = done.get(index, {})
        out.append({"index": index, "detector": face.get("detector"), "score": face.get("score"),
                    "box": face.get("box"), "landmarks": face.get("landmarks"),
                    "status": entry.get("status"), "strength": entry.get("strength"),
                    "identity_distance": entry.get("identity_distance"), "shape_drift": entry.get("shape_drift"),
                    "identity": entry.get("identity")})
    return out


def _fail(entry: dict[str, Any], exc: BaseException) -> None:
    log.warning("face %d failed: %s: %s", entry["index"], type(exc).__name__, exc)
    entry.update(status="error", error=f"{type(exc).__name__}: {exc}")


def _run_restorer(restorer: Restorer, prepared: list[dict[str, Any]]) -> None:
    """Restore all prepared crops, batched; on a batch error retry face by face to isolate it."""
    if not prepared:
        return
    started = time.perf_counter()
    try:
        outputs = restorer.restore_crops([p["input"] for p in prepared], [p["scale"] for p in prepared])
        if len(outputs) != len(prepared):
            raise RuntimeError(f"restorer returned {len(outputs)} crops for {len(prepared)}")
        for item, out in zip(prepared, outputs, strict=True):
            item["restored"] = _check_crop(out)
        per_face = (time.perf_counter() - started) / len(prepared)
        for item in prepared:
            item["entry"]["seconds"] = round(per_face, 3)
        return
    except Exception as exc:
        if len(prepared) == 1:
            _fail(prepared[0]["entry"], exc)
            return
        log.warning("batch restore failed (%s); retrying face by face", exc)
    for item in prepared:
        started = time.perf_counter()
        try:
            item["restored"] = _check_crop(restorer.restore_crop(item["input"], item["scale"]))
            item["entry"]["seconds"] = round(time.perf_counter() - started, 3)
        except Exception as exc:
            _fail(item["entry"], exc)
