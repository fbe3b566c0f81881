"""Person prior: a soft "is this pixel part of a person" mask from a small trained segmenter.

The model is MediaPipe's selfie segmenter (``selfie_segmentation.tflite``, 250 KB, Apache-2.0), the file
that ships inside the ``mediapipe==0.10.21`` wheel (installed ``--no-deps``; mediapipe itself is never
imported). It runs with ``ai_edge_litert`` (``tflite-runtime`` lacks the model's custom transposed-conv
op). Input 256×256 RGB in [0, 1], output a 256×256 person probability.

The model was trained on selfies (one person, head and shoulders filling the frame), so one pass over a
whole photo misses people in groups or small in the frame. `PersonSegmenter.person_mask` therefore merges
(per-pixel maximum) the outputs of several windows of the photo:

- the whole photo, letterboxed (zero padding) to the model's square input;
- per face box, a square crop of ``face_crop`` × the box size with the face in its upper part (more
  room below the face for the body), cut from the full-resolution photo so small faces keep detail; its
  output fades out towards the crop's sides that lie inside the photo (no square edges in the mask).
  Only faces small enough for the crop to be at most half the photo's long side get one: a large face
  is seen well by the whole-photo pass, and a crop that is nearly the whole photo only adds a second,
  partial view of the same body (measured: it made known-alpha mattes slightly worse);
- optionally, overlapping square tiles (``tiles`` per long side; default 0 = none), for people whose
  face is not visible and who are small in the frame. Measured: they add blocky false "people" (a rocket,
  background patches) and found the small faceless people of a group only at 4 per side, so they are off.

The mask is returned on a capped working copy (long side ≤ ``max_side``); the caller resizes it. Memory is
bounded by that copy and the 256×256 windows, whatever the size of the scan.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path

import cv2
import numpy as np

from photoarchive.download import sha256_of_file

logger = logging.getLogger(__name__)

PACKAGED = "mediapipe"  # config value: the model file inside the installed mediapipe package
PACKAGED_RELPATH = "modules/selfie_segmentation/selfie_segmentation.tflite"
PACKAGED_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"  # mediapipe 0.10.21
LICENCE = "Apache-2.0"
_FACE_TOP = 0.3  # face-guided crop: the face centre sits this far down the crop (fraction of its side)
_MIN_FACE_PX = 2.0  # face boxes smaller than this (full-resolution pixels) are ignored
_MIN_CROP_ZOOM = 2.0  # a face crop runs only when it shows the model its face at least 2× closer than the whole
_FEATHER = 0.1  # window output fades to 0 over this share of the window towards sides inside the photo


def packaged_model_path() -> Path | None:
    """Path of ``selfie_segmentation.tflite`` inside the installed mediapipe package, or None.

    Found through the import system's spec (``mediapipe`` is not imported: its ``__init__`` needs jax and
    numpy<2, which this project does not install).
    """
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / PACKAGED_RELPATH
        if path.is_file():
            return path
    return None


def resolve_person_model(model: str | Path) -> Path:
    """``"mediapipe"`` → the packaged file; anything else is a path. Raises FileNotFoundError if absent."""
    if str(model) == PACKAGED:
        path = packaged_model_path()
        if path is None:
            raise FileNotFoundError(
                f"the person segmenter {PACKAGED_RELPATH} was not found: install it with "
                f"`pip install --no-deps mediapipe==0.10.21` (see the Makefile's setup), or point "
                f"matting.person_model at a copy of selfie_segmentation.tflite"
            )
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"person segmenter model file {path} does not exist (matting.person_model)")
    return path


def mask_coverage(mask: np.ndarray, threshold: float) -> float:
    """Share of pixels of `mask` at or above `threshold`."""
    return float(np.count_nonzero(mask >= threshold)) / max(1, mask.size)


def mask_confidence(mask: np.ndarray, threshold: float) -> float:
    """How sure the mask is where it says "person": mean of (m − threshold) / (1 − threshold) over the
    pixels with m >= threshold, in [0, 1] (0 when there are none). A person is segmented near 1; the
    model's guesses on objects and textures are hesitant (greyish masks)."""
    values = mask[mask >= threshold]
    if values.size == 0:
        return 0.0
    return float(np.mean((values - threshold) / max(1e-6, 1.0 - threshold)))


