"""MAB, the multi-attention block of MLA-Net: two 3x3 convs gated by spatial and pixel attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ide.models.layers import conv
from ide.precision import fp32_on_cpu


class MAB(nn.Module):
    """Multi-attention block; keeps shape [B, C, H, W], needs H, W >= 13.

    `y = conv3x3(lrelu(conv3x3(x)))`, then `out = y · A_s · A_p` with
    * spatial attention A_s: 1x1 to `reduced` channels (c), stride-2 3x3, max-pool k7 s3, the sum of
      a lrelu'd dilated (d2) 3x3 and a lrelu'd 3x3, nearest resize to c's size plus c, 1x1 back to
      `channels`, ReLU (if `attn_relu`, so A_s lies in [0.5, 1)), sigmoid;
    * pixel attention A_p: sigmoid(depthwise 5x5(1x1(y))).
    There is no residual inside the block (FAM adds them).

    Args:
        channels: feature width C.
        reduced: width of the spatial-attention branch.
        attn_relu: the original's ReLU before the spatial-attention sigmoid.
        slope: negative slope of the LeakyReLUs.
        init_scale: Kaiming-normal init times this (0.1 like the original, for a residual net).
    """

    def __init__(
        self,
        channels: int = 64,
        reduced: int = 16,
        attn_relu: bool = True,
        slope: float = 0.05,
        init_scale: float = 0.1,
    ) -> None:
        super().__init__()
        self.attn_relu = attn_relu
        self.slope = slope
        self.conv1 = conv(channels, channels, 3, init_scale)
        self.conv2 = conv(channels, channels, 3, init_scale)
        # spatial attention (an ESA-like branch working on a ~1/6-size map)
        self.sa_reduce = conv(channels, reduced, 1, init_scale)
        self.sa_down = conv(reduced, reduced, 3, init_scale, stride=2, padding=1)
        self.sa_dilated = conv(reduced, reduced, 3, init_scale, dilation=2)
        self.sa_conv = conv(reduced, reduced, 3, init_scale)
        self.sa_expand = conv(reduced, channels, 1, init_scale)
        # pixel attention
        self.pa_conv = conv(channels, channels, 1, init_scale)
        self.pa_dw = conv(channels, channels, 5, init_scale, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] features (any range) → [B, C, H, W]."""
        y = self.conv2(F.leaky_relu(self.conv1(x), self.slope))
        c = self.sa_reduce(y)
        p = self.pa_conv(y)
        s = F.max_pool2d(self.sa_down(c), kernel_size=7, stride=3)
        u = F.leaky_relu(self.sa_dilated(s), self.slope) + F.leaky_relu(self.sa_conv(s), self.slope)
        u = F.interpolate(u, size=c.shape[-2:], mode="nearest") + c
        a_s = self.sa_expand(u)
        if self.attn_relu:
            a_s = F.relu(a_s)
        # The depthwise 5x5 stays fp32 on CPU: oneDNN's bf16 backward of it is ~2x slower.
        a_p = fp32_on_cpu(self.pa_dw, p)
        return y * torch.sigmoid(a_s).to(y.dtype) * torch.sigmoid(a_p).to(y.dtype)
