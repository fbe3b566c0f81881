"""GPEN re-implementation: official layout, official numbers, safe strict loading."""

import json
import math
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from photoarchive.models.gpen import GPEN, GPEN_CONFIGS, Blur, Upsample, config_for_state_dict, load_gpen

# Reference data made with the official code (README there); CI clones shared/ next to the repo.
REFERENCE = (Path(__file__).resolve().parents[1] / "../shared/reference/gpen").resolve()
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"GPEN reference data not found at {REFERENCE} (clone shared/ beside the repo)"
)

TINY = {"size": 16, "style_dim": 8, "n_mlp": 2, "channel_multiplier": 1, "narrow": 1 / 64,
        "blur_kernel": [1, 3, 3, 1], "lr_mlp": 0.01, "isconcat": True}


def _tiny_model(seed: int = 0) -> GPEN:
    torch.manual_seed(seed)
    return GPEN(**TINY).eval()


def _run(model: GPEN, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@needs_reference
@pytest.mark.parametrize("size", [256, 512, 1024, 2048])
def test_official_layout_keys_shapes_order_and_param_count(size):
    manifest = json.loads((REFERENCE / f"state_dict_GPEN-BFR-{size}.json").read_text())
    assert manifest["config"] == GPEN_CONFIGS[size]
    with torch.device("meta"):
        model = GPEN(**GPEN_CONFIGS[size])
    state = model.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, shape) for k, shape, _ in manifest["keys"]]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]
    assert sorted(name for name, _ in model.named_buffers()) == sorted(manifest["buffer_keys"])
    assert config_for_state_dict(state) == GPEN_CONFIGS[size]


@needs_reference
def test_reproduces_official_outputs():
    ref = torch.load(REFERENCE / "tiny_vector.pt", weights_only=True)
    model = GPEN(**ref["config"])
    model.load_state_dict(ref["state_dict"], strict=True)
    model.eval()
    assert config_for_state_dict(ref["state_dict"]) == ref["config"]
    for x, expected in [("input", "output"), ("input_batch2", "output_batch2")]:
        out = _run(model, ref[x])
        assert isinstance(out, torch.Tensor)  # the image alone, not the official (image, None)
        torch.testing.assert_close(out, ref[expected], atol=1e-4, rtol=0)


@needs_reference
def test_forward_leaves_global_rng_untouched():
    ref = torch.load(REFERENCE / "tiny_vector.pt", weights_only=True)
    model = GPEN(**ref["config"]).eval()
    before = torch.get_rng_state()
    _run(model, ref["input"])
    assert torch.equal(before, torch.get_rng_state())


def test_batch_is_independent_per_sample():
    model = _tiny_model()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    batched = _run(model, x)
    single = torch.cat([_run(model, x[i : i + 1]) for i in range(3)])
    assert batched.shape == (3, 3, 16, 16)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def _upfirdn2d_by_definition(x, kernel, up, pad0, pad1):
    """Zero-stuff by ``up``, zero-pad by (pad0, pad1), then convolve (flipped kernel) each channel."""
    n, c, h, w = x.shape
    stuffed = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    stuffed[:, :, ::up, ::up] = x
    padded = F.pad(stuffed, (pad0, pad1, pad0, pad1))
    weight = kernel.flip(0, 1).expand(c, 1, -1, -1)
    return F.conv2d(padded, weight, groups=c)


