"""Train the damage U-Net (`photoarchive.models.damage_unet`) here, offline and reproducibly.

    python -m photoarchive.damage_training --out models/damage_unet.pt [--steps 10000] [--seed 0]

Data: random crops of real photographs shipped with installed packages (scikit-image, matplotlib),
never the repair benchmark's held-out photos (rocket, motorcycle_left and its twin motorcycle_right,
coins, moon) nor its clean set (text, page, brick, grass, gravel, hubble_deep_field). The benchmark's
tune photos (camera, astronaut, coffee, chelsea) are among the training photos (with other damage),
so the tune set is in-sample for the learned detector; the held-out set is not.

A third of the crops are not of a photo but of a drawn texture that is NOT damage (Voronoi cells,
bricks, grass blades, hill-shaded relief of matplotlib's real elevation models, 1/f noise stretched
into wood grain). Each crop is scaled, faded or given more contrast, softened; then, on a third of
them, line-like picture content that is NOT damage is drawn (text, ruled or not, grids and parallel
stripes, sagging wires, star fields, outlined round shapes);
then `photoarchive.synthetic.add_damage` adds grain, scratches and dust with their masks (the same
generator as the benchmark, drawn with other seeds and counts), or, on 30 % of crops, grain and the
surface marks of `photoarchive.synthetic.aged_print` (specks, 1-px fibres, long faint scratches).
The net learns [scratch, dust] per pixel (binary cross-entropy, positives weighted).

Reproducible: every batch comes from numpy generators seeded by (seed, step), torch is seeded, runs
deterministic algorithms on `threads` CPU threads; the same command gives the same weights file.
"""

from __future__ import annotations

import argparse
import logging
import string
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from photoarchive.models.damage_unet import CLASSES, DamageUNet, parameter_count
from photoarchive.synthetic import add_damage, surface_marks

log = logging.getLogger(__name__)

# skimage.data loaders and matplotlib sample files: real photographs in no repair benchmark set
# except the tune set's four (see the module docstring).
SKIMAGE_PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "retina", "immunohistochemistry", "cell",
                  "clock")
MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)
# Never trained on: the benchmark's held-out and clean photos.
EXCLUDED = ("rocket", "motorcycle_left", "motorcycle_right", "coins", "moon", "text", "page", "brick", "grass",
            "gravel", "hubble_deep_field")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 10000
    batch: int = 6
    crop: int = 192
    lr: float = 3e-3
    seed: int = 0
    threads: int = 2
    pos_weight: float = 4.0  # scratch and dust pixels are a few % of a crop
    content_share: float = 0.35  # crops with drawn line-like content (negatives)
    texture_share: float = 0.35  # crops of a drawn texture instead of a photo (negatives)
    print_marks_share: float = 0.3  # crops damaged as aged_print damages a print, not by add_damage


def training_photos() -> list[np.ndarray]:
    """The training photographs as float32 gray H × W in [0, 1] (luminance as the detector sees it)."""
    from matplotlib import cbook
    from skimage import data

    assert not set(SKIMAGE_PHOTOS) & set(EXCLUDED)
    photos = [getattr(data, name)() for name in SKIMAGE_PHOTOS]
    photos += [np.asarray(plt_image(cbook.get_sample_data(name, asfileobj=False))) for name in MATPLOTLIB_PHOTOS]
    out = []
    for img in photos:
        img = img.astype(np.float32) / (255.0 if img.dtype == np.uint8 else 1.0)
        if img.ndim == 3:
            img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY)
        out.append(np.ascontiguousarray(img))
    return out


