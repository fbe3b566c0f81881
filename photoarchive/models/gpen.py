"""GPEN blind face restoration network (Yang et al., CVPR 2021), written for fast inference.

`GPEN` is a re-implementation of the official ``FullGenerator`` (github.com/yangxy/GPEN): a plain
conv encoder turns the aligned face into one style vector plus one feature map per resolution, and a
StyleGAN2 decoder driven by that style concatenates each feature map to its own activations (GPEN's
"noise" inputs, ``isconcat=True``). Parameter and buffer names, shapes and order match the official
state dict, so the GPEN-BFR-256/512/1024/2048 checkpoints load with ``strict=True``.

What differs from the official code is only how the same numbers are computed:

- the FIR blur is a depthwise ``conv2d`` and the FIR upsampling a depthwise ``conv_transpose2d``
  (the official CPU path zero-stuffs, pads and reshapes every channel into a one-channel conv);
- a modulated conv builds its per-sample weights with the demodulation factor taken from a small
  style @ |W|^2 product, writes them channels_last, and runs the whole batch as one grouped conv
  (batch folded into groups; a single sample is not reshaped, see `_fold_batch`); a 1×1 modulated
  conv (ToRGB) is a matmul over channels;
- activations are kept ``channels_last`` from input to output (the layout oneDNN and cuDNN
  convolutions prefer; one NCHW tensor in the chain makes oneDNN convert, and concatenating
  tensors of mixed layouts is slow), and the feature gain, bias and leaky ReLU work in place on
  fresh tensors: on CPU every new large tensor also costs page faults;
- a decoder block writes its conv output and the scaled encoder feature, bias and sqrt(2)
  included, straight into their halves of the concatenation, then applies the leaky ReLU in
  place: two passes over it instead of five (sqrt(2) * leaky_relu(v) = leaky_relu(sqrt(2) * v)).

Pure PyTorch and device-agnostic; fp32 on CPU, and fp16 under CUDA autocast if the caller wants it.
Weights are loaded outside the module by `load_gpen` (bare state dict or a ``g_ema`` training
checkpoint, ``torch.load(..., weights_only=True)``, strict, ``eval()``).
"""

from __future__ import annotations

import itertools
import logging
import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["GPEN", "GPEN_CONFIGS", "config_for_state_dict", "load_gpen"]

logger = logging.getLogger(__name__)

# Official FullGenerator settings of the released GPEN-BFR checkpoints, by face size (pixels).
# 256, 512 and 2048 come from the official demo command lines; 1024 (ModelScope
# ``damo/cv_gpen_image-portrait-enhancement-hires``) uses the 512/2048 settings with its own size.
_COMMON = {"style_dim": 512, "n_mlp": 8, "blur_kernel": [1, 3, 3, 1], "lr_mlp": 0.01, "isconcat": True}
GPEN_CONFIGS: dict[int, dict] = {
    256: {"size": 256, "channel_multiplier": 1, "narrow": 0.5, **_COMMON},
    512: {"size": 512, "channel_multiplier": 2, "narrow": 1, **_COMMON},
    1024: {"size": 1024, "channel_multiplier": 2, "narrow": 1, **_COMMON},
    2048: {"size": 2048, "channel_multiplier": 2, "narrow": 1, **_COMMON},
}

_SQRT2 = math.sqrt(2.0)
_CL = torch.channels_last  # N×C×H×W tensors stored N×H×W×C
# Channel count per resolution before `narrow` is applied; from 64 px up it is also scaled by
# channel_multiplier.
_BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}
_MAX_SIZE = max(_BASE_CHANNELS)


def channel_table(size: int, channel_multiplier: int, narrow: float) -> dict[int, int]:
    """Feature channels per resolution (4 … size), as in the official code."""
    table = {}
    for res in (2**i for i in range(2, int(math.log2(size)) + 1)):
        multiplier = channel_multiplier if res >= 64 else 1
        table[res] = int(_BASE_CHANNELS[res] * multiplier * narrow)
    return table


