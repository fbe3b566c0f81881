"""A small U-Net that marks scratches and dust: per-pixel logits for [scratch, dust] from the luminance.

Trained here, offline, by `photoarchive.damage_training` on synthetic damage over real photographs; its
weights (`models/damage_unet.pt`, a state dict) are never committed or downloaded.

    input   1 × H × W      luminance in [0, 1], as 2 × gray - 1 (H, W multiples of 16; `predict` pads)
    stem    8 × H × W      two 3×3 convs (batch norm, ReLU)
    down1   16 × H/2       max-pool, two 3×3 convs
    down2   32 × H/4
    down3   64 × H/8
    down4   128 × H/16     (a receptive field of about 170 px: a scratch is followed across a coin or a
                           face it crosses, and told from an outline by its length)
    up3     64 × H/8       bilinear ×2, concat with down3, one 3×3 conv
    up2     32 × H/4
    up1     16 × H/2
    up0     8 × H
    head    2 × H × W      1×1 conv: logits of scratch, dust

About 440k parameters (most in the coarse levels), ~11k multiply-adds per pixel. `predict` runs it in
overlapping tiles (bounded memory on a 100-MP scan) in float32 on the CPU, float16 on CUDA, on each tile
and on its transpose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CLASSES = ("scratch", "dust")
WIDTHS = (8, 16, 32, 64, 128)
_DEPTH = len(WIDTHS) - 1  # pooling steps: sizes must divide by 2**_DEPTH
TILE = 512  # core tile side (px) of `predict`
OVERLAP = 96  # context (px) read around each tile, more than half the receptive field


class ConvBlock(nn.Sequential):
    """`convs` × (3×3 conv, batch norm, ReLU); keeps H × W."""

    def __init__(self, c_in: int, c_out: int, convs: int = 2) -> None:
        layers: list[nn.Module] = []
        for k in range(convs):
            layers += [nn.Conv2d(c_in if k == 0 else c_out, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class Up(nn.Module):
    """Bilinear ×2 of the coarser map, concatenated with the skip, one ConvBlock."""

    def __init__(self, c_coarse: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.block = ConvBlock(c_coarse + c_skip, c_out, convs=1)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([up, skip], dim=1))


class DamageUNet(nn.Module):
    """N × 1 × H × W luminance (2 × gray - 1) → N × 2 × H × W logits [scratch, dust]."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        self.stem = ConvBlock(1, widths[0])
        self.downs = nn.ModuleList(ConvBlock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.ups = nn.ModuleList(Up(b, a, a) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.head = nn.Conv2d(widths[0], len(CLASSES), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]  # 8 × H
        for down in self.downs:  # 16 × H/2, 32 × H/4, 64 × H/8
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up in reversed(self.ups):  # 32 × H/4, 16 × H/2, 8 × H
            y = up(y, skips.pop())
        return self.head(y)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pick_device(device: str = "auto") -> torch.device:
    """`auto`: CUDA when there is one, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def load_model(path: Path, device: torch.device | None = None) -> DamageUNet:
    """The network with the state dict saved at `path` (torch.save of `state_dict()`), in eval mode.

    Read with weights_only=True (no code runs from the file). A file that is not such a state dict
    (corrupt, another model, wrong widths) raises ValueError naming the file and how to make one.
    """
    path = Path(path)
    hint = "make it with: python -m photoarchive.damage_training --out " + str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # pickle/zip errors of a truncated or foreign file
        raise ValueError(f"{path}: not a readable damage_unet state dict ({type(exc).__name__}: {exc}); "
                         f"{hint}") from exc
    model = DamageUNet()
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}; {hint}")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not fit DamageUNet{WIDTHS} ({str(exc).splitlines()[0]}); {hint}") from exc
    # channels-last runs the convolutions about twice as fast on the CPU (the same probabilities)
    return model.to(device or torch.device("cpu"), memory_format=torch.channels_last).eval()


def _tiles(size: int, tile: int) -> list[int]:
    return list(range(0, size, tile)) or [0]


@torch.inference_mode()
def predict(model: DamageUNet, gray: np.ndarray, device: torch.device | None = None, tile: int = TILE,
            overlap: int = OVERLAP) -> np.ndarray:
    """Probabilities 2 × H × W (float32; scratch, dust) of an H × W float gray image in [0, 1].

    Each is the mean of the net's probabilities on the image and on its transpose (a mark at angle θ is
    also seen at 90° − θ). The two views disagree on more false marks than true ones, so a lower
    threshold keeps the precision (held-out `add_damage`, thresholds chosen on the tune set: scratch
    recall 0.59 -> 0.62, precision 0.84 -> 0.88), at twice the cost.
    Tile by tile (`tile` px plus `overlap` px of context on each side, reflected at the border and
    padded to a multiple of 8); only each tile's core is written, so the result does not depend on
    the tiling beyond float rounding.
    """
    device = device or next(model.parameters()).device
    half = device.type == "cuda"
    h, w = gray.shape
    out = np.zeros((len(CLASSES), h, w), np.float32)
    m = 2**_DEPTH
    for y in _tiles(h, tile):
        for x in _tiles(w, tile):
            y0, y1 = max(0, y - overlap), min(h, y + tile + overlap)
            x0, x1 = max(0, x - overlap), min(w, x + tile + overlap)
            crop = torch.from_numpy(np.ascontiguousarray(gray[y0:y1, x0:x1], dtype=np.float32))
            ph, pw = -(y1 - y0) % m, -(x1 - x0) % m
            # reflect needs pad < size: tiny crops (a few px) are edge-padded instead
            mode = "reflect" if ph < (y1 - y0) and pw < (x1 - x0) else "replicate"
            batch = F.pad((crop * 2 - 1)[None, None], (0, pw, 0, ph), mode=mode).to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=half):
                logits, logits_t = model(batch), model(batch.mT.contiguous()).mT
            prob = (torch.sigmoid(logits.float()) + torch.sigmoid(logits_t.float())) / 2
            prob = prob[0, :, : y1 - y0, : x1 - x0].cpu().numpy()
            ch, cw = min(tile, h - y), min(tile, w - x)
            out[:, y:y + ch, x:x + cw] = prob[:, y - y0:y - y0 + ch, x - x0:x - x0 + cw]
    return out
