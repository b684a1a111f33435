"""MLA-Net, the stage-2 generator: a residual super-resolution net on the coarse sketch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ide.models.fam import FAM
from ide.models.layers import Scale, wn_conv


class MLANet(nn.Module):
    """Head wn-conv3x3 → `n_fam` FAMs → two-branch tail → pixel shuffle, plus a bicubic global skip.

    Value range: inputs are images in [0, 1] (float; channel 0 the coarse sketch, further
    channels conditioning such as the gray photo); the output is a sketch in the same [0, 1]
    range, predicted as a residual over the bicubic ×`scale` upsampling of the first
    `out_channels` input channels. Nothing is clamped inside the network (clamp when saving).

    Shapes: [B, in_channels, H, W] → [B, out_channels, scale·H, scale·W]; H, W >= 13 (the
    spatial attention pools a stride-2 map with a 7x7 window).

    Args:
        in_channels: input channels (1 sketch, 2 with photo conditioning).
        out_channels: output channels; must be <= in_channels (the skip takes the first ones).
        channels: feature width.
        n_fam: number of FAM blocks.
        reduced: width of the spatial-attention branches.
        scale: 1 (no pixel shuffle, identity skip) or an integer upscale factor.
        attn_relu: the original's ReLU before the spatial-attention sigmoid.
        init_scale: Kaiming-normal init times this for every conv (0.1 like the original).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: int = 64,
        n_fam: int = 8,
        reduced: int = 16,
        scale: int = 2,
        attn_relu: bool = True,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if out_channels > in_channels:
            raise ValueError(f"out_channels ({out_channels}) must be <= in_channels ({in_channels})")
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.head = wn_conv(in_channels, channels, 3, init_scale)
        self.body = nn.Sequential(*(FAM(channels, reduced, attn_relu, init_scale) for _ in range(n_fam)))
        tail_out = out_channels * scale * scale
        self.tail3 = wn_conv(channels, tail_out, 3, init_scale)
        self.tail5 = wn_conv(channels, tail_out, 5, init_scale)
        self.tail3_scale = Scale(0.5)
        self.tail5_scale = Scale(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, in_channels, H, W] in [0, 1] → [B, out_channels, scale·H, scale·W], ~[0, 1] (unclamped)."""
        s = self.scale
        feat = self.body(self.head(x))
        # pixel_shuffle is linear, so shuffling the sum equals the original's sum of shuffles
        out = self.tail3_scale(self.tail3(feat)) + self.tail5_scale(self.tail5(feat))
        skip = x[:, : self.out_channels]
        if s > 1:
            out = F.pixel_shuffle(out, s)
            skip = F.interpolate(skip, scale_factor=s, mode="bicubic", align_corners=False)
        # the sum in the input's precision: a bf16 skip would be off by up to half a gray level
        dtype = torch.promote_types(out.dtype, x.dtype)
        return out.to(dtype) + skip.to(dtype)
