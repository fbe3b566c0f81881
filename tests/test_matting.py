"""Matting stage: the classical backend on a generated portrait, the no-person rule, backend choice."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

from photoarchive.matting import (  # noqa: E402
    Matte,
    Matter,
    estimate_foreground,
    guided_upsample,
    head_prior,
    make_trimap,
    mask_prior,
    merge_labels,
    person_prior,
    resolve_model_path,
)

H, W = 240, 320
# Small working sizes so that the resize + guided-upsampling path runs on a small test image.
CLASSICAL = {"backend": "classical", "work_side": 200, "matte_side": 256, "unknown_band_px": 4}


def _portrait(seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """A bright skin-coloured ellipse head and a blue torso on a textured, striped background.

    Returns (image, person mask, face box)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    noise = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 1.5)
    bg = np.stack([0.45 + 0.1 * np.sin(xx / 7.0), 0.42 + 0.05 * np.cos(yy / 11.0), 0.30 + 0 * xx], axis=2)
    bg = bg + 0.08 * noise[..., None]
    person = np.zeros((H, W), np.uint8)
    cv2.ellipse(person, (160, 80), (32, 42), 0, 0, 360, 1, -1)  # head
    cv2.ellipse(person, (160, 250), (95, 120), 0, 0, 360, 1, -1)  # torso, cut by the image bottom
    cv2.rectangle(person, (145, 110), (175, 140), 1, -1)  # neck
    torso = np.zeros((H, W), np.uint8)
    cv2.ellipse(torso, (160, 250), (95, 120), 0, 0, 360, 1, -1)
    colour = np.where(torso[..., None] > 0, np.array([0.15, 0.25, 0.70]), np.array([0.95, 0.80, 0.68]))
    soft = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 1.0)[..., None]
    image = soft * (colour + 0.02 * noise[..., None]) + (1 - soft) * bg
    face = (132.0, 50.0, 188.0, 112.0)
    return np.clip(image, 0, 1).astype(np.float32), person.astype(bool), face


@pytest.fixture(scope="module")
def classical_result() -> tuple[Matte, np.ndarray]:
    image, person, face = _portrait()
    return Matter(CLASSICAL, Path("/nonexistent/models")).matte(image, [face]), person


