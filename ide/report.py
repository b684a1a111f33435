"""Pictures for people: image grids of sketches side by side (validation samples, `ide test`, demo)."""

from __future__ import annotations

import numpy as np


def image_grid(columns: list[np.ndarray], n: int, gap: int = 2) -> np.ndarray:
    """Rows of up to `n` samples, one column per uint8 [N,H,W] array, white gaps between.

    All columns share H and W. Returns uint8 [rows·(H+gap) - gap, cols·(W+gap) - gap]."""
    n = min(n, columns[0].shape[0])
    h, w = columns[0].shape[1:3]
    grid = np.full((n * (h + gap) - gap, len(columns) * (w + gap) - gap), 255, np.uint8)
    for r in range(n):
        for c, col in enumerate(columns):
            grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = col[r]
    return grid
