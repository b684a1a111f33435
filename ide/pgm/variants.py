"""Several leave-one-out coarse sketches per training photo, for stage-2 training.

One coarse sketch per photo lets the refiner memorise its ~250 training inputs. Variant `v` runs
stage 1 on every photo with a random part of the training bank (`fraction` of the pairs, drawn
with seed `v`) and, for odd `v`, half the candidates (K//2): the same face then comes with other
patch choices, other blocks and other blur, while the target sketch stays the same. Each
variant is cached like the main coarse set (ide/pgm/cache.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ide.config import Stage1Config
from ide.data.folders import PairedSplit
from ide.errors import UserError
from ide.pgm.cache import cached_coarse


def variant_bank(bank: PairedSplit, fraction: float, seed: int) -> PairedSplit:
    """A random `fraction` of the bank's pairs (at least 2), in bank order, drawn with `seed`."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"config key 'data.variant_fraction' is {fraction}; choose a fraction in (0, 1]")
    n = len(bank)
    keep = max(2, round(fraction * n))
    rng = np.random.default_rng(seed)
    return bank.subset(np.sort(rng.choice(n, size=min(keep, n), replace=False)))


def variant_settings(cfg: Stage1Config, v: int) -> Stage1Config:
    """Stage-1 settings of variant `v`: odd variants take half the candidates (at least 2)."""
    return dataclasses.replace(cfg, k=max(2, cfg.k // 2)) if v % 2 else cfg


def cached_variants(
    split: PairedSplit,
    cfg: Stage1Config,
    cache_dir: str | Path,
    count: int,
    fraction: float = 0.7,
) -> np.ndarray:
    """`count` leave-one-out coarse sketches of every photo of `split` from random parts of it.

    Args:
        split: the training pairs (photos to sketch and the bank to draw from).
        cfg: the stage-1 settings of the main coarse set.
        cache_dir: where coarse sketches are cached.
        count: number of variants V (>= 1).
        fraction: share of the bank each variant searches, in (0, 1].
    Returns:
        uint8 [V, N, H, W]; a photo never uses its own pair.
    """
    if count < 1:
        raise UserError(f"config key 'data.coarse_variants' is {count}; choose 0 (off) or a count >= 1")
    out = [
        cached_coarse(
            split,
            variant_bank(split, fraction, seed=v),
            variant_settings(cfg, v),
            cache_dir,
            leave_one_out=True,
        )
        for v in range(count)
    ]
    return np.stack(out)
