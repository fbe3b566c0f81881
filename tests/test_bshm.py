"""BSHM backend: a tiny stand-in graph with the real model's tensor names, dtypes and dynamic shapes.

The stand-in maps an RGB image (0-255) to RGBA where R and G hold the height and width the graph saw
and B = A = the mean brightness, so the alpha is checkable and the capping is observable.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

from photoarchive.matting import Matter  # noqa: E402
from photoarchive.models.bshm import INPUT_NAME, OUTPUT_NAME, TF2ONNX_COMMAND, BSHMModel  # noqa: E402


def _brightness_graph(path: Path, input_name: str = INPUT_NAME, batched: bool = False) -> Path:
    """Save an ONNX graph: (H, W, 3) float 0-255 -> (H, W, 4) = [H, W, mean, mean]."""
    in_shape = [1, "H", "W", 3] if batched else ["H", "W", 3]
    out_shape = [1, "H", "W", 4] if batched else ["H", "W", 4]
    third = helper.make_tensor("third", TensorProto.FLOAT, [3, 1], [1 / 3] * 3)
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    h_axis = 1 if batched else 0
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [h_axis])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [h_axis + 2])
    hw_shape = helper.make_tensor("hw_shape", TensorProto.INT64, [len(in_shape)], [1] * (len(in_shape) - 1) + [2])
    nodes = [
        helper.make_node("MatMul", [input_name, "third"], ["bright"]),  # mean over channels
        helper.make_node("Shape", [input_name], ["shape"]),
        helper.make_node("Slice", ["shape", "starts", "ends"], ["hw_int"]),
        helper.make_node("Cast", ["hw_int"], ["hw_flat"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["hw_flat", "hw_shape"], ["hw_1"]),
        helper.make_node("Mul", ["bright", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "hw_1"], ["hw"]),  # broadcast to (…, H, W, 2)
        helper.make_node("Concat", ["hw", "bright", "bright"], [OUTPUT_NAME], axis=len(in_shape) - 1),
    ]
    graph = helper.make_graph(
        nodes,
        "bshm_stand_in",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_shape)],
        initializer=[third, zero, starts, ends, hw_shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random colours with an edge, float32 RGB in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 9.0)], axis=2)
    base[:, w // 2 :] = 1.0 - base[:, w // 2 :]
    return np.clip(base + 0.02 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    return _brightness_graph(tmp_path / "models" / "bshm.onnx")


def test_model_runs_graph_and_reads_alpha_channel(model_file: Path) -> None:
    model = BSHMModel(model_file)
    image = _image(37, 53)
    rgba = model.predict_rgba(image)
    assert rgba.shape == (37, 53, 4)
    assert rgba[0, 0, 0] == 37 and rgba[0, 0, 1] == 53  # the graph saw the image as given
    alpha = model.predict_alpha(image)
    assert alpha.dtype == np.float32 and alpha.shape == (37, 53)
    np.testing.assert_allclose(alpha, image.mean(axis=2), atol=1e-5)
    assert model.runtime == "onnxruntime"
    assert model.sha256 == _sha(model_file)


def test_batched_graph_and_bare_names_accepted(tmp_path: Path) -> None:
    path = _brightness_graph(tmp_path / "b.onnx", input_name="input_image", batched=True)
    image = _image(20, 30)
    np.testing.assert_allclose(BSHMModel(path).predict_alpha(image), image.mean(axis=2), atol=1e-5)


def test_matter_bshm_publishes_model_alpha_at_full_resolution(model_file: Path, tmp_path: Path) -> None:
    cfg = {"backend": "bshm", "model": "models/bshm.onnx", "max_side": 64}
    matter = Matter(cfg, tmp_path / "models")  # relative model path: against models_dir's parent
    image = _image(120, 200)
    result = matter.matte(image, [(60.0, 20.0, 100.0, 60.0)])
    assert result.backend == "bshm"
    assert result.model_file == str(model_file)
    assert result.model_sha256 == _sha(model_file)
    assert result.model_runtime == "onnxruntime"
    assert result.alpha.shape == (120, 200) and result.alpha.dtype == np.float32
    # The model's alpha is a linear function of the colours, so the guided upsampling recovers it at full
    # resolution, edge included; a blend with any heuristic would not.
    np.testing.assert_allclose(result.alpha, image.mean(axis=2), atol=0.03)
    assert result.foreground.shape == (120, 200, 3) and result.foreground.dtype == np.float32
    assert 0.0 <= result.foreground.min() and result.foreground.max() <= 1.0
    assert result.person_found


def test_large_image_is_capped_before_the_model(model_file: Path, tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[float, float]] = []
    original = BSHMModel.predict_rgba

    def spy(self: BSHMModel, image: np.ndarray) -> np.ndarray:
        rgba = original(self, image)
        seen.append((float(rgba[0, 0, 0]), float(rgba[0, 0, 1])))
        return rgba

    monkeypatch.setattr(BSHMModel, "predict_rgba", spy)
    matter = Matter({"backend": "bshm", "model": str(model_file), "max_side": 64}, tmp_path / "models")
    result = matter.matte(_image(120, 200), [])
    assert seen == [(38.0, 64.0)]  # what the graph itself saw: long side capped at max_side
    assert result.alpha.shape == (120, 200)


def test_small_image_alpha_is_exactly_the_models(model_file: Path, tmp_path: Path) -> None:
    matter = Matter({"backend": "bshm", "model": str(model_file), "max_side": 64}, tmp_path / "models")
    image = _image(40, 50)
    result = matter.matte(image, [])
    np.testing.assert_allclose(result.alpha, image.mean(axis=2), atol=1e-5)


def test_bshm_no_person_when_model_alpha_is_empty(model_file: Path, tmp_path: Path) -> None:
    matter = Matter({"backend": "bshm", "model": str(model_file)}, tmp_path / "models")
    result = matter.matte(np.full((30, 40, 3), 0.1, np.float32), [])
    assert not result.person_found
    assert any("no person" in note for note in result.notes)
    assert result.alpha.max() < 0.2  # still the model's alpha, not zeroed by a rule


def test_auto_picks_bshm_when_the_model_exists(model_file: Path, tmp_path: Path) -> None:
    matter = Matter({"backend": "auto"}, tmp_path / "models")  # default model: models/bshm.onnx
    assert matter.backend == "bshm"
    assert matter.matte(_image(30, 40), []).backend == "bshm"


def test_graph_without_expected_names_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "two.onnx"
    nodes = [helper.make_node("Add", ["a", "b"], ["c"])]
    graph = helper.make_graph(
        nodes,
        "other",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["H", "W", 3]) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["H", "W", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="input_image:0"):
        BSHMModel(path)


def test_pb_without_tensorflow_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "tf_graph.pb"
    path.write_bytes(b"not really a graph")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="tf2onnx"):
        BSHMModel(path)


def test_tf2onnx_command_names_the_tensors() -> None:
    assert "--inputs input_image:0" in TF2ONNX_COMMAND and "--outputs output_png:0" in TF2ONNX_COMMAND


def test_tensorflow_frozen_graph(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    tf1 = tf.compat.v1
    graph = tf1.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [None, None, 3], name="input_image")
        bright = tf.reduce_mean(x, axis=2, keepdims=True)
        hw = tf.ones_like(bright) * tf.reshape(tf.cast(tf.shape(x)[:2], tf.float32), [1, 1, 2])
        tf.identity(tf.concat([hw, bright, bright], axis=2), name="output_png")
    path = tmp_path / "tf_graph.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())

    model = BSHMModel(path)
    image = _image(33, 47)
    assert model.runtime == "tensorflow"
    np.testing.assert_allclose(model.predict_alpha(image), image.mean(axis=2), atol=1e-5)
    matter = Matter({"backend": "bshm", "model": str(path), "max_side": 32}, tmp_path / "models")
    result = matter.matte(image, [])
    assert result.model_runtime == "tensorflow" and result.model_sha256 == _sha(path)
    assert result.alpha.shape == (33, 47)
