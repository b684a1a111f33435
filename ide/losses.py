"""Stage-2 losses: pixel L1, VGG19 perceptual L1 and the vanilla GAN (BCE with logits) loss, and their
weighted sums for the two players of a training step (`discriminator_losses`, `generator_losses`).

Images are [B, C, H, W] in [0, 1] (C = 1 for sketches; repeated to 3 channels for VGG).
Nothing here downloads: VGG19 weights come from torchvision's cache folder or a given file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ide.config import LossConfig
from ide.errors import UserError
from ide.vgg_files import VGG19_BLOCKS, resolve_vgg_weights, vgg19_layer_names

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def pixel_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (L1), computed in fp32; both [B, C, H, W] in [0, 1]."""
    return F.l1_loss(pred.float(), target.float())


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss: BCE with logits against all-ones (`real`) or all-zeros targets, in fp32."""
    logits = logits.float()
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def discriminator_losses(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"d_real", "d_fake"}: BCE of D's logits on real sketches (label 1) and on detached fakes (0).

    real, fake: [B, 1, c, c] in [0, 1]; `fake` must already be detached from the generator."""
    return {"d_real": gan_loss(d(real), True), "d_fake": gan_loss(d(fake), False)}


def generator_losses(
    fake: torch.Tensor,
    real: torch.Tensor,
    w: LossConfig,
    perceptual: nn.Module | None = None,
    d: nn.Module | None = None,
    texture: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """The generator's terms and their weighted sum "g_total" (w.pixel·g_pix + w.perceptual.weight·g_perc
    + w.gan·g_gan + w.texture·g_tex). fake, real: [B, 1, c, c] in [0, 1]. `perceptual` None drops
    g_perc, `d` None drops g_gan, `texture` None drops g_tex; `d` must be frozen (requires_grad False)
    so that only the generator gets gradients."""
    losses = {"g_pix": pixel_loss(fake.float(), real)}
    total = w.pixel * losses["g_pix"]
    if perceptual is not None:
        losses["g_perc"] = perceptual(fake, real)
        total = total + w.perceptual.weight * losses["g_perc"]
    if d is not None:
        losses["g_gan"] = gan_loss(d(fake), True)
        total = total + w.gan * losses["g_gan"]
    if texture is not None:
        losses["g_tex"] = texture(fake, real)
        total = total + w.texture * losses["g_tex"]
    losses["g_total"] = total
    return losses


def vgg19_features(last: str) -> nn.Sequential:
    """VGG19's feature layers up to and including `last` (e.g. 'conv5_4': before its ReLU).

    Indices match torchvision's `vgg19().features`, so its state-dict keys (`features.N.*`) load.
    """
    names = vgg19_layer_names()
    if last not in names:  # checked at config load (ide.config_rules); this is for direct callers
        raise ValueError(f"'{last}' is not a VGG19 layer; valid: conv1_1 ... pool5")
    layers: list[nn.Module] = []
    prev = 3
    for widths in VGG19_BLOCKS:
        for width in widths:
            layers += [nn.Conv2d(prev, width, 3, padding=1), nn.ReLU(inplace=True)]
            prev = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers[: names.index(last) + 1])


def _load_features_state(path: Path, features: nn.Sequential) -> None:
    """Load `features.N.*` (or bare `N.*`) tensors of a VGG19 state dict into `features`."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which one
        raise UserError(f"loss.perceptual.weights: cannot read {path} as a state dict ({err})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    wanted = features.state_dict().keys()
    picked = {}
    for key in wanted:
        for candidate in (f"features.{key}", key):
            if candidate in state:
                picked[key] = state[candidate]
                break
    missing = [k for k in wanted if k not in picked]
    if missing:
        raise UserError(
            f"loss.perceptual.weights: {path} is not a VGG19 state dict (no 'features.{missing[0]}')"
        )
    try:
        features.load_state_dict(picked)
    except RuntimeError as err:
        first = str(err).splitlines()[-1].strip()
        raise UserError(f"loss.perceptual.weights: {path} does not fit VGG19 ({first})") from None


class PerceptualLoss(nn.Module):
    """L1 between VGG19 features (default conv5_4, before ReLU) of prediction and target.

    Args:
        weights: 'torchvision' (torch's hub cache, never downloaded), a path to a VGG19 state dict,
            'none' (loss disabled: `enabled` is False and the loss is 0), or 'random' (random init,
            for tests and benchmarks).
        layer: the VGG19 layer whose output is compared ('conv5_4', 'relu3_4', ...).

    Inputs: [B, 1 or 3, H, W] in [0, 1]; 1 channel is repeated to 3, then ImageNet-normalised.
    The VGG is frozen (no parameter gradients, eval mode); the target's features take no gradient.
    """

    def __init__(self, weights: str = "torchvision", layer: str = "conv5_4") -> None:
        super().__init__()
        self.enabled = weights != "none"
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.features = vgg19_features(layer) if self.enabled else nn.Sequential()
        if self.enabled:
            path = resolve_vgg_weights(weights)
            if path is None:  # random: torchvision's VGG init, so deep features are not vanishingly small
                for m in self.features.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                        nn.init.zeros_(m.bias)
            else:
                _load_features_state(path, self.features)
        self.features.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Stays in eval mode whatever the caller asks (a frozen feature extractor)."""
        return super().train(False)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """pred, target: [B, C, H, W] in [0, 1] → scalar fp32 loss (0 when disabled)."""
        if not self.enabled:
            return pred.new_zeros((), dtype=torch.float32)
        with torch.no_grad():
            target_features = self._features(target)
        return F.l1_loss(self._features(pred).float(), target_features.float())
