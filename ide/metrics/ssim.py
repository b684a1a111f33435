"""SSIM (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004), the Gaussian-window version of the paper.

11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, population (co)variances,
the SSIM map averaged over the "valid" region only (where the whole window lies inside the
image). This is exactly scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`, which crops the 5-pixel border after filtering,
and Wang's `ssim.m` (`filter2(window, img, 'valid')`).
"""

from __future__ import annotations

import torch

SIGMA = 1.5
RADIUS = 5  # int(3.5 * sigma + 0.5), scipy's and skimage's truncation: an 11-tap window
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0


def _gaussian_taps() -> list[float]:
    offsets = torch.arange(-RADIUS, RADIUS + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * offsets**2 / SIGMA**2)
    return (taps / taps.sum()).tolist()


def _valid_filter(maps: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """Correlate along `dim` (-2 or -1) with the window, "valid" part only (no padding)."""
    n = len(taps)
    size = maps.shape[dim] - n + 1
    out = maps.narrow(dim, 0, size) * taps[0]
    for k in range(1, n):
        out.add_(maps.narrow(dim, k, size), alpha=taps[k])  # in place: one pass per tap
    return out


def ssim_batch(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """SSIM of each pair of a batch, computed in float64.

    Args:
        pred, gt: [B, 1, H, W] float tensors in [0, 255], H and W at least 11 (any device).
    Returns:
        [B] float64 SSIM in [-1, 1], 1 for identical images (constant images included).
    """
    if pred.shape != gt.shape or pred.dim() != 4 or pred.shape[1] != 1:
        raise ValueError(
            f"ssim_batch expects two [B, 1, H, W] tensors of one shape, got {pred.shape}, {gt.shape}"
        )
    if min(pred.shape[-2:]) < 2 * RADIUS + 1:
        raise ValueError(f"ssim needs images of at least 11x11 pixels, got {tuple(pred.shape[-2:])}")
    taps = _gaussian_taps()
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    scores = []
    # One pair at a time: its five float64 maps (2 MB at 250x200) stay in cache through the 22 passes.
    for x, y in zip(pred.to(torch.float64), gt.to(torch.float64)):
        maps = torch.cat([x, y, x * x, y * y, x * y])  # [5, H, W]
        # The separable window, "valid" in both directions: the border never enters the mean.
        ux, uy, uxx, uyy, uxy = _valid_filter(_valid_filter(maps, taps, -2), taps, -1)
        vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        scores.append(s.mean())
    return torch.stack(scores)
