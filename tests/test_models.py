"""Stage-2 networks: shapes, parameter counts, initialisation, layouts and the mixed-precision path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from ide import precision
from ide.config import ModelConfig
from ide.errors import UserError
from ide.models import (
    FAM,
    MAB,
    MLANet,
    PatchDiscriminator,
    VGGDiscriminator,
    build_discriminator,
    build_generator,
)
from ide.models.fam import ShuffleFusion
from ide.models.layers import channel_shuffle


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_parameter_counts():
    assert n_params(MLANet(in_channels=3, out_channels=3, scale=2)) == 3_068_290
    d = n_params(VGGDiscriminator(in_channels=3))
    assert abs(d - 14.5e6) <= 0.01 * 14.5e6, d
    assert n_params(MAB()) == 88_768  # 2 dense 3x3 (73,856) + spatial (9,088) + pixel attention (5,824)


@pytest.mark.parametrize(("scale", "size"), [(1, (17, 14)), (2, (16, 13)), (2, (25, 20))])
def test_generator_shapes(scale, size):
    g = MLANet(n_fam=1, scale=scale)
    x = torch.rand(2, 1, *size)
    assert g(x).shape == (2, 1, size[0] * scale, size[1] * scale)


def test_blocks_keep_shape():
    x = torch.randn(2, 64, 15, 18)
    assert MAB()(x).shape == x.shape
    assert FAM()(x).shape == x.shape


def test_skip_is_bicubic_of_first_channels_with_photo_conditioning():
    cfg = ModelConfig(n_fam=1, photo_condition=True)
    g = build_generator(cfg)
    assert g.in_channels == 2 and g.out_channels == 1
    with torch.no_grad():  # silence the learned residual: what is left is the global skip
        g.tail3_scale.scale.zero_()
        g.tail5_scale.scale.zero_()
    x = torch.rand(2, 2, 16, 16)
    expected = F.interpolate(x[:, :1], scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(g(x), expected)
    # scale 1: the skip is the identity on the sketch channel
    g1 = build_generator(ModelConfig(n_fam=1, photo_condition=True, scale=1))
    with torch.no_grad():
        g1.tail3_scale.scale.zero_()
        g1.tail5_scale.scale.zero_()
    torch.testing.assert_close(g1(x), x[:, :1])
    with pytest.raises(ValueError, match="out_channels"):
        MLANet(in_channels=1, out_channels=3)


def test_weight_norm_init_in_effect():
    g = MLANet(n_fam=1, init_scale=0.1)
    wn_convs = [m for m in g.modules() if parametrize.is_parametrized(m, "weight")]
    assert len(wn_convs) == 1 + 3 + 2  # head, three fusions, two tail branches
    for conv in wn_convs:
        v = conv.parametrizations.weight.original1
        g_ = conv.parametrizations.weight.original0
        torch.testing.assert_close(g_.flatten(), v.flatten(1).norm(dim=1))
        torch.testing.assert_close(conv.weight, v)  # the effective weight is the initialised tensor
        fan_in = v[0].numel()
        expected = 0.1 * math.sqrt(2.0 / fan_in)  # Kaiming normal x 0.1, not PyTorch's default init
        assert abs(conv.weight.std().item() / expected - 1) < 0.15, (conv, conv.weight.std(), expected)
        assert torch.count_nonzero(conv.bias) == 0
    # plain convs get the same init
    w = g.body[0].blocks[0].conv1.weight
    assert abs(w.std().item() / (0.1 * math.sqrt(2 / 576)) - 1) < 0.05
    # both g and v of a weight-normalised conv receive gradients
    g(torch.rand(1, 1, 16, 16)).sum().backward()
    head = g.head.parametrizations.weight
    assert head.original0.grad is not None and head.original1.grad.abs().sum() > 0


def test_shuffle_fusion_equals_reference():
    fusion = ShuffleFusion(8, init_scale=1.0)
    a, b = torch.randn(2, 8, 5, 6), torch.randn(2, 8, 5, 6)
    reference = fusion.conv(channel_shuffle(torch.cat([a, b], 1), 2))
    torch.testing.assert_close(fusion(a, b), reference)
    assert channel_shuffle(torch.arange(4.0).view(1, 4, 1, 1), 2).flatten().tolist() == [0, 2, 1, 3]


def test_attention_relu_is_switchable():
    m1 = MAB(attn_relu=True)
    m0 = MAB(attn_relu=False)
    m0.load_state_dict(m1.state_dict())
    x = torch.randn(1, 64, 16, 16)
    assert not torch.allclose(m1(x), m0(x))


def test_discriminators():
    d = VGGDiscriminator()
    assert d(torch.rand(3, 1, 128, 128)).shape == (3, 1)
    with pytest.raises(ValueError, match="128x128"):
        d(torch.rand(1, 1, 100, 125))
    p = PatchDiscriminator()
    assert p(torch.rand(2, 1, 128, 128)).shape == (2, 1, 14, 14)
    assert p(torch.rand(1, 1, 250, 200)).shape[:2] == (1, 1)
    assert isinstance(build_discriminator(ModelConfig(discriminator="patch")), PatchDiscriminator)
    assert isinstance(build_discriminator(ModelConfig()), VGGDiscriminator)
    with pytest.raises(ValueError, match="model.discriminator"):  # configs are checked at load
        build_discriminator(ModelConfig(discriminator="unet"))


def test_resolve_device_and_precision(monkeypatch):
    cpu = torch.device("cpu")
    assert isinstance(precision.cpu_supports_bf16(), bool)
    assert precision.resolve_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert precision.resolve_device("auto") == cpu
        with pytest.raises(UserError, match="CUDA"):
            precision.resolve_device("cuda")
    with pytest.raises(UserError, match="not a device"):
        precision.resolve_device("tpu")
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    assert precision.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    assert precision.resolve_precision("auto", cpu) == "fp32"
    assert precision.resolve_precision("auto", torch.device("cuda")) == "fp16"
    with pytest.raises(UserError, match="fp16"):
        precision.resolve_precision("fp16", cpu)
    with pytest.raises(UserError, match="train.precision"):
        precision.resolve_precision("int8", cpu)


def test_channels_last_matches_contiguous():
    g = MLANet(n_fam=1)
    x = torch.rand(2, 1, 16, 16)
    ref = g(x)
    g_cl = precision.to_layout(g, True)
    out = g_cl(precision.to_layout(x, True))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # the VGG discriminator flattens in C, H, W order whatever the layout: checkpoints stay portable
    d = VGGDiscriminator(base=4)
    y = torch.rand(2, 1, 128, 128)
    ref = d(y)
    torch.testing.assert_close(precision.to_layout(d, True)(precision.to_layout(y, True)), ref)


def test_bf16_autocast_close_to_fp32_and_grads_finite():
    """The mixed-precision path: output close to fp32, finite gradients, fp32 master weights."""
    cpu = torch.device("cpu")
    g = precision.to_layout(MLANet(channels=32, n_fam=1, reduced=8), True)
    d = precision.to_layout(VGGDiscriminator(base=4), True)
    x = precision.to_layout(torch.rand(2, 1, 32, 32), True)
    with torch.no_grad():
        ref = g(x)
    with precision.autocast(cpu, "bf16"):
        out = g(x)
        logits = d(F.interpolate(out, size=(128, 128)))
    assert out.dtype == torch.float32  # the global skip is added in fp32
    residual = (ref - F.interpolate(x, scale_factor=2, mode="bicubic")).abs().mean()
    err = (out.detach() - ref).abs()
    # bf16 keeps ~3 significant digits: well under half a gray level (1/510), ~0.3% of the residual
    assert err.max() < 2e-3 and err.mean() < 0.02 * residual, (err.max(), err.mean(), residual)
    (out.mean() + logits.float().mean()).backward()
    for p in list(g.parameters()) + list(d.parameters()):
        assert p.dtype == torch.float32
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_fp32_on_cpu_runs_layer_in_fp32_under_autocast():
    conv = torch.nn.Conv2d(4, 4, 5, padding=2, groups=4)
    x = torch.randn(1, 4, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x).dtype == torch.bfloat16
        assert precision.fp32_on_cpu(conv, x.bfloat16()).dtype == torch.float32
    assert precision.grad_scaler(torch.device("cpu"), "fp32").is_enabled() is False
