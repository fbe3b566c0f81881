"""Tests for the learned damage detector: the U-Net, its weights file, training determinism, and repair's
record of which detector ran. Tiny, randomly initialised networks only (no real model is trained)."""

import hashlib

import cv2
import numpy as np
import pytest
import torch

from photoarchive import repair as R
from photoarchive.damage_training import _CONTENT, _TEXTURES, TrainConfig, draw_texture, print_marks, train
from photoarchive.models.damage_unet import CLASSES, DamageUNet, load_model, parameter_count, predict
from tests.test_repair import CFG, scene


@pytest.fixture
def weights(tmp_path):
    """A randomly initialised DamageUNet's state dict, saved as the training module saves it."""
    torch.manual_seed(0)
    model = DamageUNet()
    path = tmp_path / R.DETECTOR_FILE
    torch.save(model.state_dict(), path)
    return path


def test_size_and_output_shape_on_odd_sizes():
    torch.manual_seed(0)
    model = DamageUNet().eval()
    assert 100_000 <= parameter_count(model) <= 1_000_000
    gray = np.random.default_rng(0).random((37, 53), dtype=np.float32)
    prob = predict(model, gray)
    assert prob.shape == (len(CLASSES), 37, 53) and prob.dtype == np.float32
    assert np.all((prob >= 0) & (prob <= 1))


def test_tiles_write_their_cores_only():
    """Tiles of 16 px whose context covers the whole image give the one-tile result: every pixel is
    written once, from the tile it belongs to."""
    torch.manual_seed(1)
    model = DamageUNet().eval()
    gray = np.random.default_rng(1).random((41, 35), dtype=np.float32)
    whole = predict(model, gray, tile=512, overlap=0)
    tiled = predict(model, gray, tile=16, overlap=64)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # with little context the tiles do differ (the test above can fail)
    assert not np.allclose(predict(model, gray, tile=16, overlap=0), whole, atol=1e-5)


def test_prediction_is_the_mean_of_the_image_and_its_transpose():
    """A mark is judged the same whichever way the scan lies on the scanner's diagonal: the probabilities
    of the transposed image are the transposed probabilities (a lone net's are not)."""
    torch.manual_seed(3)
    model = DamageUNet().eval()
    gray = np.random.default_rng(3).random((48, 40), dtype=np.float32)
    prob = predict(model, gray)
    np.testing.assert_allclose(predict(model, np.ascontiguousarray(gray.T)), prob.transpose(0, 2, 1), atol=1e-5)
    with torch.inference_mode():
        one_view = torch.sigmoid(model(torch.from_numpy(gray * 2 - 1)[None, None]))[0].numpy()
    assert not np.allclose(one_view, prob, atol=1e-3)


def test_load_state_dict_weights_only(weights):
    model = load_model(weights)
    assert not model.training
    torch.manual_seed(0)
    same = DamageUNet().eval().to(memory_format=torch.channels_last)  # as load_model lays it out
    gray = np.random.default_rng(2).random((24, 24), dtype=np.float32)
    np.testing.assert_array_equal(predict(model, gray), predict(same, gray))


def test_corrupt_or_foreign_file_is_a_clear_error(tmp_path, weights):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(ValueError, match="corrupt.pt.*damage_training"):
        load_model(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save(DamageUNet((4, 8, 16, 32)).state_dict(), foreign)
    with pytest.raises(ValueError, match="foreign.pt: does not fit"):
        load_model(foreign)
    not_a_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_a_dict)
    with pytest.raises(ValueError, match="expected a state dict"):
        load_model(not_a_dict)


@pytest.mark.parametrize("kind", _TEXTURES + _CONTENT, ids=lambda kind: kind.__name__.strip("_"))
def test_negatives_are_seeded_pictures(kind):
    """Each texture and content kind the net learns is not damage: the same picture for the same seed,
    of the asked size, in [0, 1], not blank, and another picture for another seed."""
    first, again = (np.clip(kind(np.random.default_rng(5), 48, 64), 0, 1) for _ in range(2))
    other = np.clip(kind(np.random.default_rng(6), 48, 64), 0, 1)
    assert first.shape == (48, 64) and np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.std() > 0.01


