"""GPEN re-implementation: official layout, official numbers, safe strict loading."""

import json
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
