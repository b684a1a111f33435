"""A background model for stage 1: a dark, flat, border-connected photo background set to white.

The training photos of CUFS have light, plain backgrounds, and the sketches plain paper there; a
test photo with a dark backdrop (the XM2VTS test photos keep theirs, see BENCHMARKS.md) matches
dark hair patches instead and the coarse sketch fills its background with hair strokes. Here the
background is found by flood fill from the image border (top corners and the sides at mid-height)
within a fixed gray-level tolerance of each seed, on a median-filtered copy so that sensor noise
and JPEG blocks do not stop the fill, and is then blended to white (255) with a soft edge. Only
dark seeds (below DARK) start a fill: light and mid-gray backdrops are what the training photos
have already, and a mid-gray one can equal the skin tone, where a fill would leak into the face.
Bank and query photos get the same treatment, so the search compares like with like.
"""

from __future__ import annotations

import cv2
import numpy as np

DARK = 110  # gray level below which a border seed counts as a dark backdrop
MAX_SHARE = 0.75  # a fill that covers more than this share of the photo leaked into the face: ignored


def background_mask(gray: np.ndarray, tolerance: float) -> np.ndarray:
    """bool [H, W]: pixels of the border-connected region within ±tolerance gray levels of a dark seed.

    Args:
        gray: uint8 [H, W] photo. tolerance: gray levels (> 0).
    """
    h, w = gray.shape
    smooth = cv2.medianBlur(np.ascontiguousarray(gray), 5)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (255 << 8)
    for x, y in ((0, 0), (w - 1, 0), (0, h // 2), (w - 1, h // 2)):
        if mask[y + 1, x + 1] or smooth[y, x] >= DARK:
            continue
        seed_fill = np.zeros_like(mask)
        cv2.floodFill(smooth, seed_fill, (x, y), 0, tolerance, tolerance, flags)
        if seed_fill.mean() / 255 <= MAX_SHARE:
            mask |= seed_fill
    return mask[1:-1, 1:-1] > 0


def whiten_background(gray: np.ndarray, tolerance: float) -> np.ndarray:
    """uint8 [N, H, W] (or [H, W]) photos → the same with their background blended to white."""
    if gray.ndim == 3:
        return np.stack([whiten_background(g, tolerance) for g in gray]) if len(gray) else gray
    soft = cv2.GaussianBlur(background_mask(gray, tolerance).astype(np.float32), (0, 0), 1.5)
    return np.rint(gray * (1.0 - soft) + 255.0 * soft).astype(np.uint8)
