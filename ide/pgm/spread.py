"""Where stage 1 is unsure: the per-pixel spread of the K candidate sketch patches.

Each coarse patch is z = Σ_k w_k c_k, the MWF-weighted mean of K candidate sketch patches. Their
weighted variance Σ_k w_k (c_k - z)² per patch pixel, averaged over overlapping patches with the
sketch's own blending window, is large where the candidates disagreed (hair, glasses, strokes
that the average blurs away) and small where they agreed. Its square root, in gray levels, is an
extra input channel for stage 2 (model.uncertainty).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ide.config import Stage1Config
from ide.data.folders import PairedSplit
from ide.pgm.grid import PatchGrid


def candidate_variance(wts: torch.Tensor, cand_sketch: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Weighted variance of the candidates per patch pixel.

    wts: [P, B, K] on the simplex; cand_sketch: [P, B, K, d]; z: [P, B, d] = the weighted mean.
    Returns float [P, B, d] >= 0 (gray levels²).
    """
    # the centred form: E[c²] - z² cancels catastrophically in float32 where candidates agree
    return (wts.unsqueeze(-2) @ (cand_sketch - z.unsqueeze(-2)).square()).squeeze(-2)


def blend_spread(var: torch.Tensor, order: torch.Tensor, grid: PatchGrid, power: float) -> torch.Tensor:
    """Patch variances [P, B, d] in colour `order` → per-pixel std float [B, H, W] (gray levels)."""
    in_grid = torch.empty_like(var).index_copy_(0, order, var).transpose(0, 1)  # [B, P, d]
    return grid.blend(in_grid, power).sqrt_().float()


def to_uint8(spread: np.ndarray) -> np.ndarray:
    """float std in gray levels → uint8 (rounded; a std cannot exceed 127.5)."""
    return np.clip(np.round(spread), 0, 255).astype(np.uint8)


def cached_spread(
    target: PairedSplit, bank: PairedSplit, cfg: Stage1Config, cache_dir: str | Path, leave_one_out: bool
) -> np.ndarray:
    """The candidate spread of `target`'s coarse sketches (as `cached_coarse` makes them), cached.

    Returns uint8 [N, H, W]: per-pixel std of the candidates in gray levels. Runs stage 1 once
    more when missing (the coarse sketches it makes are the cached ones, bit for bit).
    """
    from ide.pgm.cache import _save_atomic, cache_key  # (they import stage 1, which imports this)
    from ide.pgm.synthesis import coarse_sketches

    path = Path(cache_dir) / f"spread-{cache_key(target, bank, cfg, leave_one_out)}.npy"
    expected = (len(target), *target.photos.shape[1:3])
    if path.is_file():
        try:
            cached = np.load(path)
            if cached.dtype == np.uint8 and cached.shape == expected:
                return cached
        except (OSError, ValueError):
            pass
    exclude = None
    if leave_one_out:
        where = {pid: i for i, pid in enumerate(bank.ids)}
        exclude = [where.get(pid) for pid in target.ids]
    spread = np.zeros(expected, np.float32)
    coarse_sketches(bank.photos, bank.sketches, target.photos, cfg, exclude=exclude, spread=spread)
    result = to_uint8(spread)
    _save_atomic(path, result)
    return result
