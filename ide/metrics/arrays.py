"""Scores of whole uint8 image stacks (training validation, `ide test --split`, `ide demo`)."""

from __future__ import annotations

import numpy as np
import torch

from ide.metrics import score_batch


def score_arrays(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Mean FSIM / SSIM / PSNR of uint8 [N,H,W] predictions against uint8 [N,H,W] ground truth.

    Returns {"fsim", "ssim", "psnr"}: FSIM and SSIM in [0, 1], PSNR in dB (as `ide metrics`)."""
    p = torch.from_numpy(np.ascontiguousarray(pred)[:, None]).double()
    t = torch.from_numpy(np.ascontiguousarray(gt)[:, None]).double()
    scores = score_batch(p, t)
    return {k: float(v.mean()) for k, v in scores.items()}
