"""Tests for photoarchive.enhance: each operation, the presets, the auto choice and the record."""

import copy
import json

import cv2
import numpy as np
import pytest

from photoarchive import enhance as E
from photoarchive.qa import CAST_METHODS, colour_cast, lab_cast, noise_sigma, sharpness

# Mirrors the `enhance` defaults of config.schema.yaml (the stage gets its section with defaults filled).
CFG = {
    "preset": "auto",
    "presets": {
        "natural": {"strength": [50, 70], "denoise": [20, 30], "sharpen": [40, 60]},
        "detail": {"strength": [70, 90], "denoise": [40, 60], "sharpen": [50, 70]},
        "strong": {"strength": [90, 100], "denoise": [60, 80], "sharpen": [70, 90]},
    },
    "overrides": {"strength": None, "denoise": None, "sharpen": None},
    "brightness": 0.0,
    "measure": {"size": 512, "percentiles": [1.0, 99.0]},
    "auto": {
        "noise": {"detail": 0.01, "strong": 0.02},
        "sharpness": {"detail": 100.0, "strong": 30.0},
        "dynamic_range": {"detail": 0.7, "strong": 0.5},
        "colour_cast": {"detail": 8.0, "strong": 15.0},
    },
    "cast": {"method": "consensus", "max_shift": 20.0, "white_percent": 2.0},
    "nlmeans": {"h_max": 12.0, "colour_factor": 1.0, "template_window": 7, "search_window": 7},
    "stretch": {"low_percent": 0.5, "high_percent": 99.5},
    "clahe": {"clip_limit": 2.0, "tiles": 8, "bins": 256},
    "unsharp": {"amount_max": 1.5, "sigma": 1.0, "max_overshoot": 0.02},
    "tone": "keep",
}


def cfg_with(**changes) -> dict:
    cfg = copy.deepcopy(CFG)
    cfg.update(changes)
    return cfg