def box_coverage(mask: np.ndarray, box: tuple[float, ...], scale: float, threshold: float) -> float:
    """Share of the pixels of a face box (full-resolution coords; `scale` maps them onto `mask`) that the
    mask covers at `threshold`. A box outside the mask gives 0."""
    x0, y0, x1, y1 = (v * scale for v in box)
    h, w = mask.shape
    c0, c1 = max(0, int(math.floor(x0))), min(w, int(math.ceil(x1)))
    r0, r1 = max(0, int(math.floor(y0))), min(h, int(math.ceil(y1)))
    if c1 <= c0 or r1 <= r0:
        return 0.0
    return mask_coverage(mask[r0:r1, c0:c1], threshold)


def _feather(n: int, inside: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """n×n weights: 1, fading linearly to 0 over ``_FEATHER`` · n towards each side flagged in `inside`
    (left, top, right, bottom) — the sides that cut through the photo, where a crop sees only part of a
    body; merged by max, unfaded crops would leave square edges in the mask."""
    ramp = np.clip((np.arange(n, dtype=np.float32) + 0.5) / max(1.0, _FEATHER * n), 0.0, 1.0)
    ones = np.ones(n, np.float32)
    left, top, right, bottom = inside
    wx = np.minimum(ramp if left else ones, ramp[::-1] if right else ones)
    wy = np.minimum(ramp if top else ones, ramp[::-1] if bottom else ones)
    return wy[:, None] * wx[None, :]


class PersonSegmenter:
    """MediaPipe's selfie segmenter run on whole photo, face-guided crops and tiles; loaded once per job.

    Args:
        model (str | Path): ``"mediapipe"`` (default: the file inside the installed package) or a path
            to a ``selfie_segmentation.tflite``.
        max_side (int): long side of the working copy the mask is returned on (default 1024).
        face_crop (float): side of the square crop around a face, in face-box sizes (default 4.0;
            0 = no face-guided crops).
        tiles (int): tiles per long side for the coarse tile pass (default 0 = whole photo only).
        num_threads (int): threads of the TFLite interpreter (default 1).
    """

    def __init__(
        self,
        model: str | Path = PACKAGED,
        *,
        max_side: int = 1024,
        face_crop: float = 4.0,
        tiles: int = 0,
        num_threads: int = 1,
    ) -> None:
        if max_side < 16:
            raise ValueError(f"max_side must be >= 16, got {max_side}")
        if face_crop < 0 or tiles < 0:
            raise ValueError(f"face_crop and tiles must be >= 0, got {face_crop}, {tiles}")
        from ai_edge_litert.interpreter import Interpreter  # ImportError: caller decides the fallback

        self.path = resolve_person_model(model)
        self.sha256 = sha256_of_file(self.path)
        if str(model) == PACKAGED and self.sha256 != PACKAGED_SHA256:
            logger.warning("person segmenter %s has SHA-256 %s, not the known %s (another mediapipe "
                           "version?)", self.path, self.sha256, PACKAGED_SHA256)
        self.max_side = int(max_side)
        self.face_crop = float(face_crop)
        self.tiles = int(tiles)
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=int(num_threads))
        self._interpreter.allocate_tensors()
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        if len(inp["shape"]) != 4 or inp["shape"][3] != 3 or inp["shape"][1] != inp["shape"][2]:
            raise ValueError(f"{self.path}: expected a square RGB input, got shape {list(inp['shape'])}")
        self._input_index = int(inp["index"])
        self._output_index = int(out["index"])
        self.input_size = int(inp["shape"][1])
        logger.info("person segmenter %s (sha256 %s), input %d px", self.path, self.sha256, self.input_size)

    def info(self) -> dict:
        """Provenance: model file, SHA-256, licence, runtime and the window settings."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            runtime = f"ai-edge-litert {version('ai-edge-litert')}"
        except PackageNotFoundError:
            runtime = "ai-edge-litert"
        return {
            "model_file": str(self.path),
            "model_sha256": self.sha256,
            "licence": LICENCE,
            "runtime": runtime,
            "input_size": self.input_size,
            "max_side": self.max_side,
            "face_crop": self.face_crop,
            "tiles": self.tiles,
        }

    # -- windows --------------------------------------------------------------------------------------

    def _predict(self, tensor: np.ndarray) -> np.ndarray:
        """Model output (N×N float32 in [0, 1]) for one N×N×3 input in [0, 1]."""
        self._interpreter.set_tensor(self._input_index, tensor[None])
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output_index)
        return np.clip(out.reshape(self.input_size, self.input_size), 0.0, 1.0).astype(np.float32, copy=False)

    def _run_window(
        self, src: np.ndarray, to_canvas: float, window: tuple[float, float, float], canvas: np.ndarray
    ) -> None:
        """Run the model on the square `window` (x0, y0, side) of `src` and max-merge into `canvas`.

        `to_canvas` maps `src` pixels onto `canvas` pixels. Parts of the window outside `src` are zero in
        the model input (as MediaPipe's letterboxing) and are not written back.
        """
        n = self.input_size
        H, W = src.shape[:2]
        x0, y0, side = window
        s = n / side
        ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
        ix1, iy1 = min(W, math.ceil(x0 + side)), min(H, math.ceil(y0 + side))
        tx0, ty0 = min(n, max(0, round((ix0 - x0) * s))), min(n, max(0, round((iy0 - y0) * s)))
        tx1, ty1 = min(n, max(0, round((ix1 - x0) * s))), min(n, max(0, round((iy1 - y0) * s)))
        if ix1 <= ix0 or iy1 <= iy0 or tx1 <= tx0 or ty1 <= ty0:
            return
        patch = src[iy0:iy1, ix0:ix1]
        shrink = (tx1 - tx0) < (ix1 - ix0)
        tensor = np.zeros((n, n, 3), np.float32)
        tensor[ty0:ty1, tx0:tx1] = cv2.resize(
            patch, (tx1 - tx0, ty1 - ty0), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        prob = self._predict(np.clip(tensor, 0.0, 1.0))
        prob = (prob * _feather(n, (ix0 > 0, iy0 > 0, ix1 < W, iy1 < H)))[ty0:ty1, tx0:tx1]
        ch, cw = canvas.shape
        cx0, cy0 = min(cw, round(ix0 * to_canvas)), min(ch, round(iy0 * to_canvas))
        cx1, cy1 = min(cw, round(ix1 * to_canvas)), min(ch, round(iy1 * to_canvas))
        if cx1 <= cx0 or cy1 <= cy0:
            return
        piece = cv2.resize(np.ascontiguousarray(prob), (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_LINEAR)
        np.maximum(canvas[cy0:cy1, cx0:cx1], piece, out=canvas[cy0:cy1, cx0:cx1])

    def _tile_windows(self, h: int, w: int) -> list[tuple[float, float, float]]:
        """Overlapping square tiles over an h×w image: about `tiles` per long side, half-tile steps."""
        if self.tiles <= 0:
            return []
        side = min(h, w, 2.0 * max(h, w) / (self.tiles + 1))
        if side >= max(h, w):  # one tile would be the whole photo again
            return []

        def starts(length: int) -> list[float]:
            if length <= side:
                return [0.0]
            count = math.ceil((length - side) / (side / 2)) + 1
            return [i * (length - side) / (count - 1) for i in range(count)]

        return [(x, y, side) for y in starts(h) for x in starts(w)]

    def _face_window(self, box: tuple[float, ...], long_side: int) -> tuple[float, float, float] | None:
        x0, y0, x1, y1 = box
        size = max(x1 - x0, y1 - y0)
        side = self.face_crop * size
        if size < _MIN_FACE_PX or self.face_crop <= 0 or side * _MIN_CROP_ZOOM > long_side:
            return None
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        return (cx - side / 2, cy - _FACE_TOP * side, side)

    # -- public ---------------------------------------------------------------------------------------

    def working_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(h, w) of the mask `person_mask` returns for an image of `shape`."""
        h, w = shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def person_mask(self, image: np.ndarray, face_boxes: list[tuple[float, ...]] | None = None) -> np.ndarray:
        """Soft person probability (h×w float32 in [0, 1]) of `image` (H×W×3 float32 RGB in [0, 1]).

        The mask is on a copy whose long side is at most ``max_side`` (see `working_shape`); resize it
        to the image if needed. `face_boxes` are (x0, y0, x1, y1) in `image` pixels.
        """
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
        H, W = image.shape[:2]
        h, w = self.working_shape(image.shape)
        small = image if (h, w) == (H, W) else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        small = np.asarray(small, dtype=np.float32)
        canvas = np.zeros((h, w), np.float32)
        side = float(max(h, w))
        self._run_window(small, 1.0, ((w - side) / 2, (h - side) / 2, side), canvas)  # letterboxed whole
        for window in self._tile_windows(h, w):
            self._run_window(small, 1.0, window, canvas)
        to_canvas = w / W
        for box in face_boxes or []:
            window = self._face_window(tuple(float(v) for v in box), max(H, W))
            if window is not None:
                self._run_window(image, to_canvas, window, canvas)
        return canvas