def plt_image(path: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------------
# Picture content that is not damage
# ---------------------------------------------------------------------------------------------------


def _soft(layer: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(layer, (0, 0), sigma) if sigma > 0 else layer


def _text(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    layer = np.zeros((h, w), np.float32)
    scale = rng.uniform(0.3, 1.0)
    line = max(8, int(30 * scale))
    ruled = rng.random() < 0.3
    for y in range(int(rng.integers(line, 2 * line)), h, line):
        words = "".join(rng.choice(list(string.ascii_letters + "  .,")) for _ in range(40))
        cv2.putText(layer, words, (int(rng.integers(-20, 10)), y), int(rng.integers(0, 8)), scale, 1.0,
                    int(rng.integers(1, 3)), cv2.LINE_AA)
        if ruled:  # a ledger or a notebook: a thin rule under each line of writing
            layer[min(h - 1, y + 3), :] = np.maximum(layer[min(h - 1, y + 3), :], rng.uniform(0.4, 1.0))
    return layer


def _stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Parallel lines (pinstripes, bars), sometimes crossed by a second set (a grid, a fence)."""
    layer = np.zeros((h, w), np.float32)
    sets = 1 if rng.random() < 0.5 else 2
    angle = rng.uniform(0, np.pi)
    for k in range(sets):
        a = angle + k * rng.uniform(np.pi / 4, np.pi / 2)
        spacing, width = rng.uniform(4, 16), rng.uniform(0.8, 2.0)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        across = xx * np.cos(a) + yy * np.sin(a)
        layer = np.maximum(layer, (np.mod(across, spacing) < width).astype(np.float32))
    if rng.random() < 0.5:  # only part of the picture (a jacket, a window)
        region = np.zeros((h, w), np.float32)
        y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        region[y0:y0 + int(rng.integers(h // 3, h)), x0:x0 + int(rng.integers(w // 3, w))] = 1.0
        layer *= region
    return layer


def _wires(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """2-4 sagging, parallel thin lines across the picture (power lines, rigging)."""
    layer = np.zeros((h * 4, w * 4), np.uint8)
    xs = np.linspace(-10, w + 10, 100)
    top, sag, gap = rng.uniform(0, h * 0.7), rng.uniform(-30, 30), rng.uniform(5, 20)
    for k in range(int(rng.integers(2, 5))):
        ys = top + gap * k + sag * ((xs - w / 2) / (w / 2)) ** 2
        cv2.polylines(layer, [np.round(np.stack([xs, ys], 1) * 4).astype(np.int32)], False, 255,
                      int(rng.integers(4, 9)), cv2.LINE_AA)
    out = cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    if rng.random() < 0.5:
        out = cv2.warpAffine(out, cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(0, 360)), 1.0), (w, h))
    return out


def _stars(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Many specks together (a star field, snow, a speckled fabric): specks in company are not dust."""
    layer = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(30, 120))):
        cv2.circle(layer, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(0, 3)),
                   float(rng.uniform(0.4, 1.0)), -1, cv2.LINE_AA)
    return layer