def test_classical_alpha_high_on_person_low_far_away(classical_result) -> None:
    result, person = classical_result
    alpha = result.alpha
    assert alpha.shape == (H, W) and alpha.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    inside = cv2.erode(person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    far = cv2.dilate(person.astype(np.uint8), np.ones((31, 31), np.uint8)) == 0
    assert alpha[inside].mean() > 0.95
    assert alpha[far].mean() < 0.05
    assert np.abs(alpha - person).mean() < 0.06
    assert result.backend == "classical" and result.person_found
    assert result.model_file is None and result.model_sha256 is None


def test_classical_is_deterministic(classical_result) -> None:
    image, _, face = _portrait()
    again = Matter(CLASSICAL, Path("/nonexistent/models")).matte(image, [face])
    np.testing.assert_array_equal(again.alpha, classical_result[0].alpha)
    np.testing.assert_array_equal(again.foreground, classical_result[0].foreground)


def test_foreground_shape_range_and_identity_where_opaque(classical_result) -> None:
    result, _ = classical_result
    image, _, _ = _portrait()
    fg = result.foreground
    assert fg.shape == (H, W, 3) and fg.dtype == np.float32
    assert 0.0 <= fg.min() and fg.max() <= 1.0
    opaque = result.alpha > 0.999
    assert np.abs(fg[opaque] - image[opaque]).max() < 0.02


def test_faces_prior_without_faces_gives_empty_matte() -> None:
    image, _, _ = _portrait()
    result = Matter({**CLASSICAL, "person_prior": "faces"}, Path("/nonexistent/models")).matte(image, [])
    assert not result.person_found and result.person_source == "none" and result.person_model is None
    assert result.alpha.shape == (H, W) and not result.alpha.any()
    assert any("no face" in note for note in result.notes)
    assert result.foreground.shape == (H, W, 3)


def _astronaut_small() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's astronaut at 256×256 with her face blurred (no detector would find it), and a box
    inside her suit that must be foreground."""
    from skimage import data

    image = data.astronaut().astype(np.float32) / 255.0
    image[50:175, 160:290] = cv2.GaussianBlur(image[50:175, 160:290], (0, 0), 12)
    image = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    suit = np.zeros((256, 256), bool)
    suit[150:240, 30:130] = True
    return image, suit


def test_segmenter_prior_mattes_a_person_without_a_face_box() -> None:
    pytest.importorskip("ai_edge_litert")
    image, suit = _astronaut_small()
    result = Matter(CLASSICAL, Path("/nonexistent/models")).matte(image, [])
    assert result.person_found and result.person_source == "segmenter"
    assert result.alpha[suit].mean() > 0.9
    assert result.alpha[:40, 215:].mean() < 0.05  # top right: wall and shuttle
    assert result.person_model is not None and len(result.person_model["model_sha256"]) == 64
    assert result.person_coverage is not None and result.person_coverage > 0.3
    assert any("no face found, but the person segmenter found a person" in note for note in result.notes)


@pytest.mark.parametrize("scene", ["paper", "text"])
def test_segmenter_prior_finds_no_person_on_paper_or_text(scene: str) -> None:
    pytest.importorskip("ai_edge_litert")
    from skimage import data

    rng = np.random.default_rng(3)
    if scene == "paper":
        grain = cv2.GaussianBlur(rng.standard_normal((H, W)).astype(np.float32), (0, 0), 1.0)
        image = np.clip(np.array([0.86, 0.80, 0.68], np.float32) * (1 + 0.05 * grain)[..., None], 0, 1)
    else:
        image = np.repeat(data.text()[..., None], 3, axis=2).astype(np.float32) / 255.0
    result = Matter(CLASSICAL, Path("/nonexistent/models")).matte(image, [])
    assert not result.person_found and result.person_source == "none"
    assert not result.alpha.any()
    assert result.person_coverage is not None and result.person_coverage < 0.005


class _FakeSegmenter:
    """Stands in for PersonSegmenter: returns a fixed mask (a sure or a hesitant one) at the image size."""

    def __init__(self, level: float) -> None:
        self.level = level

    def person_mask(self, image: np.ndarray, boxes: list) -> np.ndarray:
        mask = np.zeros(image.shape[:2], np.float32)
        mask[80:, 100:220] = self.level
        return mask

    def info(self) -> dict:
        return {"model_file": "fake.tflite", "model_sha256": "0" * 64}


@pytest.mark.parametrize(("level", "found"), [(0.98, True), (0.7, False)])
def test_person_without_face_needs_a_confident_mask(level: float, found: bool) -> None:
    image, _, _ = _portrait()
    matter = Matter(CLASSICAL, Path("/nonexistent/models"))
    matter._segmenter = _FakeSegmenter(level)  # mean certainty (0.7 - 0.5) / 0.5 = 0.4 < 0.65
    result = matter.matte(image, [])
    assert result.person_found is found
    assert bool(result.alpha.any()) is found
    assert result.person_source == ("segmenter" if found else "none")


class _BoxSegmenter(_FakeSegmenter):
    """A sure mask over one rectangle (x0, y0, x1, y1) only."""

    def __init__(self, rect: tuple[int, int, int, int]) -> None:
        super().__init__(1.0)
        self.rect = rect

    def person_mask(self, image: np.ndarray, boxes: list) -> np.ndarray:
        x0, y0, x1, y1 = self.rect
        mask = np.zeros(image.shape[:2], np.float32)
        mask[y0:y1, x0:x1] = 1.0
        return mask


@pytest.mark.parametrize(("rect", "source"), [((120, 40, 200, 130), "segmenter+faces"), ((0, 0, 60, 60), "faces")])
def test_with_faces_a_small_mask_is_used_where_it_covers_a_face(rect, source: str) -> None:
    image, _, face = _portrait()
    matter = Matter({**CLASSICAL, "person_min_fraction": 0.2}, Path("/nonexistent/models"))
    matter._segmenter = _BoxSegmenter(rect)  # covers < 20 % of the photo either way
    result = matter.matte(image, [face])
    assert result.person_found and result.person_source == source


def test_segmenter_loads_once_per_job_and_not_for_the_faces_prior(monkeypatch) -> None:
    pytest.importorskip("ai_edge_litert")
    import photoarchive.matting as matting

    loads = []
    real = matting.PersonSegmenter
    monkeypatch.setattr(matting, "PersonSegmenter", lambda *a, **k: loads.append(1) or real(*a, **k))
    image, _, face = _portrait()
    matter = Matter(CLASSICAL, Path("/nonexistent/models"))
    for boxes in ([face], []):
        matter.matte(image, boxes)
    assert len(loads) == 1
    Matter({**CLASSICAL, "person_prior": "faces"}, Path("/nonexistent/models"))
    assert len(loads) == 1


def test_missing_segmenter_falls_back_to_the_faces_prior(tmp_path: Path) -> None:
    image, _, face = _portrait()
    matter = Matter({**CLASSICAL, "person_model": str(tmp_path / "absent.tflite")}, tmp_path / "models")
    assert any("person_prior segmenter unavailable" in note for note in matter._setup_notes)
    result = matter.matte(image, [face])
    assert result.person_found and result.person_source == "faces" and result.person_model is None
    assert any("absent.tflite" in note for note in result.notes)
    assert not matter.matte(image, []).person_found  # the old rule: no face, no person


def test_mask_prior_and_merge() -> None:
    mask = np.zeros((100, 100), np.float32)
    mask[30:90, 30:70] = 1.0
    mask[20:30, 30:70] = 0.6
    labels = mask_prior(mask, 0.5, 0.9, 0.1)
    assert labels[60, 50] == cv2.GC_FGD  # deep inside the confident mask
    assert labels[25, 50] == cv2.GC_PR_FGD  # weak mask
    assert labels[60, 72] == cv2.GC_PR_BGD  # just outside: the band around the mask
    assert labels[0, 0] == cv2.GC_BGD
    head = head_prior((100, 100), [(40.0, 5.0, 60.0, 25.0)])
    assert head[15, 50] == cv2.GC_FGD and head[90, 5] == cv2.GC_BGD
    merged = merge_labels(labels, head)
    assert merged[15, 50] == cv2.GC_FGD and merged[60, 50] == cv2.GC_FGD and merged[0, 0] == cv2.GC_BGD
    assert merge_labels(np.array([cv2.GC_PR_BGD], np.uint8), np.array([cv2.GC_BGD], np.uint8))[0] == cv2.GC_PR_BGD


def test_auto_picks_classical_when_model_absent(tmp_path: Path) -> None:
    matter = Matter({"backend": "auto"}, tmp_path / "models")
    assert matter.backend == "classical"
    result = matter.matte(np.zeros((20, 30, 3), np.float32), [])
    assert result.backend == "classical"
    assert any(str(tmp_path / "models" / "bshm.onnx") in note for note in result.notes)


def test_bshm_with_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        Matter({"backend": "bshm", "model": "weights/absent.onnx"}, tmp_path / "models")
    message = str(err.value)
    assert str(tmp_path / "weights" / "absent.onnx") in message
    assert "tf2onnx" in message and "classical" in message


def test_bad_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        Matter({"backend": "magic"}, tmp_path)
    with pytest.raises(ValueError, match="person_prior"):
        Matter({"backend": "classical", "person_prior": "magic"}, tmp_path)
    with pytest.raises(ValueError, match="unknown matting config"):
        Matter({"radius": 3}, tmp_path)


def test_bad_face_box_is_rejected() -> None:
    with pytest.raises(ValueError, match="face box"):
        Matter(CLASSICAL, Path("/x/models")).matte(np.zeros((20, 30, 3), np.float32), [(10, 10, 5, 20)])


def test_model_path_resolution(tmp_path: Path) -> None:
    assert resolve_model_path("models/bshm.onnx", tmp_path / "models") == tmp_path / "models" / "bshm.onnx"
    assert resolve_model_path("/abs/m.onnx", tmp_path / "models") == Path("/abs/m.onnx")


def test_guided_upsample_restores_sharp_edges() -> None:
    image = np.zeros((100, 200, 3), np.float32)
    image[:, 101:] = [0.9, 0.8, 0.7]
    alpha_full = (np.arange(200) >= 101).astype(np.float32)[None, :].repeat(100, axis=0)
    small = cv2.resize(alpha_full, (50, 25), interpolation=cv2.INTER_AREA)  # the edge is blurred here
    up = guided_upsample(small, image, radius=2, eps=1e-4)
    assert up.shape == (100, 200) and up.dtype == np.float32
    assert up[:, :98].max() < 0.05 and up[:, 104:].min() > 0.95
    bilinear = cv2.resize(small, (200, 100), interpolation=cv2.INTER_LINEAR)
    assert np.abs(up - alpha_full).mean() < 0.5 * np.abs(bilinear - alpha_full).mean()
    # Same size: nothing to upsample, the alpha is returned as is.
    np.testing.assert_array_equal(guided_upsample(alpha_full, image, 2, 1e-4), alpha_full)


def test_estimate_foreground_capped_keeps_full_resolution() -> None:
    rng = np.random.default_rng(1)
    fg_true = np.clip(rng.random((60, 90, 3)), 0, 1).astype(np.float32)
    bg = np.full((60, 90, 3), 0.2, np.float32)
    alpha = np.zeros((60, 90), np.float32)
    alpha[:, 30:] = 1.0
    alpha[:, 25:30] = np.linspace(0.2, 0.8, 5)
    image = alpha[..., None] * fg_true + (1 - alpha[..., None]) * bg
    fg = estimate_foreground(image, alpha, max_side=40)
    assert fg.shape == (60, 90, 3) and fg.dtype == np.float32
    assert 0.0 <= fg.min() and fg.max() <= 1.0
    np.testing.assert_allclose(fg[:, 31:], image[:, 31:], atol=1e-5)  # opaque: F is the image itself
    recomposed = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    assert np.abs(recomposed - image)[:, 25:30].mean() < 0.05


def test_trimap_and_prior_shapes() -> None:
    labels, head = person_prior((100, 80), [(30.0, 10.0, 50.0, 35.0)])
    assert labels.shape == (100, 80) and head.shape == (100, 80)
    assert labels[20, 40] == cv2.GC_FGD  # face centre
    assert labels[0, 0] == cv2.GC_BGD  # top corner, far from the person
    assert labels[95, 40] in (cv2.GC_FGD, cv2.GC_PR_FGD)  # below the face: body
    fg = np.zeros((50, 50), bool)
    fg[10:40, 10:40] = True
    trimap = make_trimap(fg, 3, None, 1.0)
    assert set(np.unique(trimap)) == {0.0, 0.5, 1.0}
    assert trimap[25, 25] == 1.0 and trimap[0, 0] == 0.0 and trimap[10, 25] == 0.5
    np.testing.assert_array_equal(make_trimap(fg, 0, None, 1.0), fg.astype(np.float64))


def test_auto_falls_back_when_a_pb_cannot_run(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tf_graph.pb").write_bytes(b"graph")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if tensorflow were not installed
    matter = Matter({"backend": "auto", "model": "models/tf_graph.pb", "activate": True}, tmp_path / "models")
    assert matter.backend == "classical"
    result = matter.matte(np.zeros((20, 30, 3), np.float32), [])
    assert any("cannot run" in note for note in result.notes)
    with pytest.raises(ImportError, match="tensorflow"):
        Matter({"backend": "bshm", "model": "models/tf_graph.pb"}, tmp_path / "models")
