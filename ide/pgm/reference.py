"""A plain reference of the stage-1 search, written for clarity, not speed (numpy, float64).

For every grid patch of a photo: every bank photo, every top-left corner within ±search pixels
of the same position, the squared distance of the normalised patches; the K smallest, ties by
the brightness difference |Σq - Σb|, then by the squared offset from the query's position, then by
the smaller flat index n·H·W + y·W + x (so tied flat patches come from different training photos).
`ide.pgm.search.knn_search` must return the same (tests and `bench/stage1.py` check it).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ide.pgm.grid import positions


def normalise(x: np.ndarray, norm: str, floor: float, brightness: float) -> np.ndarray:
    """x: float64 [..., d] → none: x; mean: x - mean + sqrt(brightness)·mean;
    meanstd: (x - mean) / sqrt(var + floor²)."""
    if norm == "none":
        return x
    c = x - x.mean(-1, keepdims=True)
    if norm == "mean":
        return c + np.sqrt(brightness) * x.mean(-1, keepdims=True)
    return c / np.sqrt((c * c).mean(-1, keepdims=True) + floor * floor)


def reference_knn(
    bank: np.ndarray,
    photo: np.ndarray,
    patch: int,
    step: int,
    search: int,
    k: int,
    norm: str,
    floor: float,
    brightness: float = 0.0,
    exclude: int | None = None,
    feats: tuple | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """bank uint8 [N, H, W], photo uint8 [H, W] → (index int64 [P, K], dist float64 [P, K]), P in row-major
    grid order. `exclude`: a bank photo the photo must not use (None or -1: none).

    feats: None, or (bank maps int [C, N, H, W], photo maps int [C, H, W], coef [C], stride) of
    `ide.pgm.features`: the distance adds Σ_c coef_c ||F_c(q) - F_c(b)||² over the feature patches
    sampled every stride pixels."""
    n, h, w = bank.shape
    d = patch * patch
    out_index, out_dist = [], []
    for y0 in positions(h, patch, step):
        for x0 in positions(w, patch, step):
            raw = photo[y0 : y0 + patch, x0 : x0 + patch].astype(np.float64).reshape(d)
            query = normalise(raw, norm, floor, brightness)
            y_lo, y_hi = max(0, y0 - search), min(h - patch, y0 + search)
            x_lo, x_hi = max(0, x0 - search), min(w - patch, x0 + search)
            region = bank[:, y_lo : y_hi + patch, x_lo : x_hi + patch].astype(np.float64)
            windows = sliding_window_view(region, (patch, patch), axis=(1, 2))  # [N, ny, nx, p, p]
            cands_raw = windows.reshape(*windows.shape[:3], d)
            cands = normalise(cands_raw, norm, floor, brightness)
            dist = ((cands - query) ** 2).sum(-1)  # [N, ny, nx]
            nn, yy, xx = np.meshgrid(
                np.arange(n), np.arange(y_lo, y_hi + 1), np.arange(x_lo, x_hi + 1), indexing="ij"
            )
            index = nn * h * w + yy * w + xx
            # Equal distances computed in different orders differ in the last bits; rounding to 1e-6
            # makes them tie, as they do exactly (none/mean distances are multiples of 1/d²).
            dist = np.round(dist, 6)
            for c, wt in enumerate(feats[2] if feats is not None else ()):
                fmaps, fphoto, s = feats[0][c], feats[1][c], feats[3]
                fq = fphoto[y0 : y0 + patch : s, x0 : x0 + patch : s].astype(np.float64)
                fregion = fmaps[:, y_lo : y_hi + patch, x_lo : x_hi + patch].astype(np.float64)
                fwin = sliding_window_view(fregion, (patch, patch), axis=(1, 2))[..., ::s, ::s]
                dist = dist + wt * ((fwin - fq) ** 2).sum((-1, -2))
            if exclude is not None and exclude >= 0:  # -1 or None: no photo left out
                dist[exclude] = np.inf
            tie = np.abs(raw.sum() - cands_raw.sum(-1))
            off2 = (yy - y0) ** 2 + (xx - x0) ** 2
            order = np.lexsort((index.ravel(), off2.ravel(), tie.ravel(), dist.ravel()))[:k]  # distance first
            out_index.append(index.ravel()[order])
            out_dist.append(dist.ravel()[order])
    return np.stack(out_index), np.stack(out_dist)