def _fir_kernel(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """2-D FIR kernel from 1-D taps: normalised outer product, times ``gain``."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain


def _needs_grad(*tensors: torch.Tensor) -> bool:
    """Whether autograd records an op on ``tensors`` (it cannot record ``out=``)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _leaky_relu_scaled(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's fused_leaky_relu: sqrt(2) * leaky_relu(x + bias, 0.2), bias along dim 1.

    Computed as leaky_relu(sqrt(2) * x + sqrt(2) * bias) (leaky ReLU is positively homogeneous):
    one scale-and-shift pass, then the activation, both in place on x (always a fresh temporary
    here: on CPU, every new large tensor costs page faults on top of the arithmetic).
    """
    shift = (bias * _SQRT2).to(x.dtype).view(1, -1, *([1] * (x.dim() - 2)))
    if _needs_grad(x, bias):
        x = torch.add(shift, x, alpha=_SQRT2)
    else:
        x = torch.add(shift, x, alpha=_SQRT2, out=x)
    return F.leaky_relu_(x, 0.2)


def _concat_leaky_relu(x: torch.Tensor, feature: torch.Tensor, feature_gain: torch.Tensor,
                       bias: torch.Tensor) -> torch.Tensor:
    """sqrt(2) * leaky_relu(cat((x, feature_gain * feature), dim=1) + bias, 0.2), channels_last.

    x, feature: N×C×H×W, feature_gain: 1 element, bias: 2C → N×2C×H×W. Each half is scaled and
    shifted straight into its place in the new tensor (sqrt(2) goes in with them, as in
    `_leaky_relu_scaled`), then the whole is activated in place: two passes over the output
    instead of the five of concatenation, feature gain, bias, scale and activation.
    """
    c = x.shape[1]
    shift = (bias * _SQRT2).to(x.dtype).view(1, -1, 1, 1)
    gain = (feature_gain * _SQRT2).to(x.dtype)
    if _needs_grad(x, feature, feature_gain, bias):
        out = torch.cat((torch.add(shift[:, :c], x, alpha=_SQRT2), torch.addcmul(shift[:, c:], feature, gain)), dim=1)
    else:
        out = torch.empty((x.shape[0], 2 * c, *x.shape[2:]), dtype=x.dtype, device=x.device, memory_format=_CL)
        torch.add(shift[:, :c], x, alpha=_SQRT2, out=out[:, :c])
        torch.addcmul(shift[:, c:], feature, gain, out=out[:, c:])
    return F.leaky_relu_(out, 0.2)


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a * b`` (broadcast), stored contiguously in the order of its dims.

    A plain product keeps the memory order of ``a``; writing into a new contiguous tensor lets the
    caller choose the layout with a view. Autograd cannot record ``out=``, so when gradients are
    needed this is a plain product made contiguous (one copy more).
    """
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return (a * b).contiguous()
    return torch.mul(a, b, out=a.new_empty(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.result_type(a, b)))


def _fold_batch(x: torch.Tensor) -> torch.Tensor:
    """N×C×H×W → 1×N·C×H×W, so that one grouped conv (N groups) applies per-sample weights."""
    # One sample is passed as it is: reshaping it would give dim 0 a stride that hides the
    # channels_last layout from the conv (which then falls back to slower NCHW code).
    return x if x.shape[0] == 1 else x.reshape(1, -1, *x.shape[2:])


def _unfold_batch(x: torch.Tensor, n: int) -> torch.Tensor:
    """1×N·C×H×W → N×C×H×W (the inverse of `_fold_batch`)."""
    return x if n == 1 else x.reshape(n, -1, *x.shape[2:])


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


class Blur(nn.Module):
    """Fixed 4×4 FIR low-pass filter applied per channel with zero padding ``pad`` on every side.

    Args:
        taps (Sequence[float]): 1-D filter taps; the stored kernel is their normalised outer product.
        pad (int): zero padding on each side; the output is ``H + 2*pad - 3`` pixels high.
        gain (float): kernel gain, 4 after a stride-2 transposed conv. Default: 1.
    """

    def __init__(self, taps: Sequence[float], pad: int, gain: float = 1.0):
        super().__init__()
        self.register_buffer("kernel", _fir_kernel(taps, gain))  # 4×4, persistent (in the state dict)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        # upfirdn2d convolves (flipped kernel); conv2d correlates, so flip to get the same numbers.
        # A materialised channels_last weight keeps oneDNN on its fast depthwise path.
        weight = self.kernel.flip(0, 1).expand(channels, 1, -1, -1).contiguous(memory_format=_CL)
        return F.conv2d(x, weight, padding=self.pad, groups=channels)


class Upsample(nn.Module):
    """2× FIR upsampling of the RGB skip image, as upfirdn2d(up=2, pad=(2, 1)) with a 4×4 kernel.

    Zero-stuffing, padding by (2, 1) and convolving with the kernel equals a stride-2 transposed
    conv with the (unflipped) kernel and ``padding=1``: N×C×H×W → N×C×2H×2W.

    Args:
        taps (Sequence[float]): 1-D filter taps; the stored kernel is their outer product, sum 4.
    """

    def __init__(self, taps: Sequence[float]):
        super().__init__()
        self.register_buffer("kernel", _fir_kernel(taps, gain=4.0))  # 4×4, persistent

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.kernel.expand(channels, 1, -1, -1)
        return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=channels)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (weight scaled at run time), optional activation.

    Args:
        in_dim (int): input features.
        out_dim (int): output features.
        bias_init (float): initial bias. Default: 0.
        lr_mul (float): learning-rate multiplier folded into weight and bias. Default: 1.
        activate (bool): apply the scaled leaky ReLU after the bias. Default: False.
    """

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: N×in_dim → N×out_dim; scaling the small output instead of the weight saves a weight copy
        out = F.linear(x, self.weight).mul_(self.scale)
        if self.activate:
            return _leaky_relu_scaled(out, self.bias * self.lr_mul)
        return out + self.bias * self.lr_mul


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit root-mean-square (N×D → N×D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualConv2d(nn.Module):
    """Bias-free conv with equalised learning rate (the bias lives in the following activation).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): square kernel size (no padding: the encoder pads in its Blur).
        stride (int): stride. Default: 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, stride=self.stride)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, then leaky ReLU (slope 0.2) times sqrt(2); overwrites its input.

    Every caller passes a fresh temporary (a conv or linear output), so working in place saves a
    large allocation per layer without changing any result. `StyledConv` uses only its bias (see
    `_concat_leaky_relu`).

    Args:
        channels (int): number of channels (length of the bias).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _leaky_relu_scaled(x, self.bias)


