"""Stage-2 losses: values, the frozen VGG, and VGG weights that are never downloaded."""

from __future__ import annotations

import math
import socket
import urllib.request
from pathlib import Path

import pytest
import torch

from ide.errors import UserError
from ide.losses import (
    PerceptualLoss,
    gan_loss,
    generator_losses,
    pixel_loss,
    vgg19_features,
    vgg19_layer_names,
)


def test_pixel_and_gan_loss_values():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.tensor([0.0, 0.5, 1.0, 0.5]).view(1, 1, 2, 2)
    assert pixel_loss(a, b).item() == pytest.approx(0.5)
    zero = torch.zeros(4, 1)
    assert gan_loss(zero, real=True).item() == pytest.approx(math.log(2))
    assert gan_loss(zero, real=False).item() == pytest.approx(math.log(2))
    logits = torch.tensor([[2.0], [-1.0]])
    expected_real = -torch.log(torch.sigmoid(logits)).mean().item()
    expected_fake = -torch.log(1 - torch.sigmoid(logits)).mean().item()
    assert gan_loss(logits, real=True).item() == pytest.approx(expected_real, rel=1e-5)
    assert gan_loss(logits, real=False).item() == pytest.approx(expected_fake, rel=1e-5)
    assert gan_loss(torch.full((2, 1), 30.0), real=True).item() < 1e-6
    assert gan_loss(torch.zeros(2, 1, dtype=torch.bfloat16), real=True).dtype == torch.float32


def test_vgg19_layout_matches_torchvision_indices():
    names = vgg19_layer_names()
    assert names.index("conv5_4") == 34 and names.index("relu5_4") == 35 and len(names) == 37
    features = vgg19_features("conv5_4")
    assert len(features) == 35 and isinstance(features[-1], torch.nn.Conv2d)
    with pytest.raises(ValueError, match="not a VGG19 layer"):
        vgg19_features("conv6_1")


def test_perceptual_random_vgg():
    torch.manual_seed(0)
    loss = PerceptualLoss(weights="random")
    assert loss.enabled and not loss.training
    assert all(not p.requires_grad for p in loss.parameters())
    loss.train()  # a training loop calling .train() on everything must not switch it back
    assert not loss.training
    pred = torch.rand(2, 1, 32, 32, requires_grad=True)
    target = torch.rand(2, 1, 32, 32)
    value = loss(pred, target)
    assert value.ndim == 0 and torch.isfinite(value) and value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    assert loss(target, target).item() == 0.0
    # 3-channel inputs are taken as they are; a gray image repeated to 3 channels gives the same loss
    rgb = loss(pred.detach().expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1))
    assert rgb.item() == pytest.approx(value.item(), rel=1e-5)


def test_perceptual_none_is_disabled():
    loss = PerceptualLoss(weights="none")
    assert not loss.enabled
    assert loss(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)).item() == 0.0
    assert sum(p.numel() for p in loss.parameters()) == 0


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """An empty torch hub folder and every download route made to fail loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a download was attempted")

    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbidden)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbidden)
    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    return hub


def test_missing_torchvision_weights_say_where_to_put_them(no_network):
    expected = no_network / "checkpoints" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(UserError) as err:
        PerceptualLoss(weights="torchvision")
    message = str(err.value)
    assert str(expected) in message and "loss.perceptual.weights" in message and "none" in message
    assert "\n" not in message


def test_weights_from_torchvision_cache_and_from_path(no_network, tmp_path):
    torch.manual_seed(1)
    source = vgg19_features("conv2_1")
    state = {f"features.{k}": v for k, v in source.state_dict().items()}
    cached = no_network / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    loss = PerceptualLoss(weights="torchvision", layer="conv2_1")
    torch.testing.assert_close(loss.features[5].weight, source[5].weight)
    # a plain path, here with bare keys (a state dict of `features` alone)
    bare = tmp_path / "features.pth"
    torch.save(source.state_dict(), bare)
    loss = PerceptualLoss(weights=str(bare), layer="conv2_1")
    torch.testing.assert_close(loss.features[0].bias, source[0].bias)


def test_bad_weight_paths_name_the_key(no_network, tmp_path: Path):
    with pytest.raises(UserError, match="loss.perceptual.weights: file .*nope.pth not found"):
        PerceptualLoss(weights=str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="loss.perceptual.weights: cannot read"):
        PerceptualLoss(weights=str(junk))
    partial = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, partial)
    with pytest.raises(UserError, match="not a VGG19 state dict"):
        PerceptualLoss(weights=str(partial), layer="conv1_1")


def test_random_texture_loss_prefers_texture_to_blur():
    """Zero on identical crops; a blurred crop is farther from the original's stroke statistics than a
    shifted copy of the same strokes, though its pixels are closer; gradients reach the prediction."""
    from ide.texture import RandomTextureLoss

    g = torch.Generator().manual_seed(0)
    strokes = (torch.rand(2, 1, 48, 48, generator=g) > 0.85).float()  # sparse dark/bright strokes
    blurred = torch.nn.functional.avg_pool2d(strokes, 5, 1, 2)
    shifted = torch.roll(strokes, (7, 5), (2, 3))
    loss = RandomTextureLoss()
    assert float(loss(strokes, strokes)) == 0.0
    assert float(loss(blurred, strokes)) > 3 * float(loss(shifted, strokes))
    assert float(pixel_loss(blurred, strokes)) < float(pixel_loss(shifted, strokes))
    pred = blurred.clone().requires_grad_(True)
    loss(pred, strokes).backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert RandomTextureLoss().w3.equal(loss.w3)  # fixed filters: the same loss in every run


def test_texture_term_in_generator_losses():
    from ide.config import LossConfig, PerceptualConfig
    from ide.texture import RandomTextureLoss

    fake, real = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    w = LossConfig(pixel=1.0, gan=0.0, texture=10.0, perceptual=PerceptualConfig(weights="none"))
    off = generator_losses(fake, real, w)
    on = generator_losses(fake, real, w, texture=RandomTextureLoss())
    assert "g_tex" not in off and on["g_tex"] > 0
    assert torch.isclose(on["g_total"], off["g_total"] + 10.0 * on["g_tex"])
