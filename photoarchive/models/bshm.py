"""BSHM portrait matting (Boosting Semantic Human Matting, CVPR 2020) as published on ModelScope.

The public model is ModelScope's ``damo/cv_unet_image-matting`` (the default model of ModelScope's
``portrait-matting`` task). It ships as a TensorFlow frozen graph, ``tf_graph.pb``, with:

- input ``input_image:0``: float32, H×W×3, **RGB**, values 0-255, any H and W, no batch axis;
- output ``output_png:0``: H×W×4 **RGBA** with values 0-255; channel 3 (A) is the alpha matte.

This module runs that graph either from an ONNX file through onnxruntime (a required dependency), or
from the ``.pb`` through TensorFlow when ``tensorflow`` is importable (optional: never a requirement).
Convert the graph once to ONNX (tensorflow and tf2onnx needed for this step only, in any venv)::

    python -m tf2onnx.convert --graphdef tf_graph.pb --inputs input_image:0 --outputs output_png:0 \\
        --opset 17 --output models/bshm.onnx

tf2onnx keeps the TensorFlow tensor names (``input_image:0``, ``output_png:0``) as the ONNX names; the
runner also accepts the names without ``:0`` or a graph with exactly one input and one output, and a
leading batch axis of size 1.

The architecture itself is not rebuilt here: the frozen graph carries it. Weights are never downloaded
by this module.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from photoarchive.ingest import file_sha256

logger = logging.getLogger(__name__)

INPUT_NAME = "input_image:0"
OUTPUT_NAME = "output_png:0"
MODEL_ID = "damo/cv_unet_image-matting"
TF2ONNX_COMMAND = (
    "python -m tf2onnx.convert --graphdef tf_graph.pb --inputs input_image:0 --outputs output_png:0 "
    "--opset 17 --output models/bshm.onnx"
)
_ALPHA_CHANNEL = 3  # RGBA
_VALUE_SCALE = 255.0  # the graph works in 0-255 on both ends


def _pick_name(available: list[str], wanted: str, what: str, path: Path) -> str:
    """Return `wanted`, its name without ':0', or the only name there is; else raise naming the file."""
    for name in (wanted, wanted.removesuffix(":0")):
        if name in available:
            return name
    if len(available) == 1:
        logger.warning("%s: %s %r not found, using the graph's only %s %r", path, what, wanted, what, available[0])
        return available[0]
    raise ValueError(
        f"{path}: no {what} named {wanted!r} (the graph has {available}); is this the BSHM model "
        f"{MODEL_ID}? Convert its tf_graph.pb with: {TF2ONNX_COMMAND}"
    )


class _OnnxRunner:
    """onnxruntime session around a converted BSHM graph."""

    runtime = "onnxruntime"

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: shape-inference warnings on dynamic graphs are noise
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0:  # Snakemake sets it to the job's threads
            options.intra_op_num_threads = int(threads)
        preferred = ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in preferred if p in ort.get_available_providers()]
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        self._input = _pick_name([i.name for i in inputs], INPUT_NAME, "input", path)
        self._output = _pick_name([o.name for o in outputs], OUTPUT_NAME, "output", path)
        rank = len(next(i.shape for i in inputs if i.name == self._input))
        if rank not in (3, 4):
            raise ValueError(f"{path}: input {self._input!r} has rank {rank}, expected H×W×3 (or 1×H×W×3)")
        self._batched = rank == 4

    def run(self, rgb255: np.ndarray) -> np.ndarray:
        feed = rgb255[None] if self._batched else rgb255
        (out,) = self._session.run([self._output], {self._input: feed})
        return np.asarray(out)


class _TensorflowRunner:
    """TensorFlow 1-style session around the frozen ``tf_graph.pb`` (needs ``tensorflow``)."""

    runtime = "tensorflow"

    def __init__(self, path: Path) -> None:
        try:
            import tensorflow as tf
        except ImportError as err:
            raise ImportError(
                f"{path} is a TensorFlow graph but tensorflow is not installed. Either install tensorflow "
                f"(e.g. pip install tensorflow-cpu) or convert the graph once to ONNX with: "
                f"{TF2ONNX_COMMAND} and point matting.model at the .onnx file"
            ) from err
        tf1 = tf.compat.v1
        graph_def = tf1.GraphDef()
        graph_def.ParseFromString(path.read_bytes())
        self._graph = tf1.Graph()
        with self._graph.as_default():
            tf1.import_graph_def(graph_def, name="")
        names = {op.name for op in self._graph.get_operations()}
        for tensor in (INPUT_NAME, OUTPUT_NAME):
            if tensor.removesuffix(":0") not in names:
                raise ValueError(f"{path}: the graph has no tensor {tensor!r}; is this {MODEL_ID}'s tf_graph.pb?")
        self._session = tf1.Session(graph=self._graph)

    def run(self, rgb255: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(OUTPUT_NAME, feed_dict={INPUT_NAME: rgb255}))


class BSHMModel:
    """The BSHM graph loaded from `path` (``.onnx`` through onnxruntime, ``.pb`` through TensorFlow).

    Args:
        path (Path): model file; its suffix picks the runtime.

    Attributes:
        path, sha256 (hex digest of the file), runtime ("onnxruntime" | "tensorflow").
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"BSHM model file not found: {self.path}")
        suffix = self.path.suffix.lower()
        if suffix == ".onnx":
            self._runner: _OnnxRunner | _TensorflowRunner = _OnnxRunner(self.path)
        elif suffix == ".pb":
            self._runner = _TensorflowRunner(self.path)
        else:
            raise ValueError(f"{self.path}: expected a .onnx or .pb BSHM model file, got {suffix!r}")
        self.runtime = self._runner.runtime
        self.sha256 = file_sha256(self.path)
        logger.info("BSHM model %s (%s, sha256 %s)", self.path, self.runtime, self.sha256)

    def predict_rgba(self, image: np.ndarray) -> np.ndarray:
        """Run the graph on `image` (H×W×3 float RGB in [0, 1]) and return its raw H×W×4 output (0-255)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image, got shape {image.shape}")
        rgb255 = np.ascontiguousarray(image, dtype=np.float32) * np.float32(_VALUE_SCALE)
        out = self._runner.run(rgb255)
        if out.ndim == 4 and out.shape[0] == 1:
            out = out[0]
        if out.ndim != 3 or out.shape[:2] != image.shape[:2] or out.shape[2] <= _ALPHA_CHANNEL:
            raise ValueError(
                f"{self.path}: output {OUTPUT_NAME} has shape {out.shape}, expected "
                f"{image.shape[0]}×{image.shape[1]}×4 (RGBA) for an input of {image.shape}"
            )
        return out.astype(np.float32, copy=False)

    def predict_alpha(self, image: np.ndarray) -> np.ndarray:
        """The model's alpha for `image` (H×W×3 float RGB in [0, 1]): H×W float32 in [0, 1]."""
        rgba = self.predict_rgba(image)
        alpha = rgba[:, :, _ALPHA_CHANNEL] / np.float32(_VALUE_SCALE)
        return np.clip(alpha, 0.0, 1.0).astype(np.float32, copy=False)
