"""Coarse sketches cached on disk, keyed by the data and the stage-1 settings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from ide.config import Stage1Config
from ide.data.folders import PairedSplit
from ide.fileio import atomic_write
from ide.pgm.prepare import PreparedSplit
from ide.pgm.synthesis import coarse_sketches

# Bump when stage 1 changes its results for the same data and settings (old files are then ignored).
ALGORITHM_VERSION = 7  # 3: flat ties by offset from the query (K different photos); 5: GrabCut backdrops;
# 6: GrabCut started from the backdrop colour (long hair no longer certain backdrop); 7: MWF steps
# along the centred gradient (identical candidates no longer lose their weights in float32)
# Settings that change how fast, not what: left out of the key so a GPU run reuses a CPU run's cache.
NOT_IN_KEY = ("device", "batch")
# Settings added later, keyed only when they differ from their default (which gives the results
# of before they existed), so that earlier cache files stay valid.
KEY_IF_SET = {"features": ("intensity",), "feature_weights": ()}


def cache_key(target: PairedSplit, bank: PairedSplit, cfg: Stage1Config, leave_one_out: bool) -> str:
    """Hex key of everything the coarse sketches depend on."""
    settings = {
        f.name: getattr(cfg, f.name)
        for f in dataclasses.fields(cfg)
        if f.name not in NOT_IN_KEY and getattr(cfg, f.name) != KEY_IF_SET.get(f.name, object())
    }
    payload = {
        "version": ALGORITHM_VERSION,
        "bank": bank.fingerprint(),
        "target": target.fingerprint(),
        "stage1": settings,
        "leave_one_out": leave_one_out,
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _save_atomic(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array))


def cached_coarse(
    target: PreparedSplit, bank: PreparedSplit, cfg: Stage1Config, cache_dir: str | Path, leave_one_out: bool
) -> np.ndarray:
    """Coarse sketches of `target`'s photos from `bank`, computed once and then read from the cache.

    The key is the loaded splits' pixels and the settings (cfg.background among them), so a cache
    hit never runs the background model (`PreparedSplit.photos` is made on first use).

    Args:
        target: the photos to sketch, prepared with cfg.background.
        bank: the training pairs, prepared with cfg.background.
        cfg: stage-1 settings.
        cache_dir: folder of the cache files (created when missing).
        leave_one_out: a target id also found in the bank does not use its own pair.
    Returns:
        uint8 [N, H, W], one coarse sketch per target photo, in target order.
    """
    for prepared in (target, bank):
        if prepared.background != cfg.background:
            raise ValueError(
                f"photos prepared with background {prepared.background}, cfg has {cfg.background}"
            )
    path = Path(cache_dir) / f"coarse-{cache_key(target.split, bank.split, cfg, leave_one_out)}.npy"
    expected = (len(target), *target.split.photos.shape[1:3])
    if path.is_file():
        try:
            cached = np.load(path)
            if cached.dtype == np.uint8 and cached.shape == expected:
                return cached
        except (OSError, ValueError):
            pass  # unreadable (e.g. truncated by a crash before the atomic rename existed): recompute
    exclude = None
    if leave_one_out:
        where = {pid: i for i, pid in enumerate(bank.ids)}
        exclude = [where.get(pid) for pid in target.ids]
    result = coarse_sketches(bank.photos, bank.sketches, target.photos, cfg, exclude=exclude)
    _save_atomic(path, result)
    return result
