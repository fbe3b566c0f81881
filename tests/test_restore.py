"""Tests for photoarchive.restore: backends, selection, style controls, restore_faces."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from skimage import data

from photoarchive.faces import Face, FaceDetector, align_face, alignment_template
from photoarchive.restore import (
    ClassicalRestorer,
    GPENRestorer,
    Restorer,
    build_restorer,
    catalogue_overrides,
    estimate_noise,
    guard_identity,
    region_masks,
    resolve_controls,
    restore_faces,
)

# Controls that make a fake restorer's effect show fully (the defaults are conservative).
FULL = {"strength": 100, "skin_protection": 0.0, "grain": 0.0, "degradation_scale": 1.0}


class FakeRestorer(Restorer):
    """Applies ``fn`` to each crop and remembers the inputs."""

    def __init__(self, fn, size: int = 256, name: str = "fake"):
        self.fn, self.size, self.name = fn, size, name
        self.inputs: list[np.ndarray] = []

    def restore_crop(self, crop, scale=1.0):
        self.inputs.append(crop.copy())
        return self.fn(crop)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)


def _hue_shift(crop: np.ndarray) -> np.ndarray:
    lab = _lab(crop)
    lab[:, :, 1] += 25.0
    lab[:, :, 2] -= 25.0
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0, 1)


def _highpass_energy(x: np.ndarray) -> float:
    gray = cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY)
    return float(np.mean((gray - cv2.GaussianBlur(gray, (0, 0), 1.0)) ** 2))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = data.astronaut().astype(np.float32) / 255.0
    return np.clip(img + rng.normal(0, 0.03, img.shape).astype(np.float32), 0, 1)


@pytest.fixture(scope="module")
def faces(photo) -> list[Face]:
    kept, _ = FaceDetector({"detector": "haar"}, "/nonexistent").detect(photo)
    assert len(kept) == 1
    return kept


def _face_box(face: Face, shrink: float = 0.25) -> tuple[slice, slice]:
    x0, y0, x1, y1 = face.box
    dx, dy = (x1 - x0) * shrink, (y1 - y0) * shrink
    return slice(int(y0 + dy), int(y1 - dy)), slice(int(x0 + dx), int(x1 - dx))


# -------------------------------------------------------------------------------------------- controls


def test_strength_zero_returns_input_bytes(photo, faces):
    fake = FakeRestorer(lambda c: 1.0 - c)
    out, record = restore_faces(photo, faces, fake, cfg={**FULL, "strength": 0})
    assert out.tobytes() == photo.tobytes()
    assert fake.inputs == [] and record["faces"][0]["status"] == "unchanged"
    # The same through a per-photo override given as a CSV string.
    out, _ = restore_faces(photo, faces, fake, cfg=FULL, overrides={"strength": "0"})
    assert out.tobytes() == photo.tobytes()


def test_full_strength_changes_the_face_and_record_is_json(photo, faces):
    fake = FakeRestorer(lambda c: 1.0 - c)
    before = photo.copy()
    out, record = restore_faces(photo, faces, fake, cfg=FULL)
    np.testing.assert_array_equal(photo, before)
    ys, xs = _face_box(faces[0])
    assert np.abs(out[ys, xs] - (1.0 - photo[ys, xs])).mean() < 0.03  # resampling blurs the noise a bit
    entry = record["faces"][0]
    assert entry["status"] == "restored" and entry["backend"] == "fake"
    assert entry["controls"]["strength"] == 100.0 and record["n_restored"] == 1
    json.dumps(record)


def test_skin_protection_keeps_original_chroma(photo, faces):
    ys, xs = _face_box(faces[0])
    ab_orig = _lab(photo[ys, xs])[:, :, 1:].mean(axis=(0, 1))
    shifted, _ = restore_faces(photo, faces, FakeRestorer(_hue_shift), cfg=FULL)
    protected, _ = restore_faces(photo, faces, FakeRestorer(_hue_shift), cfg={**FULL, "skin_protection": 1.0})
    ab_shifted = _lab(shifted[ys, xs])[:, :, 1:].mean(axis=(0, 1))
    ab_protected = _lab(protected[ys, xs])[:, :, 1:].mean(axis=(0, 1))
    assert np.abs(ab_shifted - ab_orig).max() > 10.0  # the fake restorer really moves the hue
    assert np.abs(ab_protected - ab_orig).max() < 1.5


def test_grain_moves_high_frequency_energy_towards_the_original(photo, faces):
    def blur(c):
        return cv2.GaussianBlur(c, (0, 0), 4.0)

    ys, xs = _face_box(faces[0])
    e_orig = _highpass_energy(photo[ys, xs])
    smooth, _ = restore_faces(photo, faces, FakeRestorer(blur), cfg={**FULL, "grain": 0.0})
    grainy, _ = restore_faces(photo, faces, FakeRestorer(blur), cfg={**FULL, "grain": 1.0})
    e_smooth, e_grainy = _highpass_energy(smooth[ys, xs]), _highpass_energy(grainy[ys, xs])
    assert e_smooth < 0.5 * e_orig
    assert e_smooth < e_grainy and abs(e_grainy - e_orig) < 0.5 * abs(e_smooth - e_orig)


def test_degradation_scale_gives_a_smoother_restorer_input(photo, faces):
    plain, degraded = FakeRestorer(lambda c: c), FakeRestorer(lambda c: c)
    restore_faces(photo, faces, plain, cfg=FULL)
    restore_faces(photo, faces, degraded, cfg={**FULL, "degradation_scale": 4.0})
    assert plain.inputs[0].shape == degraded.inputs[0].shape == (256, 256, 3)
    assert _highpass_energy(degraded.inputs[0]) < 0.5 * _highpass_energy(plain.inputs[0])


def test_region_weight_zero_keeps_the_eyes(photo, faces):
    fake = FakeRestorer(lambda c: 1.0 - c)
    out, _ = restore_faces(photo, faces, fake, cfg={**FULL, "region_weights": {"eyes": 0.0}})
    for x, y in np.rint(faces[0].landmarks[:2]).astype(int):
        np.testing.assert_array_equal(out[y - 1 : y + 2, x - 1 : x + 2], photo[y - 1 : y + 2, x - 1 : x + 2])
    nose_x, nose_y = np.rint(faces[0].landmarks[2]).astype(int)
    assert np.abs(out[nose_y, nose_x] - photo[nose_y, nose_x]).max() > 0.1


def test_region_masks_sit_on_the_template():
    masks = region_masks(512)
    t = alignment_template(512).astype(int)
    assert masks["eyes"][t[0, 1], t[0, 0]] == pytest.approx(1.0)
    assert masks["lips"][(t[3, 1] + t[4, 1]) // 2, (t[3, 0] + t[4, 0]) // 2] == pytest.approx(1.0)
    assert sum(masks.values()).max() <= 1.0 + 1e-6


def test_resolve_controls_checks_overrides():
    controls = resolve_controls({"strength": 60}, {"region_weights.lips": "0.5", "grain": 0.1})
    assert controls["strength"] == 60.0 and controls["grain"] == 0.1
    assert controls["region_weights"]["lips"] == 0.5 and controls["region_weights"]["eyes"] == 1.0
    with pytest.raises(ValueError, match="unknown restore override"):
        resolve_controls({}, {"strenght": 10})
    with pytest.raises(ValueError, match="strength"):
        resolve_controls({}, {"strength": 150})
    with pytest.raises(ValueError, match="degradation_scale"):
        resolve_controls({"degradation_scale": 0.5})


def test_catalogue_overrides_from_a_metadata_row(photo, faces):
    row = {"file": "a.jpg", "title": "x", "restore_strength": " 0 ", "restore_grain": "",
           "restore_weight_eyes": "0.5"}
    overrides = catalogue_overrides(row)
    assert overrides == {"strength": "0", "region_weights.eyes": "0.5"}
    out, record = restore_faces(photo, faces, FakeRestorer(lambda c: 1 - c), cfg=FULL, overrides=overrides)
    assert out.tobytes() == photo.tobytes() and record["controls"]["region_weights"]["eyes"] == 0.5
    with pytest.raises(ValueError, match="strength"):
        resolve_controls({}, catalogue_overrides({"restore_strength": "lots"}))


def test_one_failing_face_does_not_fail_the_photo(photo, faces):
    calls = {"n": 0}

    def flaky(c):
        calls["n"] += 1
        if calls["n"] % 2 == 0:  # the second face, in the batch and again on the retry
            raise RuntimeError("boom")
        return c

    two = [faces[0], Face.from_dict({**faces[0].to_dict(), "landmarks": (faces[0].landmarks + 40).tolist()})]
    out, record = restore_faces(photo, [f.to_dict() for f in two], FakeRestorer(flaky), cfg=FULL)
    assert [e["status"] for e in record["faces"]] == ["restored", "error"]
    assert "boom" in record["faces"][1]["error"] and record["n_failed"] == 1
    assert out.shape == photo.shape


def test_return_crops_for_qa(photo, faces):
    out, record, crops = restore_faces(photo, faces, FakeRestorer(lambda c: c), cfg=FULL, return_crops=True)
    assert len(crops) == 1 and crops[0]["before"].shape == crops[0]["after"].shape == (256, 256, 3)
    assert "before" not in json.dumps(record)


# ------------------------------------------------------------------------------------------- classical


def test_classical_restorer_denoises_and_is_deterministic():
    rng = np.random.default_rng(3)
    clean = np.zeros((512, 512, 3), np.float32)
    clean[:, :256] = 0.3
    clean[:, 256:] = 0.7
    noisy = np.clip(clean + rng.normal(0, 0.05, clean.shape).astype(np.float32), 0, 1)
    restorer = ClassicalRestorer({"sharpen": 0.0, "local_contrast": 0.0})
    out = restorer.restore_crop(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32 and 0.0 <= out.min() <= out.max() <= 1.0
    assert estimate_noise(out) < 0.6 * estimate_noise(noisy)
    assert abs(out[:, 250:262].mean(axis=(0, 2))[0] - 0.3) < 0.05  # the edge survives
    np.testing.assert_array_equal(out, restorer.restore_crop(noisy))
    assert restorer.info() == {"backend": "classical", "size": 512, "model_file": None, "model_sha256": None}


def test_classical_end_to_end_with_defaults(photo, faces):
    selector = build_restorer({"backend": "classical"}, "/nonexistent")
    out, record = restore_faces(photo, faces, selector, cfg={})
    assert record["backend"] == "classical" and record["fallback_reason"] is None
    assert record["faces"][0]["status"] == "restored"
    assert not np.array_equal(out, photo)


# --------------------------------------------------------------------------------------- selection/gpen


def test_gpen_with_missing_weights_names_file_and_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        build_restorer({"backend": "gpen", "model": "512"}, tmp_path)
    assert "GPEN-BFR-512.pth" in str(err.value)
    assert "python -m photoarchive.download GPEN-BFR-512" in str(err.value)
    with pytest.raises(FileNotFoundError, match="python -m photoarchive.download GPEN-BFR-1024"):
        build_restorer({"backend": "gpen", "model": 1024}, tmp_path)
    with pytest.raises(FileNotFoundError, match="GPEN-BFR-512.pth"):
        build_restorer({"backend": "gpen", "model": "auto"}, tmp_path)


def test_auto_falls_back_to_classical_with_reason(tmp_path, photo, faces):
    selector = build_restorer({"backend": "auto"}, tmp_path)
    assert selector.backend == "classical"
    assert "GPEN-BFR-512.pth" in selector.fallback_reason
    assert isinstance(selector.restorer_for(photo.shape), ClassicalRestorer)
    _, record = restore_faces(photo, faces, selector, cfg={"strength": 50})
    assert record["backend"] == "classical" and "GPEN-BFR-512.pth" in record["fallback_reason"]


TINY_GPEN = {"size": 128, "style_dim": 128, "n_mlp": 4, "channel_multiplier": 1, "narrow": 0.125,
             "blur_kernel": [1, 3, 3, 1], "lr_mlp": 0.01, "isconcat": True}


@pytest.fixture()
def tiny_gpen_file(tmp_path, monkeypatch):
    """A random tiny GPEN saved as GPEN-BFR-512.pth; `load_gpen` is stubbed if the module lacks it."""
    torch = pytest.importorskip("torch")
    gpen = pytest.importorskip("photoarchive.models.gpen")
    torch.manual_seed(0)
    model = gpen.GPEN(**TINY_GPEN)
    path = tmp_path / "GPEN-BFR-512.pth"
    torch.save(model.state_dict(), path)
    if not hasattr(gpen, "load_gpen"):

        def load_gpen(p, device):
            net = gpen.GPEN(**TINY_GPEN)
            net.load_state_dict(torch.load(p, map_location="cpu", weights_only=True), strict=True)
            return net.eval().to(device)

        monkeypatch.setattr(gpen, "load_gpen", load_gpen, raising=False)
    return path


def test_gpen_backend_tiny_model_on_cpu(tiny_gpen_file, photo, faces):
    selector = build_restorer({"backend": "gpen", "model": "512", "device": "cpu", "fp16": True},
                              tiny_gpen_file.parent)
    restorer = selector.restorer_for(photo.shape)
    assert isinstance(restorer, GPENRestorer)
    assert restorer.size == 128 and restorer.device.type == "cpu" and restorer.fp16 is False
    assert selector.restorer_for(photo.shape) is restorer  # loaded once
    out, record = restore_faces(photo, faces, selector, cfg=FULL)
    sha = hashlib.sha256(tiny_gpen_file.read_bytes()).hexdigest()
    assert record["backend"] == "gpen" and record["model_sha256"] == sha
    assert record["faces"][0]["model_sha256"] == sha and record["faces"][0]["model_file"] == "GPEN-BFR-512.pth"
    assert record["faces"][0]["status"] == "restored"
    assert np.isfinite(out).all() and 0.0 <= out.min() and out.max() <= 1.0
    json.dumps(record)


def test_gpen_pre_and_post_processing(tiny_gpen_file, monkeypatch):
    import torch

    restorer = GPENRestorer(tiny_gpen_file, device="cpu")
    seen = {}

    class Stub(torch.nn.Module):
        size = 128

        def forward(self, x):
            seen["x"] = x.clone()
            return (torch.full_like(x, 3.0) * (x[:, :1] > 0) - 0.5, None)  # >1 → clamp, -0.5 → 0.25

    restorer.model = Stub()
    crop = np.zeros((128, 128, 3), np.float32)
    crop[..., 0] = 1.0  # red
    crop[..., 2] = 0.25
    out = restorer.restore_crop(crop)
    x = seen["x"]
    assert x.shape == (1, 3, 128, 128) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), [1.0, -1.0, -0.5])  # RGB order, (x - 0.5) / 0.5
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0])  # 3 - 0.5 → 1.25·… clamped to 1
    assert out.dtype == np.float32


def test_auto_model_size_is_chosen_per_photo_and_loaded_once(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    gpen = pytest.importorskip("photoarchive.models.gpen")
    loads = []

    class Stub(torch.nn.Module):
        def __init__(self, size):
            super().__init__()
            self.size = size

        def forward(self, x):
            return x

    def load_gpen(path, device):
        loads.append(path.name)
        return Stub(512 if "512" in path.name else 1024)

    monkeypatch.setattr(gpen, "load_gpen", load_gpen, raising=False)
    (tmp_path / "GPEN-BFR-512.pth").write_bytes(b"512")
    (tmp_path / "GPEN-BFR-1024.pth").write_bytes(b"1024")
    selector = build_restorer({"backend": "gpen", "device": "cpu"}, tmp_path)
    assert selector.restorer_for((800, 600, 3)).size == 512
    assert selector.restorer_for((600, 801, 3)).size == 1024
    assert selector.restorer_for((100, 100, 3)).size == 512
    assert loads == ["GPEN-BFR-512.pth", "GPEN-BFR-1024.pth"]
    (tmp_path / "GPEN-BFR-1024.pth").unlink()
    selector = build_restorer({"backend": "gpen", "device": "cpu"}, tmp_path)
    assert selector.restorer_for((3000, 2000, 3)).size == 512 and "GPEN-BFR-1024.pth" in selector.model_note


def test_bad_gpen_file_auto_falls_back_gpen_raises(tmp_path, monkeypatch, photo):
    torch = pytest.importorskip("torch")
    gpen = pytest.importorskip("photoarchive.models.gpen")
    if not hasattr(gpen, "load_gpen"):
        monkeypatch.setattr(gpen, "load_gpen", lambda p, d: torch.load(p, weights_only=True), raising=False)
    (tmp_path / "GPEN-BFR-512.pth").write_bytes(b"not a checkpoint")
    selector = build_restorer({"backend": "auto", "model": "512", "device": "cpu"}, tmp_path)
    assert isinstance(selector.restorer_for(photo.shape), ClassicalRestorer)
    assert "loading GPEN-BFR-512.pth failed" in selector.fallback_reason
    selector = build_restorer({"backend": "gpen", "model": "512", "device": "cpu"}, tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - whatever load_gpen raises for a foreign file
        selector.restorer_for(photo.shape)


# ------------------------------------------------------------------------------------- identity guard

GUARD = {"guard": True, "warn": 0.4, "review": 0.5, "drift_warn": 1.5, "drift_review": 1.75, "strength_step": 20,
         "min_strength": 20}


class ProportionalEmbedder:
    """A stand-in embedder: distance (or drift, with ``as_drift``) is the blended share of the restorer's
    change, times ``gain``."""

    def __init__(self, gain: float, as_drift: bool = False):
        self.gain, self.as_drift = gain, as_drift

    def reference(self, before, box):
        return before

    def compare_with(self, ref, after):
        value = self.gain * float(np.abs(after - ref).mean()) / 0.25
        return {"distance": 0.0, "drift": value} if self.as_drift else {"distance": value, "drift": 0.0}

    def info(self):
        return {"embedder": "proportional"}


def test_guard_lowers_strength_step_by_step_until_the_distance_passes():
    crop = np.full((32, 32, 3), 0.5, np.float32)
    restored = crop + 0.25  # at strength s the stand-in distance is 0.9 s / 100
    checked = guard_identity(ProportionalEmbedder(0.9), crop, restored, np.ones((32, 32), np.float32), 80.0,
                             (4, 4, 28, 28), GUARD)
    assert [t[0] for t in checked["identity_tries"]] == [80, 60, 40]
    assert checked["strength"] == 40 and checked["identity"] == "lowered"
    assert checked["identity_distance"] == pytest.approx(0.36)


def test_guard_lowers_strength_on_shape_drift_too():
    crop = np.full((32, 32, 3), 0.5, np.float32)
    checked = guard_identity(ProportionalEmbedder(2.5, as_drift=True), crop, crop + 0.25,
                             np.ones((32, 32), np.float32), 80.0, (4, 4, 28, 28), GUARD)
    assert [t[0] for t in checked["identity_tries"]] == [80, 60]  # drift 2.0, then 1.5 (not above drift_warn)
    assert checked["identity"] == "lowered" and checked["shape_drift"] == pytest.approx(1.5)


def test_guard_sends_to_review_when_retries_run_out():
    crop = np.full((32, 32, 3), 0.5, np.float32)
    checked = guard_identity(ProportionalEmbedder(3.0), crop, crop + 0.25, np.ones((32, 32), np.float32), 80.0,
                             (4, 4, 28, 28), GUARD)
    assert [t[0] for t in checked["identity_tries"]] == [80, 60, 40, 20]
    assert checked["strength"] == 20 and checked["identity"] == "review"  # 0.6 at the lowest strength


@pytest.fixture(scope="module")
def embedder():
    from photoarchive.identity import FaceEmbedder

    return FaceEmbedder()


@pytest.fixture(scope="module")
def mobile_faces(photo) -> list[Face]:
    kept, _ = FaceDetector({"detector": "retinaface_mobile"}, "/x").detect(photo)
    assert len(kept) == 1
    return kept


def test_identity_guard_passes_a_good_restoration(photo, mobile_faces, embedder):
    out, record = restore_faces(photo, mobile_faces, ClassicalRestorer(size=512), cfg={"identity": GUARD},
                                embedder=embedder)
    entry = record["faces"][0]
    assert entry["identity"] == "ok" and entry["strength"] == 80 and entry["identity_distance"] < GUARD["warn"]
    assert record["identity_flags"] == [] and record["identity_guard"]["embedder"] == "dlib-resnet-v1"
    assert not np.array_equal(out, photo)


def test_identity_guard_fires_on_a_swapped_face(photo, mobile_faces, embedder):
    # A "restorer" that returns another person: the camera man's face aligned onto the same template.
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2).astype(np.float32) / 255.0
    other = FaceDetector({"detector": "retinaface_mobile"}, "/x").detect(camera)[0][0]
    swap = align_face(camera, other.landmarks, 256)[0]
    cfg = {**FULL, "strength": 80, "identity": GUARD}
    _, record = restore_faces(photo, mobile_faces, FakeRestorer(lambda c: swap), cfg=cfg, embedder=embedder)
    entry = record["faces"][0]
    assert entry["identity_tries"][0][1] > GUARD["review"]  # the swap itself is far from the astronaut
    assert entry["strength"] < 80 and entry["identity"] != "ok"
    # Without the guard the swap would be pasted at full strength.
    _, unguarded = restore_faces(photo, mobile_faces, FakeRestorer(lambda c: swap),
                                 cfg={**cfg, "identity": {**GUARD, "guard": False}}, embedder=embedder)
    assert unguarded["faces"][0]["strength"] == 80 and "identity" not in unguarded["faces"][0]
