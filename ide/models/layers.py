"""Small building pieces shared by the generator's blocks: initialisation and weight-normalised convs."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm


@torch.no_grad()
def init_conv_(conv: nn.Conv2d, scale: float) -> nn.Conv2d:
    """Kaiming-normal (fan_in, ReLU gain) weights times `scale`, zero bias; returns `conv`.

    The original repository meant this init (scale 0.1, as in ESRGAN) but applied it after
    `weight_norm` had split the weight into g and v, where it did nothing. Here a weight-normalised
    conv gets v initialised and g set to ||v|| per output channel, so the effective weight g·v/||v||
    is exactly the initialised tensor.
    """
    if parametrize.is_parametrized(conv, "weight"):
        param = conv.parametrizations.weight
        v, g = param.original1, param.original0
        nn.init.kaiming_normal_(v, a=0.0, mode="fan_in", nonlinearity="relu")
        v.mul_(scale)
        g.copy_(v.flatten(1).norm(dim=1).view_as(g))
    else:
        nn.init.kaiming_normal_(conv.weight, a=0.0, mode="fan_in", nonlinearity="relu")
        conv.weight.mul_(scale)
    if conv.bias is not None:
        conv.bias.zero_()
    return conv


def wn_conv(in_channels: int, out_channels: int, kernel_size: int, init_scale: float) -> nn.Conv2d:
    """Weight-normalised conv (stride 1, 'same' padding, bias), initialised by `init_conv_`."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    return init_conv_(weight_norm(conv, name="weight", dim=0), init_scale)


def conv(in_channels: int, out_channels: int, kernel_size: int, init_scale: float, **kwargs) -> nn.Conv2d:
    """Plain conv with bias and 'same' padding (unless given), initialised by `init_conv_`."""
    kwargs.setdefault("padding", kwargs.get("dilation", 1) * (kernel_size // 2))
    return init_conv_(nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs), init_scale)


class Scale(nn.Module):
    """A learnable scalar multiplier (shape [1])."""

    def __init__(self, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, C, H, W] → channels interleaved across `groups` (ShuffleNet); the reference for FAM's fusion."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)
