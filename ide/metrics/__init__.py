"""The metrics of the face-sketch literature on gray images in [0, 255]: FSIM, SSIM, PSNR.

Two ways in:

* torch, batched, on any device (validation during training):
  `score_batch(pred, gt)` with float tensors [B, 1, H, W] in [0, 255] → per-image float64 [B]
  tensors; or `fsim_batch`, `ssim_batch`, `psnr_batch` one at a time. A generator's output in
  [-1, 1] maps to this range by `(y + 1) * 127.5`; round and clamp it (`.round().clamp(0, 255)`)
  to score exactly what a saved 8-bit PNG would score.
* numpy: `fsim(pred, gt)`, `ssim(...)`, `psnr(...)` take uint8 or float arrays [H, W] (→ float)
  or [N, H, W] (→ float64 array [N]) in [0, 255].

`ide metrics` (folders of PNG/JPG) is `ide.metrics.folder.score_folders`.
"""

from __future__ import annotations

import numpy as np
import torch

from ide.metrics.fsim import fsim_batch
from ide.metrics.psnr import psnr_batch
from ide.metrics.ssim import ssim_batch

__all__ = ["fsim", "fsim_batch", "psnr", "psnr_batch", "score_batch", "ssim", "ssim_batch"]


def score_batch(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """FSIM, SSIM and PSNR of each pair of a batch.

    Args:
        pred, gt: [B, 1, H, W] float tensors in [0, 255] (gray), same shape and device.
    Returns:
        {"fsim": [B], "ssim": [B], "psnr": [B]}, float64 tensors on the inputs' device.
    """
    with torch.no_grad():
        return {"fsim": fsim_batch(pred, gt), "ssim": ssim_batch(pred, gt), "psnr": psnr_batch(pred, gt)}


def _as_batch(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    # ascontiguousarray: views such as image[:, ::-1] have negative strides, which torch refuses
    arr = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
    if arr.dim() not in (2, 3):
        raise ValueError(f"expected a gray image [H, W] or a stack [N, H, W], got shape {tuple(arr.shape)}")
    arr = arr.to(torch.float64)
    return arr[None, None] if arr.dim() == 2 else arr[:, None]


def _numpy_metric(fn, pred, gt) -> float | np.ndarray:
    scores = fn(_as_batch(pred), _as_batch(gt)).cpu().numpy()
    return float(scores[0]) if np.ndim(pred) == 2 else scores


def fsim(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """FSIM (gray) of uint8/float arrays in [0, 255]: [H, W] → float, [N, H, W] → [N] (see fsim_batch)."""
    return _numpy_metric(fsim_batch, pred, gt)


def ssim(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """Gaussian-window SSIM of arrays in [0, 255]: [H, W] → float, [N, H, W] → [N] (see ssim_batch)."""
    return _numpy_metric(ssim_batch, pred, gt)


def psnr(pred: np.ndarray, gt: np.ndarray) -> float | np.ndarray:
    """PSNR (float64, peak 255) of arrays in [0, 255]: [H, W] → float, [N, H, W] → [N]."""
    return _numpy_metric(psnr_batch, pred, gt)
