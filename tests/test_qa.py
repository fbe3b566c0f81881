"""Tests for photoarchive.qa: metrics and the processed/review triage."""

import re

import cv2
import numpy as np
import pytest

from photoarchive import qa

# Mirrors the `qa` defaults of config.schema.yaml.
CFG = {
    "sharpness_size": 512,
    "face_ssim_size": 64,
    "min_face_ssim": 0.55,
    "min_face_detail_ratio": 0.5,
    "min_face_score": 0.9,
    "min_sharpness_ratio": 0.8,
    "min_face_ratio": 0.03,
    "max_colour_cast": 10.0,
    "max_noise_gain": 1.5,
    "review_missing_face": True,
    "review_document_faces": True,
    "second_opinion_score": 0.5,
}

IDENTITY = {"guard": True, "warn": 0.4, "review": 0.5, "drift_warn": 1.5, "drift_review": 1.75, "strength_step": 20,
            "min_strength": 20}

CLEAN = {
    "faces": 2,
    "largest_face_ratio": 0.2,
    "sharpness_before": 300.0,
    "sharpness_after": 320.0,
    "noise_before": 0.02,
    "noise_after": 0.018,
    "colour_cast_after": 2.0,
    "face_ssim": 0.8,
    "face_detail_ratio": 0.9,
    "identity_distance": 0.2,
    "face_checks": [{"index": 0, "score": 0.99, "identity_distance": 0.2},
                    {"index": 1, "score": 0.97, "identity_distance": 0.15}],
    "identity_flags": [],
    "restore_errors": [],
    "is_document": False,
    "person_found": True,
}