def _perturbed_tiny_model(seed: int = 0) -> GPEN:
    """Tiny GPEN whose constant-initialised parameters (biases, modulation biases, feature weights) are
    random too, so that every path of the network shows in the output."""
    model = _tiny_model(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("bias", "noise.weight")):
                param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def _reference_forward(model: GPEN, x: torch.Tensor) -> torch.Tensor:
    """GPEN computed the way the official pure-PyTorch code does, from the state dict alone.

    Per-sample modulated weights demodulated over the whole N×Cout×Cin×k×k tensor, batch folded into
    groups, FIR filters by definition (zero-stuff, pad, flipped kernel), concatenation then bias and
    scaled leaky ReLU; NCHW throughout.
    """
    sd = model.state_dict()

    def lrelu(v, bias):
        return F.leaky_relu(v + bias.view(1, -1, *[1] * (v.dim() - 2)), 0.2) * math.sqrt(2)

    def linear(v, prefix, lr_mul=1.0, activate=False):
        weight, bias = sd[prefix + "weight"], sd[prefix + "bias"] * lr_mul
        out = F.linear(v, weight * (lr_mul / math.sqrt(weight.shape[1])))
        return lrelu(out, bias) if activate else out + bias

    def modulated_conv(v, prefix, latent, demodulate, upsample=False):
        weight = sd[prefix + "weight"]  # 1×O×I×k×k
        _, c_out, c_in, k, _ = weight.shape
        n, _, h, w = v.shape
        style = linear(latent, prefix + "modulation.").view(n, 1, c_in, 1, 1)
        weight = weight / math.sqrt(c_in * k * k) * style
        if demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(n, c_out, 1, 1, 1)
        v = v.reshape(1, n * c_in, h, w)
        if upsample:
            weight = weight.transpose(1, 2).reshape(n * c_in, c_out, k, k)
            out = F.conv_transpose2d(v, weight, stride=2, groups=n).reshape(n, c_out, 2 * h + 1, 2 * w + 1)
            return _upfirdn2d_by_definition(out, sd[prefix + "blur.kernel"], 1, 1, 1)
        out = F.conv2d(v, weight.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n)
        return out.reshape(n, c_out, h, w)

    def styled_conv(v, prefix, latent, feature, upsample=False):
        out = modulated_conv(v, prefix + "conv.", latent, True, upsample)
        out = torch.cat((out, sd[prefix + "noise.weight"] * feature), 1)
        return lrelu(out, sd[prefix + "activate.bias"])

    def to_rgb(v, prefix, latent, skip=None):
        out = modulated_conv(v, prefix + "conv.", latent, False) + sd[prefix + "bias"]
        if skip is not None:
            out = out + _upfirdn2d_by_definition(skip, sd[prefix + "upsample.kernel"], 2, 2, 1)
        return out

    # encoder
    h = lrelu(F.conv2d(x, sd["ecd0.0.0.weight"] / math.sqrt(3)), sd["ecd0.0.1.bias"])
    features = [h]
    for i in range(1, len(model.encoder_names)):
        h = _upfirdn2d_by_definition(h, sd[f"ecd{i}.0.0.kernel"], 1, 2, 2)
        weight = sd[f"ecd{i}.0.1.weight"]
        h = lrelu(F.conv2d(h, weight / math.sqrt(weight[0].numel()), stride=2), sd[f"ecd{i}.0.2.bias"])
        features.append(h)
    code = linear(h.reshape(h.shape[0], -1), "final_linear.0.", activate=True)
    features = features[::-1]
    # decoder
    latent = code * torch.rsqrt(code.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, TINY["n_mlp"] + 1):
        latent = linear(latent, f"generator.style.{i}.", lr_mul=TINY["lr_mlp"], activate=True)
    out = sd["generator.input.input"].repeat(x.shape[0], 1, 1, 1)
    out = styled_conv(out, "generator.conv1.", latent, features[0])
    rgb = to_rgb(out, "generator.to_rgb1.", latent)
    for i, feature in enumerate(features[1:]):
        out = styled_conv(out, f"generator.convs.{2 * i}.", latent, feature, upsample=True)
        out = styled_conv(out, f"generator.convs.{2 * i + 1}.", latent, feature)
        rgb = to_rgb(out, f"generator.to_rgbs.{i}.", latent, rgb)
    return rgb


@pytest.mark.parametrize("batch", [1, 2])
def test_fast_path_matches_official_computation(batch):
    # One sample and several take different paths (a batch is folded into conv groups).
    model = _perturbed_tiny_model()
    x = torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    expected = _reference_forward(model, x)
    assert expected.abs().max() > 0.5  # a live output, not a constant
    torch.testing.assert_close(_run(model, x), expected, atol=1e-4, rtol=0)
    # The tolerance is tight enough to see one feature weight move by 1 %.
    with torch.no_grad():
        model.generator.convs[1].noise.weight.mul_(1.01)
    assert (_run(model, x) - expected).abs().max() > 1e-3