class EncoderLayer(nn.Sequential):
    """Encoder conv: [Blur + stride 2] 3×3 conv, or a 1×1 conv at full size, then FusedLeakyReLU.

    A ``nn.Sequential`` so that the state-dict keys match the official ``ConvLayer``
    (``0`` = Blur when downsampling, then the conv, then the activation bias).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        downsample (bool): blur and halve the resolution with a 3×3 stride-2 conv; else a 1×1 conv.
        taps (Sequence[float]): blur taps used when downsampling.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, taps: Sequence[float]):
        if downsample:
            # Blur pads 2 (H → H+1), then the 3×3 stride-2 conv gives H/2.
            layers = [Blur(taps, pad=2), EqualConv2d(in_channels, out_channels, 3, stride=2)]
        else:
            layers = [EqualConv2d(in_channels, out_channels, 1)]
        super().__init__(*layers, FusedLeakyReLU(out_channels))


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated conv: weight scaled per input channel by the style, optionally demodulated.

    Each sample gets its own weight; the batch is folded into the channels so that the whole batch
    is one grouped conv (``groups=N``).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): 3 for the decoder convs, 1 for ToRGB.
        style_dim (int): length of the latent vector.
        demodulate (bool): normalise each output channel's modulated weight to unit norm.
        upsample (bool): 2× upsampling (stride-2 transposed conv followed by a 4×4 blur).
        taps (Sequence[float]): blur taps, used when ``upsample``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 demodulate: bool, upsample: bool, taps: Sequence[float]):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        if upsample:
            # transposed conv: H → 2H+1; blur with pad 1 (kernel×4): 2H+1 → 2H
            self.blur = Blur(taps, pad=1, gain=4.0)
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        # x: N×Cin×H×W, latent: N×style_dim → N×Cout×H'×W' (H' = 2H when upsampling, else H)
        n, c_in, h, w = x.shape
        weight = self.weight[0]  # Cout×Cin×k×k, shared by the batch
        k = weight.shape[-1]
        style = self.modulation(latent) * self.scale  # N×Cin
        coef = style[:, None, :]  # N×1×Cin: per-sample factor of each weight W[o, i]
        if self.demodulate:
            # |W[o] * s| ** 2 summed over (i, ky, kx) is s**2 @ |W[o, i]|**2: a small N×Cin @ Cin×Cout
            # product instead of squaring the whole N×Cout×Cin×k×k modulated weight.
            sq_norm = style.square() @ torch.linalg.vector_norm(weight, dim=(2, 3)).square().t()  # N×Cout
            coef = coef * torch.rsqrt(sq_norm + 1e-8)[:, :, None]  # N×Cout×Cin
        if k == 1:
            # A 1×1 conv is a matmul over channels: N×H×W×Cin @ N×1×Cin×Cout (a view when channels_last).
            weight = (weight[:, :, 0, 0] * coef).transpose(1, 2)  # N×Cin×Cout
            return (x.permute(0, 2, 3, 1) @ weight[:, None]).permute(0, 3, 1, 2)  # N×Cout×H×W
        # Per-sample weights are written channels_last (in channels innermost for a conv, out
        # channels for a transposed conv), the layout oneDNN would otherwise copy them into.
        if self.upsample:
            # transposed-conv weights are in×out: N·Cin×Cout×k×k, stored N×Cin×k×k×Cout
            weight = _product(weight.permute(1, 2, 3, 0), coef.transpose(1, 2)[:, :, None, None, :])
            out = F.conv_transpose2d(_fold_batch(x), weight.flatten(0, 1).permute(0, 3, 1, 2), stride=2, groups=n)
            return self.blur(_unfold_batch(out, n))  # N×Cout×(2H+1)×(2W+1) → N×Cout×2H×2W
        weight = _product(weight.permute(0, 2, 3, 1), coef[:, :, None, None, :])  # stored N×Cout×k×k×Cin
        out = F.conv2d(_fold_batch(x), weight.flatten(0, 1).permute(0, 3, 1, 2), padding=k // 2, groups=n)
        return _unfold_batch(out, n)


class FeatureInjection(nn.Module):
    """Learned gain of the encoder feature concatenated to the activations (applied in `StyledConv`)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class StyledConv(nn.Module):
    """Modulated 3×3 conv, then concatenation of the encoder feature map, then FusedLeakyReLU.

    Official name of the concatenation is ``noise`` (NoiseInjection with ``isconcat=True``): the
    "noise" is the encoder feature at the same resolution, scaled by one learned weight.

    Args:
        in_channels (int): input channels (already doubled by the previous concatenation).
        out_channels (int): conv output channels; the block outputs ``2*out_channels``.
        style_dim (int): length of the latent vector.
        upsample (bool): 2× upsampling conv.
        taps (Sequence[float]): blur taps.
    """

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool,
                 taps: Sequence[float]):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, demodulate=True,
                                    upsample=upsample, taps=taps)
        self.noise = FeatureInjection()
        self.activate = FusedLeakyReLU(2 * out_channels)

    def forward(self, x: torch.Tensor, latent: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        # x: N×Cin×H×W (H' = 2H if upsampling), feature: N×Cout×H'×W' → N×2Cout×H'×W'
        # The concatenation, its bias and activation in two passes; the modules hold their parameters.
        return _concat_leaky_relu(self.conv(x, latent), feature, self.noise.weight, self.activate.bias)


class ToRGB(nn.Module):
    """1×1 modulated conv (no demodulation) to RGB plus bias, added to the upsampled previous RGB.

    Args:
        in_channels (int): input channels.
        style_dim (int): length of the latent vector.
        taps (Sequence[float] | None): FIR taps to upsample the previous RGB image; None for the
            first (4×4) layer, which has no previous image.
    """

    def __init__(self, in_channels: int, style_dim: int, taps: Sequence[float] | None):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if taps is not None:
            self.upsample = Upsample(taps)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False, upsample=False,
                                    taps=())

    def forward(self, x: torch.Tensor, latent: torch.Tensor,
                skip: torch.Tensor | None = None) -> torch.Tensor:
        # x: N×C×H×W, skip: N×3×(H/2)×(W/2) → N×3×H×W
        out = self.conv(x, latent) + self.bias.to(x.dtype)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    """Learned 1×C×4×4 start tensor, repeated over the batch."""

    def __init__(self, channels: int):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, 4, 4))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1).contiguous(memory_format=_CL)


