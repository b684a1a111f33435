"""PSNR in float64 (never on uint8 differences, which wrap around), peak 255."""

from __future__ import annotations

import torch

DATA_RANGE = 255.0


def psnr_batch(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """PSNR of each pair of a batch: 10 log10(255^2 / MSE).

    Args:
        pred, gt: [B, C, H, W] float tensors in [0, 255] (any device).
    Returns:
        [B] float64 PSNR in dB; +inf for identical images.
    """
    if pred.shape != gt.shape or pred.dim() != 4:
        raise ValueError(
            f"psnr_batch expects two [B, C, H, W] tensors of one shape, got {pred.shape}, {gt.shape}"
        )
    mse = (pred.to(torch.float64) - gt.to(torch.float64)).square().mean((1, 2, 3))
    return 10 * torch.log10(DATA_RANGE**2 / mse)
