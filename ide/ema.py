"""Exponential moving average (EMA) of the generator's weights, the weights that are validated and shipped.

GAN generators oscillate from step to step: on CUFS validation the raw generator's FSIM moved by
±0.005 between evaluations 100 steps apart. The average of its recent weights is steadier (as in
BasicSR's `ema_decay` and StyleGAN's G_ema); on CUFS it did not raise the best FSIM, since it
also smooths the GAN texture.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of `model` whose parameters follow e_t = d_t * e_{t-1} + (1 - d_t) * p_t.

    d_t = min(decay, (1 + t) / (10 + t)) for update t = 1, 2, ...: the warm-up keeps the first
    averages from being dominated by the initial weights. Buffers are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, t: int) -> None:
        """Fold in `model`'s current weights as update number t (1-based)."""
        d = min(self.decay, (1 + t) / (10 + t))
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)