class StyleDecoder(nn.Module):
    """StyleGAN2 decoder of GPEN (official ``Generator``), driven by one latent and encoder features.

    Args:
        size (int): output size in pixels.
        style_dim (int): latent length.
        n_mlp (int): layers of the mapping MLP.
        channels (dict[int, int]): channels per resolution.
        taps (Sequence[float]): FIR taps.
        lr_mlp (float): learning-rate multiplier of the mapping MLP.
    """

    def __init__(self, size: int, style_dim: int, n_mlp: int, channels: dict[int, int],
                 taps: Sequence[float], lr_mlp: float):
        super().__init__()
        self.style = nn.Sequential(
            PixelNorm(),
            *(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True) for _ in range(n_mlp)),
        )
        self.input = ConstantInput(channels[4])
        self.conv1 = StyledConv(channels[4], channels[4], style_dim, upsample=False, taps=taps)
        self.to_rgb1 = ToRGB(2 * channels[4], style_dim, taps=None)

        # Per resolution 8 … size: upsampling conv, conv, ToRGB. Inputs are 2× wide (concatenation).
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_channels = channels[4]
        for res in (2**i for i in range(3, int(math.log2(size)) + 1)):
            out_channels = channels[res]
            self.convs.append(StyledConv(2 * in_channels, out_channels, style_dim, upsample=True, taps=taps))
            self.convs.append(StyledConv(2 * out_channels, out_channels, style_dim, upsample=False, taps=taps))
            self.to_rgbs.append(ToRGB(2 * out_channels, style_dim, taps=taps))
            in_channels = out_channels

    def forward(self, code: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        # code: N×style_dim; features: encoder maps coarse to fine, [N×C4×4×4, …, N×Cs×s×s]
        latent = self.style(code)  # N×style_dim, one latent shared by every layer
        out = self.input(code.shape[0]).to(features[0].dtype)  # N×C4×4×4
        out = self.conv1(out, latent, features[0])  # N×2C4×4×4
        rgb = self.to_rgb1(out, latent)  # N×3×4×4
        for up_conv, conv, to_rgb, feature in zip(
            self.convs[::2], self.convs[1::2], self.to_rgbs, features[1:], strict=True
        ):
            out = up_conv(out, latent, feature)  # N×2Cr×r×r, r doubles
            out = conv(out, latent, feature)  # N×2Cr×r×r
            rgb = to_rgb(out, latent, rgb)  # N×3×r×r
        return rgb


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class GPEN(nn.Module):
    """GPEN-BFR generator: aligned face in, restored face out (official ``FullGenerator``).

    Keyword names are the official ``config`` keys (see `GPEN_CONFIGS`); defaults are GPEN-BFR-512.

    Args:
        size (int): face size in pixels, a power of two from 8 to 2048. Default: 512.
        style_dim (int): latent length. Default: 512.
        n_mlp (int): layers of the mapping MLP. Default: 8.
        channel_multiplier (int): channel multiplier from 64 px up. Default: 2.
        narrow (float): scales every channel count. Default: 1.
        blur_kernel (Sequence[float]): 4 FIR taps of the blur/upsampling filters. Default: [1, 3, 3, 1].
        lr_mlp (float): learning-rate multiplier of the mapping MLP. Default: 0.01.
        isconcat (bool): encoder features are concatenated to the decoder activations. Must be True:
            every released checkpoint uses it (False would add random noise instead). Default: True.
    """

    def __init__(self, size: int = 512, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 narrow: float = 1, blur_kernel: Sequence[float] = (1, 3, 3, 1), lr_mlp: float = 0.01,
                 isconcat: bool = True):
        super().__init__()
        if size not in _BASE_CHANNELS or size < 8:
            raise ValueError(f"GPEN size must be a power of two from 8 to {_MAX_SIZE}, got {size!r}")
        if not isconcat:
            raise ValueError("GPEN isconcat=False (random noise injection) is not supported: every "
                             "released GPEN checkpoint uses isconcat=True")
        if len(blur_kernel) != 4:
            raise ValueError(f"GPEN blur_kernel must have 4 taps (the padding assumes it), got {blur_kernel!r}")
        if style_dim < 1 or n_mlp < 1 or channel_multiplier < 1 or narrow <= 0 or lr_mlp <= 0:
            raise ValueError("GPEN style_dim, n_mlp, channel_multiplier, narrow and lr_mlp must be positive")
        channels = channel_table(size, channel_multiplier, narrow)
        if min(channels.values()) < 1:
            raise ValueError(f"GPEN narrow={narrow} leaves a layer with no channels")
        taps = [float(t) for t in blur_kernel]
        self.size = size

        # Registration order (decoder, ecd0…, final_linear) fixes the official state-dict order.
        self.generator = StyleDecoder(size, style_dim, n_mlp, channels, taps, lr_mlp)
        resolutions = [2**i for i in range(int(math.log2(size)), 1, -1)]  # size, size/2, …, 4
        self.add_module("ecd0", nn.Sequential(EncoderLayer(3, channels[size], downsample=False, taps=taps)))
        for i, (res_in, res_out) in enumerate(itertools.pairwise(resolutions), start=1):
            layer = EncoderLayer(channels[res_in], channels[res_out], downsample=True, taps=taps)
            self.add_module(f"ecd{i}", nn.Sequential(layer))
        self.encoder_names = [f"ecd{i}" for i in range(len(resolutions))]
        self.final_linear = nn.Sequential(EqualLinear(channels[4] * 16, style_dim, activate=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore aligned faces: N×3×S×S RGB in [-1, 1] → N×3×S×S RGB, roughly [-1, 1], unclamped.

        The output has the input's dtype, or float16 under CUDA autocast.
        """
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != self.size or x.shape[3] != self.size:
            raise ValueError(f"GPEN-{self.size} expects N×3×{self.size}×{self.size} input, got {tuple(x.shape)}")
        # Encoder: 1×1 conv at full size, then blur + stride-2 3×3 convs down to 4×4.
        h = x.contiguous(memory_format=torch.channels_last)
        features = []
        for name in self.encoder_names:
            h = getattr(self, name)(h)  # N×C_r×r×r, r = S, S/2, …, 4
            features.append(h)
        # Style code from the 4×4 map, flattened in NCHW order as in the official code.
        code = self.final_linear(h.reshape(h.shape[0], -1))  # N×style_dim
        # Decoder: coarse-to-fine StyleGAN2, each resolution concatenating its encoder map.
        out = self.generator(code, features[::-1])
        return out.contiguous()


# --------------------------------------------------------------------------------------------------
# Loading weights
# --------------------------------------------------------------------------------------------------


def config_for_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Infer the `GPEN` keyword arguments from a generator state dict's keys and shapes.

    ``blur_kernel`` and ``lr_mlp`` leave no trace in the shapes; the official values are assumed
    (every released checkpoint uses them). Raises ValueError if this is not a GPEN generator.
    """
    required = ["generator.style.1.weight", "generator.input.input", "generator.conv1.activate.bias",
                "generator.to_rgbs.0.bias", "ecd0.0.0.weight", "final_linear.0.weight"]
    missing = [key for key in required if key not in state_dict]
    if missing:
        raise ValueError(f"not a GPEN generator state dict (no {', '.join(missing)})")
    style_dim = state_dict["generator.style.1.weight"].shape[0]
    n_mlp = sum(f"generator.style.{i}.weight" in state_dict for i in range(1, len(state_dict)))
    size = 4 * 2 ** sum(f"generator.to_rgbs.{i}.bias" in state_dict for i in range(len(state_dict)))
    if size not in _BASE_CHANNELS:
        raise ValueError(f"GPEN state dict for an unsupported size {size}")
    c4 = state_dict["generator.input.input"].shape[1]
    narrow = c4 / _BASE_CHANNELS[4]
    if narrow.is_integer():
        narrow = int(narrow)
    c_size = state_dict["ecd0.0.0.weight"].shape[0]  # channels at full size
    channel_multiplier = round(c_size / (_BASE_CHANNELS[size] * narrow)) if size >= 64 else 1
    if state_dict["generator.conv1.activate.bias"].shape[0] != 2 * c4:
        raise ValueError("GPEN state dict with isconcat=False: not supported (no released checkpoint uses it)")
    config = {"size": size, "style_dim": style_dim, "n_mlp": n_mlp, "channel_multiplier": channel_multiplier,
              "narrow": narrow, "blur_kernel": [1, 3, 3, 1], "lr_mlp": 0.01, "isconcat": True}
    if channel_multiplier < 1 or channel_table(size, channel_multiplier, narrow)[size] != c_size:
        raise ValueError(f"GPEN state dict with a channel layout no config produces ({c4} channels at 4 px, "
                         f"{c_size} at {size} px)")
    return config


def load_gpen(path: str | Path, device: str | torch.device = "cpu") -> GPEN:
    """Build the GPEN that fits the weights in ``path`` (any size), load them strictly, in eval mode.

    ``path`` holds a bare generator state dict (the released GPEN-BFR-*.pth) or a training
    checkpoint with a ``g_ema`` entry. Loaded with ``weights_only=True``, kept in float32.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GPEN weights not found: {path}. Fetch them first with "
                                "`python -m photoarchive.download` (see its --help), or fix the path in config.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(f"{path} cannot be loaded as plain tensors (weights_only=True refuses Python "
                         f"objects; a damaged or partial download fails too): {err}") from err
    if isinstance(checkpoint, Mapping) and "g_ema" in checkpoint:
        checkpoint = checkpoint["g_ema"]  # training checkpoint {g, d, g_ema, g_optim, d_optim}
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"{path} is not a GPEN generator checkpoint: expected a state dict of tensors")
    try:
        config = config_for_state_dict(checkpoint)
    except ValueError as err:
        raise ValueError(f"{path} is not a GPEN generator checkpoint: {err}. Note that *-D.pth files are "
                         "discriminators; the restorer needs the generator, e.g. GPEN-BFR-512.pth") from err
    with torch.device("meta"):  # no random init: the parameters are the loaded tensors
        model = GPEN(**config)
    state_dict = {key: value.float() for key, value in checkpoint.items()}
    try:
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not match the GPEN-{config['size']} layout: {err}") from err
    logger.info("loaded GPEN-%d from %s", config["size"], path)
    return model.eval().to(device)
