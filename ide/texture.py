"""A texture loss that needs no pretrained network: Gram matrices of fixed random filters.

Texture statistics of one layer of random convolution filters at several sizes, followed by a ReLU,
describe a texture well enough to synthesise it (Ustyuzhaninov, Brendel, Gatys, Bethge 2016,
"Texture synthesis using shallow convolutional networks with random filters"). Comparing those Gram
matrices between the refined sketch and the artist's asks the generator for the artist's stroke
statistics (hatching direction, line width, contrast) in each crop, where the pixel L1 alone is
minimised by their blurred average. The filters are drawn once from a fixed seed and never trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZES = (3, 5, 7, 11)  # filter sizes in pixels, one bank each
FILTERS = 32  # filters per size
SEED = 20161111  # the filters are fixed: the same loss in every run and on every device


class RandomTextureLoss(nn.Module):
    """Mean absolute difference of the Gram matrices of random-filter responses, over filter sizes.

    Inputs: prediction and target [B, 1, H, W] in [0, 1] (H, W >= the largest filter). For each size,
    the responses ReLU(conv(x - 0.5)) [B, F, H, W] give a Gram matrix [B, F, F] normalised by H·W;
    the loss is the mean |G(pred) - G(target)| over sizes, batch and entries, in fp32.
    The filters are zero-mean, unit-norm buffers; the target's Gram takes no gradient.
    """

    def __init__(self, sizes: tuple[int, ...] = SIZES, filters: int = FILTERS, seed: int = SEED) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.sizes = tuple(sizes)
        for size in self.sizes:
            w = torch.randn(filters, 1, size, size, generator=gen)
            w = w - w.mean(dim=(2, 3), keepdim=True)  # respond to structure, not to the mean gray
            w = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            self.register_buffer(f"w{size}", w, persistent=False)

    def grams(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Gram matrices [B, F, F] of one batch [B, 1, H, W] in [0, 1], one per filter size."""
        x = x.float() - 0.5
        out = []
        for size in self.sizes:
            r = F.relu(F.conv2d(x, getattr(self, f"w{size}"))).flatten(2)  # [B, F, H'·W']
            out.append(r @ r.transpose(1, 2) / r.shape[-1])
        return out

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            want = self.grams(target)
        got = self.grams(pred)
        return torch.stack([(g - t).abs().mean() for g, t in zip(got, want)]).mean()