def scene(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """A clean, sharp, full-range, neutral 'photo': a gray ramp with gray blocks and discs."""
    rng = np.random.default_rng(seed)
    ramp = np.tile(np.linspace(0.05, 0.95, w, dtype=np.float32), (h, 1))
    img = np.repeat(ramp[..., None], 3, axis=2)
    for _ in range(10):
        x0, y0 = int(rng.integers(0, w - w // 6)), int(rng.integers(0, h - h // 6))
        cv2.rectangle(img, (x0, y0), (x0 + w // 7, y0 + h // 7), (float(rng.uniform(0, 1)),) * 3, -1)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, centre, int(rng.integers(h // 20, h // 8)), (float(rng.uniform(0, 1)),) * 3, -1)
    return np.clip(img, 0, 1).astype(np.float32)


def damaged(img: np.ndarray, noise: float = 0.04, seed: int = 1) -> np.ndarray:
    """Blurred, faded, yellowed and grainy version of `img`."""
    rng = np.random.default_rng(seed)
    out = cv2.GaussianBlur(img, (0, 0), 2.5)
    out = (0.35 + 0.35 * out) * np.float32([1.0, 0.93, 0.72])
    out = out + rng.normal(0, noise, out.shape).astype(np.float32)
    return np.clip(out, 0, 1).astype(np.float32)


def flat_noisy(value: float = 0.5, sigma: float = 0.05, shape=(96, 128), seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = value + rng.normal(0, sigma, (*shape, 3))
    return np.clip(img, 0, 1).astype(np.float32)


def yellow_gray() -> np.ndarray:
    img = np.full((64, 64, 3), 0.5, np.float32) * np.float32([1.08, 1.02, 0.74])
    ramp = np.linspace(0.8, 1.2, 64, dtype=np.float32)[None, :, None]
    return np.clip(img * ramp, 0, 1).astype(np.float32)


def test_remove_cast_moves_yellow_gray_towards_neutral():
    img = yellow_gray()
    assert lab_cast(img)[1] > 15  # b* > 0: yellow
    for method in CAST_METHODS:
        half = E.remove_cast(img, 0.5, method=method, max_shift=30.0)
        full = E.remove_cast(img, 1.0, method=method, max_shift=30.0)
        assert colour_cast(full) < 0.25 * colour_cast(img) < colour_cast(half) < colour_cast(img)
    # Gray world neutralises the mean: R ≈ B again.
    full = E.remove_cast(img, 1.0, method="grayworld")
    assert colour_cast(full) < 1.0
    assert abs(float(full[..., 0].mean() - full[..., 2].mean())) < 0.01
    # White patch neutralises the brightest pixels (the paper white).
    full = E.remove_cast(img, 1.0, method="whitepatch", max_shift=30.0)
    assert abs(lab_cast(full[:, -2:], "grayworld")[1]) < 1.0


def test_remove_cast_is_limited_and_zero_strength_is_identity():
    img = yellow_gray()
    np.testing.assert_array_equal(E.remove_cast(img, 0.0), img)
    limited = E.remove_cast(img, 1.0, max_shift=5.0)
    assert colour_cast(img) - colour_cast(limited) == pytest.approx(5.0, abs=0.5)
    with pytest.raises(ValueError, match="cast method"):
        E.remove_cast(img, 0.5, method="magic")


def test_denoise_lowers_noise_on_flat_image():
    img = flat_noisy()
    before = noise_sigma(img)
    mild, strong = E.denoise(img, 5.0), E.denoise(img, 12.0)
    assert noise_sigma(strong) < noise_sigma(mild) < before
    assert noise_sigma(strong) < before / 3
    assert abs(float(strong.mean()) - float(img.mean())) < 0.01


def test_denoise_keeps_fine_levels_of_16bit_gradient():
    # 0.30–0.40 spans 26 8-bit levels but ~6500 16-bit ones.
    ramp = np.linspace(0.3, 0.4, 4096, dtype=np.float32).reshape(64, 64)
    img = np.repeat(ramp[..., None], 3, axis=2)
    out = E.denoise(img, 10.0)
    assert len(np.unique(out[..., 1])) > 3000
    assert np.abs(out - img).mean() < 0.5 / 255 and np.abs(out - img).max() <= 2.5 / 255


def test_stretch_widens_percentile_range():
    img = 0.4 + 0.2 * scene()
    out = E.stretch_contrast(img, 1.0)
    p_in, p_out = np.percentile(img, [1, 99]), np.percentile(out, [1, 99])
    assert p_out[1] - p_out[0] > 2.5 * (p_in[1] - p_in[0])
    half = E.stretch_contrast(img, 0.5)
    assert np.ptp(img) < np.ptp(half) < np.ptp(out)
    np.testing.assert_array_equal(E.stretch_contrast(img, 0.0), img)


def test_local_contrast_raises_local_contrast():
    # A faint texture on a broad ramp: CLAHE should make the texture stronger.
    y, x = np.mgrid[0:128, 0:128].astype(np.float32)
    gray = 0.3 + 0.4 * x / 128 + 0.02 * np.sin(x / 2.0) * np.sin(y / 2.0)
    img = np.repeat(gray[..., None], 3, axis=2).astype(np.float32)

    def local_std(im: np.ndarray) -> float:
        g = im.mean(axis=2)
        return float((g - cv2.GaussianBlur(g, (0, 0), 4)).std())

    half, full = E.local_contrast(img, 0.5), E.local_contrast(img, 1.0)
    assert local_std(img) < local_std(half) < local_std(full)
    assert local_std(full) > 1.5 * local_std(img)
    assert len(np.unique(full)) > 20 * 256  # float maps, not 256 quantised levels


def test_clahe_agrees_with_opencv_on_8bit_data():
    gray8 = (scene(320, 384)[..., 0] * 120 + 60).astype(np.uint8)
    gray8 = cv2.add(gray8, (np.random.default_rng(3).random(gray8.shape) * 20).astype(np.uint8))
    ours_input = (gray8.astype(np.float32) + 0.999) / 256  # top of each 8-bit bin, as OpenCV's maps
    for clip in (100.0, 2.0):
        reference = cv2.createCLAHE(clipLimit=clip, tileGridSize=(8, 8)).apply(gray8).astype(np.float32)
        ours = E._clahe(ours_input, clip, 8, 256) * 255
        assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.99
        # Unclipped they agree to rounding; clipped, OpenCV hands the integer remainder of the excess
        # to the lowest bins first, which lifts its maps by a few levels.
        assert np.abs(ours - reference).mean() < (1.5 if clip == 100.0 else 6.0)


def test_sharpen_raises_laplacian_variance():
    img = cv2.GaussianBlur(scene(), (0, 0), 1.5)
    mild, strong = E.sharpen(img, 0.5), E.sharpen(img, 1.5)
    assert sharpness(img) < sharpness(mild) < sharpness(strong)


def test_brightness_offset_shifts_mean():
    img = 0.2 + 0.6 * scene()
    assert float(E.adjust_brightness(img, 0.1).mean()) == pytest.approx(float(img.mean()) + 0.1, abs=1e-4)
    assert float(E.adjust_brightness(img, -0.1).mean()) == pytest.approx(float(img.mean()) - 0.1, abs=1e-4)


@pytest.mark.parametrize(
    "operation",
    [
        lambda im: E.remove_cast(im, 0.8),
        lambda im: E.denoise(im, 10.0),
        lambda im: E.stretch_contrast(im, 1.0),
        lambda im: E.local_contrast(im, 1.0),
        lambda im: E.adjust_brightness(im, 0.3),
        lambda im: E.sharpen(im, 2.0),
    ],
)
def test_operations_return_float32_in_unit_range(operation):
    img = damaged(scene())
    out = operation(img)
    assert out.dtype == np.float32 and out.shape == img.shape
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_rejects_8bit_and_gray_input():
    with pytest.raises(TypeError, match="imageio"):
        E.sharpen(np.zeros((8, 8, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="H×W×3"):
        E.sharpen(np.zeros((8, 8), np.float32), 1.0)


def test_measure_image_reports_the_damage():
    clean, bad = E.measure_image(scene()), E.measure_image(damaged(scene()))
    assert set(clean) >= {"noise", "sharpness", "colour_cast", "cast_a", "cast_b", "dynamic_range",
                          "p_low", "p_high", "megapixels", "long_side"}
    assert clean["noise"] < 0.005 < 0.02 < bad["noise"]
    assert bad["sharpness"] < clean["sharpness"]
    assert bad["dynamic_range"] < 0.5 < clean["dynamic_range"]
    assert bad["cast_b"] > 10 > clean["colour_cast"]
    assert clean["long_side"] == 160 and clean["megapixels"] == pytest.approx(0.0192)
    json.dumps(clean)


def test_auto_chooses_strong_for_noisy_blurry_faded_scan():
    measures = E.measure_image(damaged(scene()))
    preset, reasons = E.choose_preset(measures, CFG)
    assert preset == "strong"
    text = " ".join(reasons)
    assert "noise σ=0.0" in text and "> 0.020" in text
    assert "dynamic range" in text and "colour cast" in text


def test_auto_chooses_natural_for_clean_scan():
    preset, reasons = E.choose_preset(E.measure_image(scene()), CFG)
    assert preset == "natural"
    assert reasons and "clean scan" in reasons[0] and "noise σ=" in reasons[0]


def test_auto_uses_configured_thresholds():
    measures = E.measure_image(scene())
    strict = cfg_with(auto={"dynamic_range": {"detail": 0.99, "strong": 0.95}})
    preset, reasons = E.choose_preset(measures, strict)
    assert preset == "strong" and "< 0.95" in reasons[0]


def test_fixed_preset_uses_middle_of_configured_ranges_and_overrides_win():
    measures = E.measure_image(scene())
    cfg = cfg_with(preset="detail")
    assert E.choose_preset(measures, cfg) == ("detail", ["preset 'detail' set in config"])
    knobs, reasons = E.choose_params("detail", measures, cfg)
    assert knobs == {"strength": 80.0, "denoise": 50.0, "sharpen": 60.0} and reasons == []
    cfg["presets"]["detail"]["denoise"] = [10, 20]
    cfg["overrides"]["sharpen"] = 5
    knobs, reasons = E.choose_params("detail", measures, cfg)
    assert knobs["denoise"] == 15.0 and knobs["sharpen"] == 5.0
    assert "sharpen 5 from enhance.overrides" in reasons


def test_auto_places_knobs_inside_the_preset_range():
    for img in (scene(), damaged(scene())):
        _, record = E.enhance(img, CFG)
        ranges = CFG["presets"][record["preset"]]
        for knob in E.KNOBS:
            low, high = ranges[knob]
            assert low <= record["knobs"][knob] <= high


def test_strong_preset_denoises_more_than_natural():
    img = damaged(scene(), noise=0.03)
    natural, rec_natural = E.enhance(img, cfg_with(preset="natural"))
    strong, rec_strong = E.enhance(img, cfg_with(preset="strong"))
    assert rec_strong["parameters"]["denoise"]["h"] > rec_natural["parameters"]["denoise"]["h"]
    assert rec_strong["parameters"]["sharpen"]["amount"] > rec_natural["parameters"]["sharpen"]["amount"]
    # Same steps but denoise only: strong leaves less noise.
    only_denoise = {"strength": 0, "sharpen": 0}
    natural = E.enhance(img, cfg_with(preset="natural", overrides=only_denoise))[0]
    strong = E.enhance(img, cfg_with(preset="strong", overrides=only_denoise))[0]
    assert noise_sigma(strong) < noise_sigma(natural) < noise_sigma(img)


def test_enhance_is_deterministic_float32_and_records_json():
    img = damaged(scene())
    out1, rec1 = E.enhance(img, CFG)
    out2, rec2 = E.enhance(img.copy(), CFG)
    np.testing.assert_array_equal(out1, out2)
    assert rec1 == rec2
    assert out1.dtype == np.float32 and out1.shape == img.shape
    assert 0.0 <= float(out1.min()) and float(out1.max()) <= 1.0
    record = json.loads(json.dumps(rec1))
    assert record["requested"] == "auto" and record["preset"] == "strong"
    assert record["measures_before"]["noise"] > 0.02
    assert record["parameters"]["denoise"]["h"] == pytest.approx(record["knobs"]["denoise"] / 100 * 12.0, abs=1e-3)
    assert list(record["parameters"]) == ["denoise", "cast", "stretch", "clahe", "brightness", "sharpen"]
    assert any("noise σ=" in r for r in record["reasons"])


def test_enhance_improves_a_damaged_scan():
    img = damaged(scene())
    out, _ = E.enhance(img, cfg_with(tone="neutral"))
    before, after = E.measure_image(img), E.measure_image(out)
    assert after["colour_cast"] < before["colour_cast"] / 4
    # tone: keep (the default) treats a yellowed monochrome print like a toned one: the paper is cleaned,
    # some warmth stays in the mid-tones.
    kept = E.measure_image(E.enhance(img, CFG)[0])
    assert kept["colour_cast"] < before["colour_cast"] / 3
    assert after["dynamic_range"] > before["dynamic_range"] + 0.3
    assert after["sharpness"] > before["sharpness"]


def test_enhance_keeps_fine_levels_of_16bit_sources():
    # A faded 16-bit-like ramp: the whole stage must not collapse it to 256 levels.
    ramp = np.linspace(0.35, 0.65, 128 * 160, dtype=np.float32).reshape(128, 160)
    img = np.repeat(ramp[..., None], 3, axis=2) * np.float32([1.0, 0.97, 0.9])
    out, _ = E.enhance(img, CFG)
    assert len(np.unique(out[..., 1])) > 0.75 * len(np.unique(img[..., 1])) > 50 * 256


def test_enhance_names_missing_config_keys():
    cfg = {k: v for k, v in CFG.items() if k not in ("auto", "clahe")}
    with pytest.raises(ValueError, match="'enhance' lacks auto, clahe"):
        E.enhance(scene(), cfg)


# ---- the print's character: halo-free sharpening, toning kept


def test_sharpen_with_overshoot_limit_draws_no_halo():
    img = np.full((40, 40, 3), 0.3, np.float32)
    cv2.circle(img, (20, 20), 2, (0.8, 0.8, 0.8), -1)  # a bright speck
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    plain, limited = E.sharpen(img, 1.5), E.sharpen(img, 1.5, max_overshoot=0.02)
    assert float(plain.min()) < 0.3 - 0.03  # a dark rim round the speck
    assert float(limited.min()) >= 0.3 - 0.02 - 1e-6
    assert float(limited.max()) <= float(img.max()) + 0.02 + 1e-6
    assert sharpness(limited) > sharpness(img)  # still sharper


def _toned(toner: str) -> np.ndarray:
    from photoarchive.synthetic import toned_print

    return toned_print(scene(240, 320), toner)


def _mid_ab(img: np.ndarray, mids: np.ndarray) -> np.ndarray:
    from photoarchive.qa import rgb_to_lab

    return rgb_to_lab(img)[mids].mean(axis=0)[1:]


@pytest.mark.parametrize("toner", ["sepia", "cyanotype"])
def test_tone_keep_keeps_toning_and_neutral_does_not(toner):
    from photoarchive.qa import rgb_to_lab

    img = _toned(toner)
    light = rgb_to_lab(img)[..., 0]
    mids = (light >= 30) & (light <= 70)
    before = _mid_ab(img, mids)
    assert np.hypot(*before) > 10  # clearly toned
    assert E.print_tone(img)["monochrome"] and E.print_tone(img)["toned"]
    kept = E.remove_cast(img, 1.0, tone="keep")
    assert np.hypot(*(_mid_ab(kept, mids) - before)) <= 3.0
    if toner == "sepia":  # today's behaviour (neutral) takes the cream highlights' cast out of every tone
        neutral = E.remove_cast(img, 1.0, tone="neutral")
        assert np.hypot(*(_mid_ab(neutral, mids) - before)) > 5.0
    # The whole stage with the default tone: keep.
    out, record = E.enhance(img, CFG)
    assert np.hypot(*(_mid_ab(out, mids) - before)) <= 5.0
    assert record["parameters"]["cast"]["tone"] == "keep"


def test_tone_keep_still_removes_yellowed_paper():
    img = _toned("sepia") * np.float32([1.0, 0.97, 0.90])  # a yellowed sepia print
    kept = E.remove_cast(img, 1.0, tone="keep")
    assert abs(E.print_tone(kept)["paper_b"]) < 0.5 * abs(E.print_tone(img)["paper_b"])
    untoned = damaged(scene(), noise=0.0)  # a yellowed black-and-white print: its paper is cleaned too
    assert E.print_tone(untoned)["monochrome"] and not E.print_tone(untoned)["toned"]
    kept = E.remove_cast(untoned, 1.0, tone="keep")
    assert abs(E.print_tone(kept)["paper_b"]) < 0.5 * abs(E.print_tone(untoned)["paper_b"])


def test_auto_does_not_pick_strong_for_a_toned_print():
    img = _toned("sepia")
    _, neutral = E.enhance(img, cfg_with(tone="neutral"))
    _, kept = E.enhance(img, CFG)
    assert kept["measures_before"]["colour_cast"] <= 8.0  # the toning is not counted as a cast
    assert kept["preset"] != "strong"
    assert kept["measures_before"]["colour_cast"] <= neutral["measures_before"]["colour_cast"]


def test_tone_keep_leaves_colour_photos_like_neutral():
    img = damaged(scene())
    img[..., 0] = np.clip(img[..., 0] + 0.2 * (np.arange(img.shape[1]) > 80)[None, :], 0, 1)  # a red area: colour
    assert not E.print_tone(img)["monochrome"]
    np.testing.assert_array_equal(E.remove_cast(img, 0.8, tone="keep"), E.remove_cast(img, 0.8, tone="neutral"))


def test_enhance_catalogue_overrides():
    assert E.catalogue_overrides({"enhance_tone": " Neutral "}) == {"tone": "neutral"}
    assert E.catalogue_overrides({"enhance_tone": "", "title": "x"}) == {}
    with pytest.raises(ValueError, match="enhance_tone"):
        E.catalogue_overrides({"enhance_tone": "sepia"})


@pytest.mark.parametrize("tone", ["neutral", "keep"])
def test_band_wise_enhance_matches_whole_image(monkeypatch, tone):
    """Large scans are enhanced a band of rows at a time: the result is the whole-image one within float32
    rounding, except where CLAHE's tile histograms amplify that rounding (a value rounded across a bin edge
    moves its tile's mapping a little): by under 1e-4 on average and half an 8-bit level at most."""
    img = damaged(scene(150, 170))
    cfg = cfg_with(preset="strong", tone=tone)
    monkeypatch.setattr(E, "_BAND_PIXELS", 10**9)  # one band
    whole, record_whole = E.enhance(img.copy(), cfg)
    monkeypatch.setattr(E, "_BAND_PIXELS", 1000)  # about 6 rows a band: many bands, thinner than the margins
    banded, record_banded = E.enhance(img.copy(), cfg)
    assert record_banded == record_whole
    diff = np.abs(banded - whole)
    # measured on a CPU with AVX-512: mean 1e-5, max 1.4e-3 (neutral); bands without context: mean 0.035, max 0.23
    assert float(diff.mean()) < 1e-4 and float(diff.max()) < 0.5 / 255


@pytest.mark.parametrize("name, kwargs", [("denoise", {"h": 12.0, "h_colour": 6.0}),
                                          ("sharpen", {"amount": 1.5, "sigma": 1.3, "max_overshoot": 0.02})])
def test_band_wise_filters_equal_whole_image_in_place_too(monkeypatch, name, kwargs):
    img = damaged(scene(150, 170))
    monkeypatch.setattr(E, "_BAND_PIXELS", 10**9)
    whole = getattr(E, name)(img, **kwargs)
    monkeypatch.setattr(E, "_BAND_PIXELS", 1000)
    banded = getattr(E, name)(img, **kwargs)
    in_place = img.copy()
    getattr(E, name)(in_place, **kwargs, out=in_place)
    np.testing.assert_array_equal(banded, whole)
    np.testing.assert_array_equal(in_place, whole)


@pytest.mark.parametrize("tone", ["neutral", "keep"])
def test_enhance_overwrite_gives_the_same_image_in_the_input_memory(tone):
    img = damaged(scene(90, 110))
    cfg = cfg_with(preset="strong", tone=tone)
    expected, record = E.enhance(img, cfg)
    np.testing.assert_array_equal(img, damaged(scene(90, 110)))  # the default leaves the input alone
    work = img.copy()
    out, record_in_place = E.enhance(work, cfg, overwrite=True)
    assert np.shares_memory(out, work)
    assert record_in_place == record
    np.testing.assert_array_equal(out, expected)
