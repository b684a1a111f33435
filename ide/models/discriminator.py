"""Discriminators: the repository's VGG-style net for 128x128 crops, and an any-size PatchGAN."""

from __future__ import annotations

import torch
from torch import nn


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class VGGDiscriminator(nn.Module):
    """VGG-style discriminator for 128x128 inputs (the paper's), one logit per image.

    Five stages, each conv3x3 then conv4x4 stride 2 (widths base·[1, 2, 4, 8, 8]); every conv is
    followed by BatchNorm except the very first (which has a bias instead), and by LeakyReLU 0.2;
    then 4x4·8·base → flatten → linear → 100 → LeakyReLU 0.2 → linear → 1.
    ~14.5 M parameters with base 64 (14.5 M with 3 input channels).

    Shapes: [B, in_channels, 128, 128] images in [0, 1] → [B, 1] logits.
    """

    def __init__(self, in_channels: int = 1, base: int = 64) -> None:
        super().__init__()
        widths = [base, base * 2, base * 4, base * 8, base * 8]
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            first = i == 0
            layers.append(nn.Conv2d(prev, width, 3, padding=1, bias=first))
            if not first:
                layers.append(nn.BatchNorm2d(width))
            layers += [_lrelu(), nn.Conv2d(width, width, 4, stride=2, padding=1, bias=False)]
            layers += [nn.BatchNorm2d(width), _lrelu()]
            prev = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(prev * 4 * 4, 100), _lrelu(), nn.Linear(100, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, 128, 128] → logits [B, 1]."""
        if x.shape[-2:] != (128, 128):
            raise ValueError(f"VGGDiscriminator needs 128x128 inputs, got {tuple(x.shape[-2:])}")
        # flatten needs C, H, W order whatever the memory layout, so make it contiguous first
        return self.classifier(self.features(x).contiguous())


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix's N-layer discriminator): a map of logits, one per receptive field.

    conv4x4 s2 (bias) → LeakyReLU; `n_layers - 1` × [conv4x4 s2, BatchNorm, LeakyReLU] doubling
    the width up to 8·base; conv4x4 s1, BatchNorm, LeakyReLU; conv4x4 s1 → 1 channel.
    With 3 layers the receptive field is 70x70.

    Shapes: [B, in_channels, H, W] (H, W >= 3·2**n_layers) → [B, 1, H/2**n_layers - 2, W/2**n_layers - 2].
    """

    def __init__(self, in_channels: int = 1, base: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 4, stride=2, padding=1), _lrelu()]
        width = base
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            nxt = base * min(2**n, 8)
            layers += [nn.Conv2d(width, nxt, 4, stride=stride, padding=1, bias=False), nn.BatchNorm2d(nxt)]
            layers.append(_lrelu())
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] → logits [B, 1, h, w]."""
        return self.net(x)