def test_textures_fill_a_square_crop():
    texture = draw_texture(np.random.default_rng(0), 40)
    assert texture.shape == (40, 40) and texture.dtype == np.float32
    assert texture.min() >= 0 and texture.max() <= 1


def test_print_marks_are_labelled():
    """The aged-print marks the net learns from: every pixel they visibly change is in a scratch or dust
    target (within the 1-px antialiased rim), and the same seed gives the same crop."""
    flat = np.full((96, 96), 0.5, np.float32)
    out, masks = print_marks(np.random.default_rng(3), flat)
    again, _ = print_marks(np.random.default_rng(3), flat)
    assert np.array_equal(out, again) and masks["scratch"].any() and masks["dust"].any()
    changed = np.abs(out - flat) > 0.15  # 6 σ of the strongest grain
    labelled = cv2.dilate((masks["scratch"] | masks["dust"]).astype(np.uint8), np.ones((3, 3), np.uint8))
    assert changed.any() and not (changed & (labelled == 0)).any()


def _train(seed: int) -> dict[str, torch.Tensor]:
    model = train(TrainConfig(steps=2, batch=2, crop=32, seed=seed, threads=1))
    return model.state_dict()


def test_training_is_deterministic():
    first, second, other = _train(0), _train(0), _train(1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_repair_records_the_learned_detector(weights):
    detector = R.LearnedDetector.load(weights, device="cpu")
    img = scene(64, 80)
    out, masks, record = R.repair(img, CFG, detector=detector)
    assert out.shape == img.shape and set(masks) == set(R.DAMAGE_TYPES)
    assert record["detector"] == "learned"
    assert record["model_file"] == R.DETECTOR_FILE
    assert record["model_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert record["parameters"]["detector"] == "learned"


def test_without_weights_the_classical_detector_runs_and_says_so(tmp_path, weights):
    assert R.load_detector(tmp_path / "empty") is None
    assert isinstance(R.load_detector(weights.parent), R.LearnedDetector)
    _, _, record = R.repair(scene(64, 80), CFG)
    assert record["detector"] == "classical" and "model_sha256" not in record


def test_learned_masks_follow_threshold_types_and_faces(weights, monkeypatch):
    """All-damage probabilities: marked everywhere at sensitivity 50, nowhere for a type that is off, and
    inside a face box only above the stricter face threshold."""
    detector = R.LearnedDetector.load(weights, device="cpu")
    detector.probabilities = lambda gray: {"scratch": np.full(gray.shape, 0.85, np.float32),
                                           "dust": np.full(gray.shape, 0.85, np.float32)}
    img = scene(40, 40)
    masks = R.damage_mask(img, {**CFG, "types": ["scratch"]}, detector=detector)
    assert masks["scratch"].all() and not masks["dust"].any()
    masks = R.damage_mask(img, {**CFG, "types": ["scratch"]}, faces=[(0, 0, 10, 10)], detector=detector)
    assert not masks["scratch"][:5, :5].any() and masks["scratch"][30:, 30:].all()
    assert R.learned_threshold(50) == pytest.approx(0.8) and R.learned_threshold(75) == pytest.approx(0.6)
    assert 0 < R.learned_threshold(100) < R.learned_threshold(50) < R.learned_threshold(0) < 1
    assert R.learned_threshold(50, "dust") == pytest.approx(0.8)
    # each class has its own threshold: with less doubt allowed for lines, a line at 0.85 is no scratch
    # while a speck at 0.85 is dust
    monkeypatch.setitem(R._LEARNED_DOUBT, "scratch", 0.1)
    masks = R.damage_mask(img, {**CFG, "types": ["scratch", "dust"]}, detector=detector)
    assert masks["dust"].all() and not masks["scratch"].any()