@pytest.mark.parametrize("pad", [1, 2])
def test_blur_matches_fir_definition_for_asymmetric_kernel(pad):
    blur = Blur([1, 3, 3, 1], pad=pad)
    blur.kernel.copy_(torch.rand(4, 4))  # asymmetric: catches a missing or extra flip
    x = torch.randn(2, 5, 9, 9)
    torch.testing.assert_close(blur(x), _upfirdn2d_by_definition(x, blur.kernel, 1, pad, pad))


def test_upsample_matches_fir_definition_for_asymmetric_kernel():
    upsample = Upsample([1, 3, 3, 1])
    upsample.kernel.copy_(torch.rand(4, 4))
    x = torch.randn(2, 3, 7, 7)
    out = upsample(x)
    assert out.shape == (2, 3, 14, 14)
    torch.testing.assert_close(out, _upfirdn2d_by_definition(x, upsample.kernel, 2, 2, 1))


def test_in_place_activations_keep_autograd_working():
    model = _tiny_model().train()
    model(torch.rand(2, 3, 16, 16) * 2 - 1).square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("batch", [1, 2])
def test_autograd_path_computes_the_same_numbers(batch):
    # With gradients the activations cannot be written with out=; that branch must agree.
    model = _perturbed_tiny_model()
    x = torch.rand(batch, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    with_grad = model(x)
    assert with_grad.requires_grad
    torch.testing.assert_close(with_grad.detach(), _run(model, x), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "bad", [{"isconcat": False}, {"size": 48}, {"size": 4096}, {"blur_kernel": [1, 2, 1]}, {"n_mlp": 0}]
)
def test_rejects_unsupported_config(bad):
    with pytest.raises(ValueError, match="GPEN"):
        GPEN(**{**TINY, **bad})


def test_rejects_wrong_input_size():
    with pytest.raises(ValueError, match="expects"):
        _run(_tiny_model(), torch.zeros(1, 3, 32, 32))


def test_load_gpen_round_trip(tmp_path):
    model = _tiny_model()
    path = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), path)
    loaded = load_gpen(path, device="cpu")
    assert isinstance(loaded, GPEN) and not loaded.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.state_dict().values())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(_run(loaded, x), _run(model, x), atol=0, rtol=0)


def test_load_gpen_training_checkpoint_uses_g_ema(tmp_path):
    g, g_ema = _tiny_model(seed=1), _tiny_model(seed=2)
    path = tmp_path / "000100.pth"
    torch.save({"g": g.state_dict(), "d": {}, "g_ema": g_ema.state_dict(), "g_optim": {}, "d_optim": {}}, path)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(_run(load_gpen(path), x), _run(g_ema, x), atol=0, rtol=0)


def test_load_gpen_rejects_discriminator_with_named_file(tmp_path):
    path = tmp_path / "GPEN-BFR-512-D.pth"
    torch.save({"convs.0.0.weight": torch.zeros(64, 3, 1, 1), "final_conv.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"GPEN-BFR-512-D\.pth is not a GPEN generator"):
        load_gpen(path)


def test_load_gpen_rejects_mismatched_shapes_and_missing_file(tmp_path):
    state = _tiny_model().state_dict()
    state["generator.style.2.bias"] = torch.zeros(3)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="broken.pth"):
        load_gpen(path)
    with pytest.raises(FileNotFoundError, match="photoarchive.download"):
        load_gpen(tmp_path / "absent.pth")


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: a harmless stand-in for arbitrary code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_load_gpen_refuses_pickled_code(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "GPEN-BFR-512.pth"
    torch.save({**_tiny_model().state_dict(), "extra": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_gpen(path)
    assert not marker.exists()
    # The payload is live: a full unpickle would have run it.
    sanity = tmp_path / "sanity"
    pickle.loads(pickle.dumps(_Payload(sanity))).close()
    assert sanity.exists()
