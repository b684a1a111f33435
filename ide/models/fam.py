"""FAM, the feature aggregation module of MLA-Net: four chained MABs fused by shuffled 1x1 convs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ide.models.layers import Scale, wn_conv
from ide.models.mab import MAB


class ShuffleFusion(nn.Module):
    """`wn_conv1x1(channel_shuffle(cat([a, b]), 2))`: [B, C, H, W] x2 → [B, C, H, W].

    The shuffle only permutes the 1x1 conv's input channels, so instead of copying the
    activations the weight's columns are permuted (shuffled channel 2i is a_i, 2i+1 is b_i);
    the parameters keep the original layout (a [C, 2C, 1, 1] weight over shuffled channels).
    """

    def __init__(self, channels: int, init_scale: float) -> None:
        super().__init__()
        self.conv = wn_conv(2 * channels, channels, 1, init_scale)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight  # [C, 2C, 1, 1], columns in shuffled order
        out_ch = w.shape[0]
        w = w.reshape(out_ch, -1, 2).transpose(1, 2).reshape(out_ch, -1, 1, 1)  # columns for cat([a, b])
        return F.conv2d(torch.cat([a, b], dim=1), w, self.conv.bias)


class FAM(nn.Module):
    """Feature aggregation module; keeps shape [B, C, H, W].

    `x0 = B0(x)`, `x1 = B1(x0) + x0`, `x2 = B2(x1) + x1`, `x3 = B3(x2)`; fusions
    `r1 = F1(x0, x1)`, `r2 = F2(r1, x2)`, `r = F3(r2, x3)`; output `a·r + b·x` (a, b learnable, init 1).
    """

    def __init__(
        self, channels: int = 64, reduced: int = 16, attn_relu: bool = True, init_scale: float = 0.1
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            MAB(channels, reduced, attn_relu, init_scale=init_scale) for _ in range(4)
        )
        self.fusions = nn.ModuleList(ShuffleFusion(channels, init_scale) for _ in range(3))
        self.res_scale = Scale(1.0)
        self.x_scale = Scale(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] → [B, C, H, W]."""
        b0, b1, b2, b3 = self.blocks
        x0 = b0(x)
        x1 = b1(x0) + x0
        x2 = b2(x1) + x1
        x3 = b3(x2)
        f1, f2, f3 = self.fusions
        r = f3(f2(f1(x0, x1), x2), x3)
        return self.res_scale(r) + self.x_scale(x)