def face(seed: int = 0, size: int = 96) -> np.ndarray:
    """A crude face-like crop: skin disc, two eyes, a mouth, with some texture."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 0.2, np.float32)
    c = size // 2
    cv2.circle(img, (c, c), int(size * 0.4), (0.85, 0.7, 0.6), -1)
    for x in (int(size * 0.35), int(size * 0.65)):
        cv2.circle(img, (x, int(size * 0.4)), size // 14, (0.1, 0.1, 0.1), -1)
    cv2.ellipse(img, (c, int(size * 0.68)), (size // 6, size // 16), 0, 0, 360, (0.5, 0.2, 0.2), -1)
    return np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)


def test_face_ssim_is_one_for_identical_faces_and_lower_for_changed_ones():
    a = face()
    assert qa.face_ssim(a, a.copy()) == pytest.approx(1.0)
    # Different crop sizes are compared at the same low resolution.
    assert qa.face_ssim(a, cv2.resize(a, (200, 200))) > 0.9
    # Brightness and contrast changes from enhancement are not a change of the face.
    assert qa.face_ssim(a, np.clip(0.1 + 0.6 * a, 0, 1)) > 0.95
    other = np.ascontiguousarray(a[::-1])  # upside down: eyes where the mouth was
    assert qa.face_ssim(a, other) < 0.7
    moved = face(seed=1)
    cv2.circle(moved, (30, 60), 8, (0.1, 0.1, 0.1), -1)  # an extra dark blob on the cheek
    assert qa.face_ssim(a, moved) < qa.face_ssim(a, face(seed=1)) < 1.0
    with pytest.raises(ValueError, match="at least 7"):
        qa.face_ssim(a, a, size=4)


def test_lab_conversion_is_exact_and_keeps_16bit_levels():
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    img = rng.random((40, 50, 3)).astype(np.float32)
    lab = qa.rgb_to_lab(img)
    np.testing.assert_allclose(lab, rgb2lab(img.astype(np.float64)), atol=0.01)
    np.testing.assert_allclose(qa.lab_to_rgb(lab), img, atol=1e-4)
    ramp = np.linspace(0.3, 0.4, 4096, dtype=np.float32).reshape(64, 64)
    gray = np.repeat(ramp[..., None], 3, axis=2)
    assert len(np.unique(qa.rgb_to_lab(gray)[..., 0])) == 4096  # cv2's float Lab gives ~50 here


def test_noise_sigma_estimates_gaussian_noise():
    rng = np.random.default_rng(0)
    gray = 0.5 + rng.normal(0, 0.02, (200, 200)).astype(np.float32)
    img = np.repeat(gray[..., None], 3, axis=2)
    assert qa.noise_sigma(img) == pytest.approx(0.02, rel=0.1)
    assert qa.noise_sigma(np.full((50, 50, 3), 0.5, np.float32)) == 0.0


def test_sharpness_drops_with_blur_and_ignores_grain():
    img = np.zeros((200, 300, 3), np.float32)
    img[:, ::20] = 1.0
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    blurred = cv2.GaussianBlur(img, (0, 0), 4.0)
    assert qa.sharpness(img) > 5 * qa.sharpness(blurred)
    rng = np.random.default_rng(0)
    grainy = np.clip(blurred + rng.normal(0, 0.03, blurred.shape), 0, 1).astype(np.float32)
    raw = qa.sharpness(grainy, noise_compensate=False)
    assert qa.sharpness(grainy) < 0.2 * raw
    # Size-normalised: the same picture at another scale reads about the same.
    big = cv2.resize(img, (600, 400), interpolation=cv2.INTER_CUBIC)
    assert qa.sharpness(big, size=300) == pytest.approx(qa.sharpness(img, size=300), rel=0.35)


def test_colour_cast_zero_for_gray_large_for_yellow():
    gray = np.repeat(np.linspace(0.1, 0.9, 64, dtype=np.float32)[None, :, None], 3, axis=2)
    gray = np.repeat(gray, 16, axis=0)
    assert qa.colour_cast(gray) < 0.5
    yellow = np.clip(gray * np.float32([1.05, 1.0, 0.7]), 0, 1)
    a, b = qa.lab_cast(yellow)
    assert b > 10 and qa.colour_cast(yellow) > 10


def test_largest_face_ratio():
    assert qa.largest_face_ratio([], (300, 400, 3)) == 0.0
    boxes = [(10, 10, 40, 40), (100.0, 50.0, 160.0, 140.0)]
    assert qa.largest_face_ratio(boxes, (300, 400, 3)) == pytest.approx(90 / 300)
    assert qa.largest_face_ratio([(-50, -50, 30, 30)], (300, 400)) == pytest.approx(30 / 300)
    with pytest.raises(ValueError):
        qa.largest_face_ratio([(1, 2, 3)], (300, 400))


def test_triage_processes_a_clean_record():
    verdict, reasons = qa.triage(CLEAN, CFG, IDENTITY)
    assert verdict == "processed" and reasons


def test_kept_film_grain_is_not_a_defect():
    # A grainy scan whose grain the restore step kept on purpose: as noisy after as before.
    verdict, _ = qa.triage(dict(CLEAN, noise_before=0.045, noise_after=0.05), CFG, IDENTITY)
    assert verdict == "processed"


def test_kept_toning_is_not_a_colour_cast():
    verdict, _ = qa.triage(dict(CLEAN, colour_cast_after=18.0, tone_kept=True), CFG, IDENTITY)
    assert verdict == "processed"


def test_triage_processes_a_photo_without_faces():
    metrics = dict(CLEAN, faces=0, largest_face_ratio=0.0, face_ssim=None, person_found=False)
    verdict, reasons = qa.triage(metrics, CFG)
    assert verdict == "processed" and "no faces" in reasons[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"restore_errors": ["gpen: out of memory"]}, "restoration failed: gpen: out of memory"),
        ({"face_ssim": 0.41}, "face similarity 0.41 < 0.55"),
        ({"sharpness_after": 150.0}, "sharpness fell from 300 to 150 (ratio 0.50 < 0.80)"),
        ({"largest_face_ratio": 0.02}, "largest face is 0.020 of the image's short side < 0.030"),
        ({"colour_cast_after": 14.2}, "colour cast 14.2 > 10.0"),
        ({"noise_after": 0.05}, "noise σ rose from 0.020 to 0.050 (×2.5 > ×1.5)"),
        ({"face_detail_ratio": 0.3}, "face detail fell to 0.30 of the scan's (< 0.50)"),
        ({"face_checks": [{"index": 0, "score": 0.99, "identity_distance": 0.62}]},
         "face 0: identity distance 0.62 from the scan > 0.50"),
        ({"face_checks": [{"index": 1, "score": 0.83}]}, "face 1: detection score 0.83 < 0.90"),
        ({"face_checks": [{"index": 0, "score": 0.99, "identity_distance": 0.3, "shape_drift": 2.4}]},
         "face 0: shape drift 2.40 % of the face > 1.75 %"),
        ({"identity_flags": ["face 0: identity distance 0.44, shape drift 0.80 % of the face: still above the warn "
                             "level (0.40 or 1.50 %) at the lowest strength 20 after 3 retries"]},
         "face 0: identity distance 0.44, shape drift 0.80 %"),
        ({"faces": 0, "face_ssim": None}, "a person was detected but no face"),
        ({"faces": 0, "face_ssim": None, "faces_too_small": 0}, "a person was detected but no face"),
        ({"unrestored_faces": [{"box": [10, 20, 60, 80], "score": 1.2}]},
         "a second face detector (dlib HOG, score 1.20) sees a face at (10, 20, 60, 80)"),
        ({"is_document": True}, "document with 2 restored face(s)"),
    ],
)
def test_triage_routes_each_rule_to_review(change, expected):
    verdict, reasons = qa.triage(dict(CLEAN, **change), CFG, IDENTITY)
    assert verdict == "review"
    assert len(reasons) == 1 and reasons[0].startswith(expected)
    if "restore_errors" not in change:
        assert re.search(r"\d", reasons[0])  # reasons quote the number (and threshold)


def test_triage_collects_all_reasons_and_null_disables_a_rule():
    metrics = dict(CLEAN, face_ssim=0.3, noise_after=0.1)
    verdict, reasons = qa.triage(metrics, CFG)
    assert verdict == "review" and len(reasons) == 2
    verdict, reasons = qa.triage(metrics, dict(CFG, min_face_ssim=None, max_noise_gain=None))
    assert verdict == "processed"


def test_triage_skips_missing_metrics():
    verdict, _ = qa.triage({"faces": 0}, CFG)
    assert verdict == "processed"


def test_triage_names_missing_config_keys():
    with pytest.raises(ValueError, match="'qa' lacks .*max_noise_gain"):
        qa.triage(CLEAN, {k: v for k, v in CFG.items() if k != "max_noise_gain"})


def test_second_opinion_finds_a_face_the_list_left_out_and_not_a_known_one():
    from skimage import data

    astronaut = data.astronaut().astype(np.float32) / 255.0
    known = [(179.5, 60.2, 270.6, 176.1)]  # her face, as the detector reports it
    assert qa.unrestored_faces(astronaut, known, 0.5, 40) == []
    found = qa.unrestored_faces(astronaut, [], 0.5, 40)
    assert len(found) == 1 and qa._centre_inside(found[0]["box"], known[0])
    assert qa.unrestored_faces(astronaut, [], 0.5, 200) == []  # smaller than min_face_px: not a missed face


def test_a_person_whose_face_is_too_small_to_restore_is_not_a_missed_face():
    metrics = dict(CLEAN, faces=0, face_ssim=None, face_checks=[], faces_too_small=1)
    assert qa.triage(metrics, CFG, IDENTITY)[0] == "processed"
