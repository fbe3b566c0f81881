"""Person prior: MediaPipe's selfie segmenter loaded from the installed package, run on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

pytest.importorskip("ai_edge_litert")

from photoarchive.download import sha256_of_file  # noqa: E402
from photoarchive.person import (  # noqa: E402
    PACKAGED_SHA256,
    PersonSegmenter,
    box_coverage,
    mask_confidence,
    mask_coverage,
    packaged_model_path,
    resolve_person_model,
)

ASTRONAUT_FACE = (177.0, 66.0, 272.0, 161.0)  # the astronaut's face in the 512×512 original

if packaged_model_path() is None:
    pytest.skip("selfie_segmentation.tflite not installed (pip install --no-deps mediapipe==0.10.21)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def segmenter() -> PersonSegmenter:
    return PersonSegmenter()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut().astype(np.float32) / 255.0


def _paper(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 1.0)
    return np.clip(np.array([0.86, 0.80, 0.68], np.float32) * (1 + 0.05 * grain)[..., None], 0, 1)


def test_model_loads_from_the_package_with_its_hash(segmenter: PersonSegmenter) -> None:
    path = packaged_model_path()
    assert path is not None and path.name == "selfie_segmentation.tflite"
    assert resolve_person_model("mediapipe") == path
    assert segmenter.sha256 == sha256_of_file(path) == PACKAGED_SHA256
    info = segmenter.info()
    assert info["model_file"] == str(path) and info["model_sha256"] == PACKAGED_SHA256
    assert info["input_size"] == 256 and info["licence"] == "Apache-2.0"


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.tflite"):
        PersonSegmenter(tmp_path / "absent.tflite")


def test_astronaut_mask_covers_face_and_body_not_background(segmenter: PersonSegmenter, astronaut) -> None:
    mask = segmenter.person_mask(astronaut, [ASTRONAUT_FACE])
    assert mask.shape == (512, 512) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert box_coverage(mask, ASTRONAUT_FACE, 1.0, 0.5) > 0.9
    assert mask[300:480, 60:260].mean() > 0.9  # the orange suit
    assert mask[:100, 420:].mean() < 0.05  # top right: wall and shuttle
    np.testing.assert_array_equal(mask, segmenter.person_mask(astronaut, [ASTRONAUT_FACE]))  # deterministic


def test_person_without_face_box_is_found(segmenter: PersonSegmenter, astronaut) -> None:
    hidden = astronaut.copy()
    hidden[50:175, 160:290] = cv2.GaussianBlur(hidden[50:175, 160:290], (0, 0), 12)  # no detector finds it
    mask = segmenter.person_mask(hidden, [])
    assert mask_coverage(mask, 0.5) > 0.3
    assert mask[300:480, 60:260].mean() > 0.9


def test_face_crop_finds_a_small_person_the_whole_photo_pass_misses(astronaut) -> None:
    canvas = _paper(1024, 1024)
    size, x, y = 128, 700, 300
    canvas[y : y + size, x : x + size] = cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_AREA)
    k = size / 512
    box = (x + 177 * k, y + 66 * k, x + 272 * k, y + 161 * k)
    whole_only = PersonSegmenter(face_crop=0).person_mask(canvas, [box])
    guided = PersonSegmenter().person_mask(canvas, [box])
    assert box_coverage(whole_only, box, 1.0, 0.5) < 0.3
    assert box_coverage(guided, box, 1.0, 0.5) > 0.9


def test_flat_paper_and_document_have_no_person(segmenter: PersonSegmenter) -> None:
    assert mask_coverage(segmenter.person_mask(_paper(300, 400), []), 0.5) < 0.005
    page = np.repeat(data.text()[..., None], 3, axis=2).astype(np.float32) / 255.0
    assert mask_coverage(segmenter.person_mask(page, []), 0.5) < 0.005


def test_large_scan_is_worked_on_a_capped_copy() -> None:
    seg = PersonSegmenter(max_side=256, tiles=2)
    image = _paper(600, 1500)
    assert seg.working_shape(image.shape) == (102, 256)
    mask = seg.person_mask(image, [(700.0, 200.0, 760.0, 270.0)])
    assert mask.shape == (102, 256)
    assert len(seg._tile_windows(102, 256)) >= 2


def test_mask_statistics() -> None:
    mask = np.zeros((10, 10), np.float32)
    assert mask_coverage(mask, 0.5) == 0.0 and mask_confidence(mask, 0.5) == 0.0
    mask[:5] = 1.0
    mask[5:7] = 0.75
    assert mask_coverage(mask, 0.5) == pytest.approx(0.7)
    assert mask_confidence(mask, 0.5) == pytest.approx((50 * 1.0 + 20 * 0.5) / 70)
    assert box_coverage(mask, (0.0, 0.0, 10.0, 5.0), 1.0, 0.5) == 1.0
    assert box_coverage(mask, (0.0, 20.0, 10.0, 30.0), 1.0, 0.5) == 0.0  # outside the mask