def _rims(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Outlined round shapes filled with a mid tone (plates, coins, eyes, buttons, wheels)."""
    layer = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(1, 6))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(6, w // 2)), int(rng.integers(6, h // 2)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(layer, centre, axes, angle, 0, 360, float(rng.uniform(0.4, 0.7)), -1, cv2.LINE_AA)
        cv2.ellipse(layer, centre, axes, angle, 0, 360, 1.0, int(rng.integers(1, 3)), cv2.LINE_AA)
    return layer


_CONTENT = (_text, _stripes, _wires, _stars, _rims)


def draw_content(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """`img` (gray) with one kind of line-like picture content drawn in, bright or dark, soft."""
    h, w = img.shape
    kind = _CONTENT[int(rng.integers(0, len(_CONTENT)))]
    layer = np.clip(_soft(kind(rng, h, w), rng.uniform(0.0, 0.8)), 0, 1) * rng.uniform(0.3, 0.9)
    if kind is _stars:  # on a dark sky
        return np.clip(img * rng.uniform(0.05, 0.3) + layer, 0, 1)
    if rng.random() < 0.6:
        return img * (1 - layer)
    return img + (1 - img) * layer


# ---------------------------------------------------------------------------------------------------
# Textures that are not damage (a crop of one of them replaces the photo)
# ---------------------------------------------------------------------------------------------------


def _cells(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Voronoi cells of varied tone with dark or bright borders (cobbles, crazed paint, leaves)."""
    n = int(rng.integers(8, 60))
    seeds = rng.uniform(0, 1, (n, 2)) * (w, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dist = np.sqrt((xx[..., None] - seeds[:, 0]) ** 2 + (yy[..., None] - seeds[:, 1]) ** 2)  # H × W × n
    nearest = np.sort(dist, axis=-1)
    border = np.clip(1 - (nearest[..., 1] - nearest[..., 0]) / rng.uniform(1.0, 3.0), 0, 1)
    tone = rng.uniform(0.2, 0.9, n).astype(np.float32)[np.argmin(dist, axis=-1)]
    edge = rng.uniform(0.0, 0.3) if rng.random() < 0.7 else rng.uniform(0.8, 1.0)
    return tone * (1 - border) + edge * border


def _bricks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Courses of bricks (or tiles, planks) of jittered tone between mortar lines."""
    row = rng.uniform(6, 24)
    length = row * rng.uniform(1.5, 4.0)
    mortar = rng.uniform(0.8, 2.5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    course = np.floor(yy / row)
    shifted = xx + (course % 2) * length / 2
    brick = np.floor(shifted / length) + 1000 * course
    tones = np.random.default_rng(int(rng.integers(0, 2**31))).uniform(0.35, 0.75, 4096).astype(np.float32)
    img = tones[(brick.astype(np.int64) * 7919) % 4096]
    joint = (np.mod(yy, row) < mortar) | (np.mod(shifted, length) < mortar)
    img = np.where(joint, rng.uniform(0.1, 0.95), img)
    img = img + rng.normal(0, rng.uniform(0.01, 0.05), (h, w))
    return cv2.warpAffine(img.astype(np.float32), cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(-30, 30)),
                          1.0), (w, h), borderMode=cv2.BORDER_REFLECT)


def _grass(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Many short curved blades, bright and dark, leaning one way (grass, straw, fur)."""
    img = np.full((h * 2, w * 2), rng.uniform(0.3, 0.6), np.float32)
    lean = rng.uniform(-0.6, 0.6)
    for _ in range(int(rng.integers(150, 500))):
        x, y = rng.uniform(0, 2 * w), rng.uniform(0, 2 * h)
        length, bend, a = rng.uniform(8, 40), rng.uniform(-0.5, 0.5), lean + rng.normal(0, 0.25)
        t = np.linspace(0, 1, 8)
        xs = x + length * (np.sin(a) * t + bend * t**2)
        ys = y - length * np.cos(a) * t
        cv2.polylines(img, [np.round(np.stack([xs, ys], 1)).astype(np.int32)], False,
                      float(rng.uniform(0.05, 0.95)), int(rng.integers(1, 4)), cv2.LINE_AA)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _terrain(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Hill-shaded relief of a real elevation model from matplotlib's sample data (ridges, gullies)."""
    dem = _elevations()[int(rng.integers(0, 2))]
    side = int(rng.integers(min(48, *dem.shape), min(dem.shape) + 1))
    y, x = int(rng.integers(0, dem.shape[0] - side + 1)), int(rng.integers(0, dem.shape[1] - side + 1))
    patch = cv2.resize(dem[y:y + side, x:x + side], (w, h), interpolation=cv2.INTER_CUBIC)
    gy, gx = np.gradient(patch * rng.uniform(2, 20) / max(float(np.ptp(patch)), 1e-6) * w / 100)
    sun = rng.uniform(0, 2 * np.pi)
    shade = (1 - gx * np.cos(sun) - gy * np.sin(sun)) / np.sqrt(1 + gx**2 + gy**2)
    return np.clip(0.5 + 0.35 * shade, 0, 1).astype(np.float32)


def _elevations() -> list[np.ndarray]:
    from matplotlib import cbook

    if not _DEMS:
        with np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False)) as dem:
            _DEMS.append(dem["elevation"].astype(np.float32))
        with np.load(cbook.get_sample_data("topobathy.npz", asfileobj=False)) as dem:
            _DEMS.append(dem["topo"].astype(np.float32))
    return _DEMS


_DEMS: list[np.ndarray] = []


def _fractal(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1/f^β noise, sometimes stretched one way (clouds, bark, wood grain, marble)."""
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    stretch = rng.uniform(1, 8) if rng.random() < 0.5 else 1.0
    f = np.sqrt((fy * stretch) ** 2 + fx**2)
    f[0, 0] = 1.0
    spectrum = f ** -rng.uniform(0.9, 1.9) * np.exp(2j * np.pi * rng.random((h, w)))
    field = np.fft.ifft2(spectrum).real
    field = (field - field.mean()) / (field.std() + 1e-9)
    img = 0.5 + rng.uniform(0.08, 0.2) * field
    if stretch > 1 and rng.random() < 0.5:  # rotate the grain
        img = cv2.warpAffine(img.astype(np.float32), cv2.getRotationMatrix2D((w / 2, h / 2),
                             float(rng.uniform(0, 180)), 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.clip(img, 0, 1).astype(np.float32)


_TEXTURES = (_cells, _bricks, _grass, _terrain, _fractal)


def draw_texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side × side gray texture of one random kind, in [0, 1]."""
    kind = _TEXTURES[int(rng.integers(0, len(_TEXTURES)))]
    return np.clip(kind(rng, side, side), 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------------


def sample(rng: np.random.Generator, photos: list[np.ndarray], cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(image 1 × crop × crop, target 2 × crop × crop) of one random training crop."""
    if rng.random() < cfg.texture_share:
        src = draw_texture(rng, cfg.crop * 2)
    else:
        src = photos[int(rng.integers(0, len(photos)))]
    scale = float(np.exp(rng.uniform(np.log(0.5), np.log(1.6))))
    side = min(int(np.ceil(cfg.crop / scale)) + 2, *src.shape)
    y, x = int(rng.integers(0, src.shape[0] - side + 1)), int(rng.integers(0, src.shape[1] - side + 1))
    img = cv2.resize(src[y:y + side, x:x + side], (cfg.crop, cfg.crop), interpolation=cv2.INTER_AREA
                     if scale < 1 else cv2.INTER_CUBIC)
    img = np.rot90(img, int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        img = img[:, ::-1]
    img = np.clip(np.ascontiguousarray(img), 0, 1) ** rng.uniform(0.7, 1.4)  # tone curve
    low, high = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)  # fading
    img = low + (high - low) * img
    img = _soft(img.astype(np.float32), rng.uniform(0.0, 1.0) if rng.random() < 0.5 else 0.0)
    if rng.random() < cfg.content_share:
        img = draw_content(rng, img).astype(np.float32)
    if rng.random() < cfg.print_marks_share:
        gray, masks = print_marks(rng, img)
    else:
        _, damaged, masks = add_damage(img, int(rng.integers(0, 2**31)), scratches=int(rng.integers(0, 5)),
                                       dust=int(rng.integers(0, 20)), grain=float(rng.uniform(0.003, 0.025)))
        gray = damaged[..., 0]  # add_damage keeps gray images gray: its three channels are equal
    target = np.stack([masks[c] for c in CLASSES]).astype(np.float32)
    return gray[None], target


def print_marks(rng: np.random.Generator, img: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(`img` with grain and aged_print's sharp surface marks in any of four orientations, {scratch, dust:
    bool mask}): 1-px fibres and long faint scratches that add_damage does not draw."""
    h, w = img.shape
    grainy = img + rng.normal(0, rng.uniform(0.003, 0.025), img.shape).astype(np.float32)
    signed, kinds = surface_marks(rng, h, w, strength=float(rng.uniform(0.5, 2.0)), scale=float(rng.uniform(0.5, 1.5)))
    turn = int(rng.integers(0, 4))
    signed = np.rot90(signed, turn)
    bright, dark = np.clip(signed, 0, 1), np.clip(-signed, 0, 1)
    out = (grainy * (1 - bright) + rng.uniform(0.8, 1.0) * bright) * (1 - 0.85 * dark)
    masks = {name: np.rot90(mask, turn) for name, mask in kinds.items()}
    return np.clip(out, 0, 1).astype(np.float32), masks


def batch(cfg: TrainConfig, step: int, photos: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch number `step`: the same for the same (seed, step), whatever ran before."""
    rng = np.random.default_rng([cfg.seed, step])
    images, targets = zip(*(sample(rng, photos, cfg) for _ in range(cfg.batch)), strict=True)
    x = torch.from_numpy(np.stack(images)) * 2 - 1
    return x, torch.from_numpy(np.stack(targets))


def train(cfg: TrainConfig, report_every: int = 25) -> DamageUNet:
    """A freshly trained DamageUNet (eval mode), `cfg.steps` AdamW steps with a one-cycle learning rate."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(cfg, report_every)
    finally:  # the caller's torch settings back (tests, a notebook)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(cfg: TrainConfig, report_every: int) -> DamageUNet:
    photos = training_photos()
    model = DamageUNet().to(memory_format=torch.channels_last)  # a third faster on the CPU than NCHW
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=max(cfg.steps, 1),
                                                   pct_start=0.15)
    pos_weight = torch.full((len(CLASSES), 1, 1), cfg.pos_weight)
    log.info("training DamageUNet (%d parameters) for %d steps of %d × %d² px on %d thread(s)",
             parameter_count(model), cfg.steps, cfg.batch, cfg.crop, cfg.threads)
    model.train()
    started, running = time.perf_counter(), 0.0
    for step in range(cfg.steps):
        x, target = batch(cfg, step, photos)
        x = x.contiguous(memory_format=torch.channels_last)
        loss = F.binary_cross_entropy_with_logits(model(x), target, pos_weight=pos_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        running += loss.item()
        if (step + 1) % report_every == 0 or step + 1 == cfg.steps:
            n = (step % report_every) + 1
            log.info("step %d/%d  loss %.4f  %.0f s", step + 1, cfg.steps, running / n, time.perf_counter() - started)
            running = 0.0
    return model.eval()


def save(model: DamageUNet, out: Path) -> None:
    """The state dict, written atomically (a half-written weights file never sits at `out`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    torch.save(model.state_dict(), tmp)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/damage_unet.pt"))
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.perf_counter()
    model = train(TrainConfig(steps=args.steps, seed=args.seed, threads=args.threads))
    save(model, args.out)
    log.info("wrote %s in %.1f min", args.out, (time.perf_counter() - started) / 60)


if __name__ == "__main__":
    main()
