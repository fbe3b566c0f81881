"""Tests for photoarchive.synthetic (aged prints, benchmark archive) and the bundled demo archive."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from photoarchive.synthetic import ASTRONAUT_FACE_BOX, aged_print, aged_print_marked, synthetic_archive

DEMO = Path(__file__).resolve().parents[1] / "demo"


def _ramp(h: int = 96, w: int = 128) -> np.ndarray:
    """Neutral gray horizontal ramp from black to white, H×W×3 float32."""
    row = np.linspace(0.0, 1.0, w, dtype=np.float32)
    return np.repeat(np.tile(row, (h, 1))[:, :, None], 3, axis=2)


def _luma(img: np.ndarray) -> np.ndarray:
    return img @ np.array([0.299, 0.587, 0.114], np.float32)


def test_same_seed_same_result_and_different_seed_differs():
    img = _ramp()
    a = aged_print(img, 7)
    b = aged_print(img, 7)
    c = aged_print(img, 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(img, _ramp()), "input must not be modified"


@pytest.mark.parametrize("shape", [(60, 80, 3), (60, 80), (60, 80, 1)])
def test_output_is_float32_rgb_in_unit_range(shape):
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = aged_print(img, 1, strength=2.0)
    assert out.shape == (60, 80, 3)
    assert out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_gray_input_turns_yellow():
    out = aged_print(np.full((64, 64), 0.5, np.float32), 3)
    r, g, b = out.reshape(-1, 3).mean(axis=0)
    assert b < g < r
    assert r - b > 0.05


def test_contrast_is_lowered_and_blacks_lifted():
    img = _ramp()
    out = aged_print(img, 5)
    lo_in, hi_in = np.percentile(_luma(img), [2, 98])
    lo_out, hi_out = np.percentile(_luma(out), [2, 98])
    assert hi_out - lo_out < 0.85 * (hi_in - lo_in)
    assert lo_out > lo_in + 0.03
    assert _luma(out).std() < _luma(img).std()


def test_strength_scales_the_damage():
    img = _ramp()
    mild = aged_print(img, 2, strength=0.5)
    harsh = aged_print(img, 2, strength=2.0)
    assert np.abs(harsh - img).mean() > np.abs(mild - img).mean()
    assert np.array_equal(aged_print(img, 2, strength=0.0), img)


def test_rejects_integer_pixels_and_bad_strength():
    with pytest.raises(TypeError, match="float"):
        aged_print(np.zeros((8, 8, 3), np.uint8), 0)
    with pytest.raises(ValueError, match="strength"):
        aged_print(_ramp(), 0, strength=-1.0)
    with pytest.raises(ValueError, match="shape"):
        aged_print(np.zeros((8, 8, 4), np.float32), 0)


@pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="this OpenCV build has no Haar cascades")
def test_aged_astronaut_keeps_a_detectable_face():
    from skimage import data

    img = aged_print(data.astronaut().astype(np.float32) / 255.0, 11, strength=1.2)
    gray = cv2.cvtColor(np.round(img * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    assert len(faces) == 1
    x, y, w, h = faces[0]
    x0, y0, x1, y1 = ASTRONAUT_FACE_BOX
    assert x0 <= x and y0 <= y and x + w <= x1 and y + h <= y1


def test_synthetic_archive_writes_n_readable_distinct_scans(tmp_path):
    paths = synthetic_archive(tmp_path, 8, seed=3)
    assert len(paths) == 8
    assert len(set(paths)) == 8
    for path in paths:
        assert path.suffix == ".jpg" and path.is_file()
        assert tmp_path in path.parents
        with Image.open(path) as im:
            im.load()
            assert im.mode == "RGB"
            assert 600 <= max(im.size) <= 1200
    again = synthetic_archive(tmp_path / "again", 2, seed=3)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths[:2]]
    assert synthetic_archive(tmp_path / "none", 0) == []


def test_synthetic_archive_uses_sub_folders(tmp_path):
    paths = synthetic_archive(tmp_path, 12, seed=0)
    depths = {len(p.relative_to(tmp_path).parts) for p in paths}
    assert 1 in depths and max(depths) >= 2


def test_demo_metadata_points_at_existing_files():
    with open(DEMO / "metadata.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["file", "date", "title", "description", "people", "archive_id"]
    for row in rows:
        rel = row["file"]
        if ".zip/" in rel:
            archive, member = rel.split(".zip/", 1)
            with zipfile.ZipFile(DEMO / f"{archive}.zip") as zf:
                assert member in zf.namelist(), rel
        else:
            assert (DEMO / rel).is_file(), rel
    assert (DEMO / "family" / "Großmutter 1951.jpg").read_bytes() == (
        DEMO / "unsorted" / "grandmother_copy.jpg"
    ).read_bytes()


def test_aged_print_marked_gives_the_ground_truth_of_its_marks():
    """The repair benchmark's aged prints: the same print as aged_print, the print before its marks, and
    masks that hold every pixel the marks visibly changed (within their 1-px antialiased rim)."""
    img = np.random.default_rng(0).uniform(0.3, 0.7, (200, 240, 3)).astype(np.float32)
    aged, unmarked, truth = aged_print_marked(img, 5, strength=2.0)
    np.testing.assert_array_equal(aged, aged_print(img, 5, strength=2.0))
    assert truth["scratch"].any() and truth["dust"].any() and not truth["crease"].any()
    changed = np.abs(aged - unmarked).max(axis=2) > 0.1
    marked = cv2.dilate((truth["scratch"] | truth["dust"]).astype(np.uint8), np.ones((3, 3), np.uint8))
    assert changed.any() and not (changed & (marked == 0)).any()
