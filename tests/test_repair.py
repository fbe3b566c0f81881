"""Tests for photoarchive.repair: damage masks, content left alone, grain in the fill, the record."""

import copy

import cv2
import numpy as np
import pytest

from photoarchive import repair as R

# Mirrors the `repair` defaults of config.schema.yaml (the stage gets its section with defaults filled).
CFG = {
    "enabled": True, "types": ["scratch", "dust", "crease"], "sensitivity": 50, "max_width": 4, "min_length": 40,
    "dust_max_area": 80, "seed_z": 6.0, "grow_z": 3.0, "line_z": 3.0, "density_max": 0.05, "edge_max": 0.5,
    "max_bend": 0.15, "dark_factor": 1.5, "protect_faces": True, "neighbours_max": 8, "face_factor": 2.0,
    "dilate": 1, "strip_rows": 1024, "crease": {"enabled": False, "max_width": 6, "min_length": 0.25},
}


def cfg_with(**changes) -> dict:
    cfg = copy.deepcopy(CFG)
    cfg.update(changes)
    return cfg


def scene(h: int = 256, w: int = 256, grain: float = 0.01, seed: int = 0) -> np.ndarray:
    """A soft 'photo': a diagonal ramp with a few blurred blobs, plus film grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.3 + 0.4 * (xx + yy) / (h + w)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(15, 40)
        base += 0.15 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    img = np.repeat(base[..., None], 3, axis=2) + rng.normal(0, grain, (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def draw_line(img: np.ndarray, p0, p1, value: float, width: int = 2) -> np.ndarray:
    """`img` with an anti-aliased line added (value > 0 brighter, < 0 darker); returns the coverage."""
    h, w = img.shape[:2]
    big = np.zeros((h * 4, w * 4), np.uint8)
    cv2.line(big, (p0[0] * 4, p0[1] * 4), (p1[0] * 4, p1[1] * 4), 255, 4 * width, cv2.LINE_AA)
    cover = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    img += (value * cover)[..., None]
    np.clip(img, 0, 1, out=img)
    return cover >= 0.25


def near(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def recall(truth: np.ndarray, found: np.ndarray) -> float:
    return float((truth & near(found)).sum() / truth.sum())


def test_bright_scratches_at_several_angles_are_found():
    img = scene()
    truth = np.zeros(img.shape[:2], bool)
    truth |= draw_line(img, (20, 30), (230, 60), 0.3)  # shallow
    truth |= draw_line(img, (10, 240), (60, 90), 0.25, width=1)  # steep, thin
    truth |= draw_line(img, (150, 250), (250, 130), 0.35, width=3)  # diagonal, wide
    masks = R.damage_mask(img, CFG)
    assert recall(truth, masks["scratch"] | masks["dust"]) >= 0.8
    found = masks["scratch"] | masks["dust"]
    assert (found & ~near(truth)).sum() <= 0.1 * found.sum()  # nothing much else marked


def test_crossing_scratches_are_found():
    """Two crossing scratches make one X-shaped component; split by direction, each is a straight line."""
    img = scene()
    truth = draw_line(img, (20, 30), (230, 60), 0.3) | draw_line(img, (40, 240), (90, 20), 0.25, width=1)
    masks = R.damage_mask(img, CFG)
    assert recall(truth, masks["scratch"]) >= 0.8


def draw_arc(img: np.ndarray, centre, axes, start: float, end: float, value: float, width: int = 2) -> np.ndarray:
    """`img` with an anti-aliased elliptic arc added (like `draw_line`); returns the coverage mask."""
    h, w = img.shape[:2]
    big = np.zeros((h * 4, w * 4), np.uint8)
    cv2.ellipse(big, (centre[0] * 4, centre[1] * 4), (axes[0] * 4, axes[1] * 4), 0, start, end, 255, 4 * width,
                cv2.LINE_AA)
    cover = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    img += (value * cover)[..., None]
    np.clip(img, 0, 1, out=img)
    return cover >= 0.25


def test_strongly_curved_scratch_is_found():
    """An arc turning through 90° is too bent as a whole; its pieces of one direction are straight enough."""
    img = scene(seed=8)
    truth = draw_arc(img, (40, 230), (180, 180), 270, 360, 0.3)
    masks = R.damage_mask(img, CFG)
    assert recall(truth, masks["scratch"]) >= 0.7
    found = masks["scratch"]
    assert (found & ~near(truth)).sum() <= 0.1 * max(found.sum(), 1)


def test_brick_joints_are_not_crossing_scratches():
    """A grid of thin bright lines (mortar joints) falls apart into many straight pieces: content."""
    img = scene(seed=9)
    for y in range(20, 256, 24):
        draw_line(img, (0, y), (255, y), 0.2, width=1)
        for x in range(12 if (y // 24) % 2 else 0, 256, 48):
            draw_line(img, (x, y), (x, min(255, y + 24)), 0.2, width=1)
    masks = R.damage_mask(img, CFG)
    assert masks["scratch"].mean() < 0.005


def test_highlight_rim_of_an_object_is_left_alone():
    """A bright rim along the outline of a dark round object (a helmet's edge) is not a scratch: the
    picture under it steps from one level to another."""
    img = scene(seed=10)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    disc = ((yy - 140) ** 2 + (xx - 130) ** 2 <= 80**2).astype(np.float32)
    img[:] = img * (1 - 0.5 * cv2.GaussianBlur(disc, (0, 0), 1.0)[..., None])
    draw_arc(img, (130, 140), (80, 80), 0, 360, 0.3, width=2)
    repaired, masks, _ = R.repair(img, CFG)
    assert masks["scratch"].mean() < 0.002
    assert np.any(np.abs(repaired - img) > 1 / 255, axis=2).mean() < 0.005


def test_dust_specks_are_found():
    img = scene(seed=1)
    rng = np.random.default_rng(3)
    truth = np.zeros(img.shape[:2], bool)
    for k in range(6):
        layer = np.zeros(img.shape[:2], np.float32)
        centre = (int(rng.integers(20, 236)), int(rng.integers(20, 236)))
        cv2.circle(layer, centre, int(rng.integers(1, 4)), 1.0, -1, cv2.LINE_AA)
        img += ((0.4 if k % 2 else -0.4) * layer)[..., None]
        truth |= layer >= 0.25
    np.clip(img, 0, 1, out=img)
    masks = R.damage_mask(img, CFG)
    assert recall(truth, masks["dust"] | masks["scratch"]) >= 0.8


def test_ends_and_pieces_of_handwriting_are_not_dust():
    """Stroke ends, dots and short bars of text are compact dark marks too; their continuation lies
    right beside them, which a speck of dust does not have."""
    rng = np.random.default_rng(3)
    gray = np.full((200, 400), 0.8, np.float32)
    for row, text in enumerate(("handwritten note", "x = (a - b) / 2", "photo 1923, Lyon")):
        cv2.putText(gray, text, (10, 50 + 60 * row), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0.25, 2, cv2.LINE_AA)
    gray = np.clip(gray + rng.normal(0, 0.01, gray.shape).astype(np.float32), 0, 1)
    masks = R.damage_mask(np.repeat(gray[..., None], 3, axis=2), CFG)
    assert masks["dust"].mean() < 0.0005 and masks["scratch"].mean() < 0.0005


def test_clean_line_content_is_left_untouched():
    """Pinstripes (dense parallel lines), a hatched patch and an eyebrow-like dark arc are content."""
    img = scene(seed=2)
    h, w = img.shape[:2]
    x = np.arange(w)[None, :] + 0.2 * np.arange(h)[:, None]
    stripes = cv2.GaussianBlur((np.mod(x, 8.0) < 1.5).astype(np.float32), (0, 0), 0.6)
    region = np.zeros((h, w), np.float32)
    region[: h // 2, : w // 2] = 1.0
    img *= 1 - 0.5 * (stripes * region)[..., None]
    for k in range(10):  # hatching: short dark strokes close together
        draw_line(img, (140 + 8 * k, 150), (150 + 8 * k, 200), -0.3, width=1)
    arc = np.zeros((h * 4, w * 4), np.uint8)
    cv2.ellipse(arc, (60 * 4, 200 * 4), (40 * 4, 15 * 4), 0, 200, 340, 255, 12, cv2.LINE_AA)
    img *= 1 - 0.5 * cv2.resize(arc, (w, h), interpolation=cv2.INTER_AREA)[..., None].astype(np.float32) / 255
    repaired, masks, record = R.repair(img, CFG)
    changed = np.any(np.abs(repaired - img) > 1 / 255, axis=2)
    assert changed.mean() <= 0.005
    assert sum(record["shares"].values()) <= 0.005


def test_fill_keeps_the_grain_of_the_surroundings():
    grain = 0.02
    img = scene(grain=grain, seed=4)
    truth = draw_line(img, (10, 128), (246, 120), 0.4, width=3)
    repaired, masks, _ = R.repair(img, CFG)
    assert recall(truth, masks["scratch"]) >= 0.9
    inside = near(truth, 1)
    band = near(truth, 12) & ~near(truth, 4)
    gray = cv2.cvtColor(repaired, cv2.COLOR_RGB2GRAY)
    high = gray - cv2.GaussianBlur(gray, (0, 0), 2.0)
    sigma_in, sigma_out = float(high[inside].std()), float(high[band].std())
    assert 0.6 <= sigma_in / sigma_out <= 1.5  # neither a smooth patch nor extra noise
    # The scratch is gone: the filled pixels sit at the level of their surroundings.
    assert abs(float(gray[inside].mean()) - float(gray[band].mean())) < 0.03
    assert float(gray[inside].mean()) < float(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[inside].mean()) - 0.1


def test_fill_does_not_copy_a_nearby_edge_as_grain():
    # A dark scratch 6 px above and along a strong edge: grain borrowed from across the scratch must not
    # bring the edge's step with it (the earlier low-pass fill did: mean error 0.11).
    clean = scene(seed=8)
    clean[128:] = np.clip(clean[128:] + 0.4, 0, 1)
    img = clean.copy()
    truth = draw_line(img, (0, 122), (255, 122), -0.3, width=2)
    mask = near(truth, 1)
    filled = R.fill(img, mask)
    assert float(np.abs(filled - clean)[mask].mean()) < 0.03  # grain-level error (σ 0.01)
    assert np.array_equal(filled[~mask], img[~mask])  # only the masked pixels are written


def test_fill_keeps_the_texture_under_a_translucent_scratch():
    # A dark scratch over a fine pattern that inpainting from the sides cannot rebuild: the pattern shows
    # through the scratch and the fill keeps it (Telea plus borrowed grain: mean error 0.043).
    clean = scene(seed=9)
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float32)
    clean = np.clip(clean + (0.08 * np.sin(2 * np.pi * xx / 5) * np.sin(2 * np.pi * yy / 7))[..., None], 0, 1)
    img = clean.copy()
    truth = draw_line(img, (20, 30), (230, 220), -0.3, width=2)
    mask = near(truth, 1)
    filled = R.fill(img, mask, core=truth)
    assert float(np.abs(img - clean)[truth].mean()) > 0.2
    assert float(np.abs(filled - clean)[truth].mean()) < 0.033
    assert np.array_equal(filled[~mask], img[~mask])


def test_fill_of_an_opaque_mark_has_the_grain_of_the_surroundings():
    # Nothing shows through an opaque mark: the grain it lacks is borrowed from around it.
    img = scene(grain=0.02, seed=5)
    truth = draw_line(img.copy(), (10, 100), (246, 140), 0.4, width=3)
    img[truth] = 0.95
    filled = R.fill(img, near(truth, 1), core=truth)
    gray = cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY)
    high = gray - cv2.GaussianBlur(gray, (0, 0), 2.0)
    inside, band = near(truth, 1), near(truth, 12) & ~near(truth, 4)
    assert 0.6 <= float(high[inside].std()) / float(high[band].std()) <= 1.5
    assert abs(float(gray[inside].mean()) - float(gray[band].mean())) < 0.03


def test_scratch_across_strips_is_found_whole():
    img = scene(h=300, seed=5)
    truth = draw_line(img, (128, 5), (140, 295), 0.3)
    one = R.damage_mask(img, CFG)["scratch"]
    strips = R.damage_mask(img, cfg_with(strip_rows=128))["scratch"]
    assert recall(truth, strips) >= 0.8
    assert (one ^ strips).sum() <= 0.1 * one.sum()


def test_faint_mark_is_left_alone_inside_a_face_box():
    img = scene(seed=6)
    draw_line(img, (100, 60), (160, 200), 0.06)  # a faint scratch across the 'face'
    found = R.damage_mask(img, CFG)["scratch"]
    protected = R.damage_mask(img, CFG, faces=[(80.0, 50.0, 180.0, 210.0)])["scratch"]
    assert found.sum() > 0
    assert protected[50:210, 80:180].sum() < 0.5 * found[50:210, 80:180].sum()


def test_record_shares_and_off_switch():
    img = scene(seed=7)
    draw_line(img, (20, 30), (230, 60), 0.3)
    repaired, masks, record = R.repair(img, CFG)
    assert record["enabled"] and set(record["shares"]) == set(R.DAMAGE_TYPES)
    for name, share in record["shares"].items():
        assert share == pytest.approx(masks[name].mean(), abs=1e-6)
    assert record["shares"]["scratch"] > 0
    assert record["shares_text"].startswith("scratch ") and record["shares_text"].endswith("%")
    assert repaired.dtype == np.float32 and repaired.shape == img.shape
    same, masks_off, off = R.repair(img, cfg_with(enabled=False))
    assert np.array_equal(same, img) and off["shares_text"] == "off"
    assert not any(m.any() for m in masks_off.values())


def test_shares_text_and_label_image():
    assert R.shares_text({"scratch": 0.0012, "dust": 0.0003, "crease": 0.0}) == "scratch 0.12%; dust 0.03%"
    assert R.shares_text({"scratch": 0.0, "dust": 0.0, "crease": 0.0}) == "none"
    masks = {t: np.zeros((4, 4), bool) for t in R.DAMAGE_TYPES}
    masks["dust"][1, 1] = True
    picture = R.label_image(masks)
    assert tuple(picture[1, 1]) == R.DAMAGE_COLOURS["dust"] and picture[0, 0].sum() == 0


def test_catalogue_overrides():
    assert R.catalogue_overrides({"repair": "off", "repair_sensitivity": " 70 ", "title": "x"}) == {
        "enabled": False, "sensitivity": 70.0}
    assert R.catalogue_overrides({"repair": "", "repair_sensitivity": ""}) == {}
    assert R.catalogue_overrides({"repair": "Yes"}) == {"enabled": True}
    with pytest.raises(ValueError, match="repair"):
        R.catalogue_overrides({"repair": "maybe"})
    with pytest.raises(ValueError, match="repair_sensitivity"):
        R.catalogue_overrides({"repair_sensitivity": "150"})
    assert R.apply_overrides(CFG, {"enabled": False})["enabled"] is False and CFG["enabled"] is True


def test_names_missing_config_keys():
    cfg = cfg_with()
    del cfg["seed_z"]
    with pytest.raises((KeyError, ValueError), match="seed_z"):
        R.damage_mask(scene(h=64, w=64), cfg)


def saucer(seed: int = 12) -> np.ndarray:
    """A scene with a wide, slightly darker elliptical object whose lower outline carries a soft bright
    highlight (the rim of a saucer seen at an angle)."""
    img = scene(seed=seed)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = (((xx - 128) / 110) ** 2 + ((yy - 120) / 60) ** 2 <= 1).astype(np.float32)
    img *= 1 - 0.25 * cv2.GaussianBlur(inside, (0, 0), 1.5)[..., None]
    rim = np.zeros((h * 4, w * 4), np.uint8)
    cv2.ellipse(rim, (128 * 4, 120 * 4), (106 * 4, 56 * 4), 0, 20, 160, 255, 8, cv2.LINE_AA)
    rim = cv2.resize(rim, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    soft = cv2.GaussianBlur(rim, (0, 0), 1.2)
    img += 0.25 * soft[..., None] / max(float(soft.max()), 1e-6)
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.mark.xfail(strict=True, reason="issue #11: two close parallel scratches joined into one straight "
                   "component count each other as texture (density_max); open")
def test_close_parallel_scratches_are_found():
    """Two long scratches 5-20 px apart converging down the picture (the pair in the coffee demo scan)."""
    img = scene(h=400, w=256, seed=13)
    truth = draw_line(img, (90, 42), (70, 384), 0.3, width=1) | draw_line(img, (110, 56), (80, 346), 0.25, width=1)
    masks = R.damage_mask(img, CFG)
    assert recall(truth, masks["scratch"]) >= 0.8


def test_bright_elliptical_rim_along_an_outline_is_left_alone():
    """The soft highlight along a saucer's lower outline is part of the picture, not a scratch."""
    masks = R.damage_mask(saucer(), CFG)
    assert masks["scratch"].mean() < 0.002
