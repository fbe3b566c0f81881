"""Tests for the face benchmark's scoring (bench/bench_faces.py) and its committed truth file."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load("bench_faces")
people = _load("people")


def test_exact_and_shifted_boxes_match_one_to_one():
    truth = [(0, 0, 100, 120), (300, 0, 380, 100)]
    dets = [(305, 5, 385, 105), (2, 3, 98, 118)]
    matched, missed, false = bench.match_faces(truth, [True, True], dets)
    assert matched == {0: 1, 1: 0}
    assert missed == [] and false == []


def test_duplicate_detection_of_one_face_is_a_false_face():
    truth = [(0, 0, 100, 100)]
    dets = [(0, 0, 100, 100), (5, 5, 95, 95)]
    matched, missed, false = bench.match_faces(truth, [True], dets)
    assert matched == {0: 0}  # the better overlap wins
    assert false == [1]


def test_centre_inside_matches_a_box_of_another_convention_but_not_a_tiny_or_huge_one():
    truth = [(100, 100, 200, 230)]  # tall RetinaFace-style box
    square = (130, 150, 230, 250)  # square box, shifted: IoU 0.32 but centre inside and a similar size
    assert bench.box_iou(truth[0], square) < 0.4
    assert bench.match_faces(truth, [True], [square])[0] == {0: 0}
    eye = (140, 140, 150, 150)  # centre inside but a tenth of the size: not this face
    assert bench.match_faces(truth, [True], [eye]) == ({}, [0], [0])
    whole = (0, 0, 600, 600)  # centre inside, far too large
    assert bench.match_faces(truth, [True], [whole]) == ({}, [0], [0])


def test_low_overlap_without_centre_inside_is_a_miss_and_a_false_face():
    truth = [(0, 0, 100, 100)]
    dets = [(60, 60, 160, 160)]  # IoU 0.087, centre (110, 110) outside
    assert bench.match_faces(truth, [True], dets) == ({}, [0], [0])


def test_optional_faces_are_neither_missed_nor_false_and_never_steal_a_counted_match():
    truth = [(0, 0, 100, 100), (500, 500, 520, 520), (10, 10, 110, 110)]
    counted = [True, False, False]  # optional tiny face, and an optional face overlapping the counted one
    dets = [(12, 12, 108, 108)]  # overlaps the optional face 2 better than the counted face 0
    matched, missed, false = bench.match_faces(truth, counted, dets)
    assert matched == {0: 0}
    assert missed == [] and false == []
    # an undetected optional face is not a miss; a detection on it is not false
    matched, missed, false = bench.match_faces(truth, counted, [(501, 501, 519, 519)])
    assert matched == {1: 0} and missed == [0] and false == []


def test_match_faces_rejects_mismatched_flags():
    with pytest.raises(ValueError):
        bench.match_faces([(0, 0, 1, 1)], [], [])


def test_landmark_error_is_normalised_by_the_truth_inter_ocular_distance():
    truth = np.array([[0, 0], [50, 0], [25, 30], [10, 50], [40, 50]], float)
    assert bench.landmark_error(truth, truth) == 0.0
    shifted = truth + [5, 0]  # every point 5 px off, IOD 50
    assert bench.landmark_error(shifted, truth) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        bench.landmark_error(truth, np.zeros((5, 2)))


def test_scaled_truth_scales_boxes_and_makes_small_faces_optional():
    entry = {"faces": [
        {"box": [0, 0, 100, 120], "kind": "face", "landmarks": [[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]]},
        {"box": [200, 0, 260, 70], "kind": "face", "landmarks": None},
        {"box": [300, 0, 330, 30], "kind": "optional", "why_optional": "smaller than min_face_px 40 (30 px)",
         "landmarks": None},
    ]}
    faces = bench.scaled_truth(entry, 0.5, 40)
    assert faces[0]["box"] == [0, 0, 50, 60] and faces[0]["counted"]
    assert np.allclose(faces[0]["landmarks"][0], [(30.5 * 0.5) - 0.5, (40.5 * 0.5) - 0.5])
    assert not faces[1]["counted"] and faces[1]["small"]  # 30 px at half size
    assert not faces[2]["counted"] and faces[2]["small"]


def test_truth_file_matches_the_photo_catalogue():
    truth = json.loads((ROOT / "bench" / "data" / "faces_truth.json").read_text())
    assert len(truth["photos"]) >= 12
    for name, entry in truth["photos"].items():
        src = people.SOURCE_BY_NAME[name]
        assert entry["sha256"] == src.sha256
        w, h = entry["size"]
        assert entry["faces_counted"] == sum(f["kind"] == "face" for f in entry["faces"])
        for face in entry["faces"]:
            x0, y0, x1, y1 = face["box"]
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            if face["kind"] == "face":
                assert min(x1 - x0, y1 - y0) >= truth["min_face_px"]
            if face["landmarks"] is not None:
                assert np.asarray(face["landmarks"]).shape == (5, 2)
    groups = people.same_person_groups()
    assert len(groups["barack_obama"]) >= 3
