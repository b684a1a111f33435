"""A background model for stage 1: a dark photo backdrop set to white.

Only photos whose top strip is dark (`dark_backdrop`) are touched. The training photos of CUFS have light, plain backgrounds, and the sketches plain paper there; a
test photo with a dark backdrop (the XM2VTS test photos keep theirs, datasets/README.md) matches
dark hair patches instead and the coarse sketch fills its background with hair strokes. On gray
photos the backdrop is found by flood fill from the image border (top corners and the sides at mid-height)
within a fixed gray-level tolerance of each seed, on a median-filtered copy so that sensor noise
and JPEG blocks do not stop the fill, and is then blended to white (255) with a soft edge. Only
dark seeds (below DARK) start a fill: light and mid-gray backdrops are what the training photos
have already, and a mid-gray one can equal the skin tone, where a fill would leak into the face.
Bank and query photos get the same treatment, so the search compares like with like.

Colour photos with a dark backdrop go to OpenCV's GrabCut instead (`grabcut_mask`): a gray-level
fill cannot tell dark hair from a dark backdrop, nor reach past the black wedges that an earlier
rotation left along the border (the XM2VTS test photos have both), while the colour models of
GrabCut separate a blue backdrop from brown or black hair. Light backdrops are left as they are.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from ide.data.io import is_gray, to_gray

DARK = 110  # gray level below which a border seed counts as a dark backdrop
MAX_SHARE = 0.75  # a fill that covers more than this share of the photo leaked into the face: ignored
INSET_X, INSET_TOP = 0.06, 0.06  # GrabCut's foreground box: the photo less these shares of its
# width at the sides and of its height at the top (hair comes close to it; shoulders reach the bottom)
GRABCUT_ITERS = 2  # more changed the cut little; half resolution, though faster, lost long dark hair
WEDGE = 24  # outside GrabCut's box, pixels darker than this in every channel are a rotation wedge
BACKDROP_TOL = 45.0  # RGB distance from the backdrop's colour within which a pixel outside the box is
# certain backdrop (30 / 45 / 60: backdrop IoU 0.948 / 0.965 / 0.960 in bench/backdrop_val.py)


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


def dark_backdrop(gray: np.ndarray) -> bool:
    """True when the top strip of the photo (the top tenth, rotation wedges left out) has a median
    gray level below DARK: a dark backdrop. The sides are not asked: dark hair reaches them."""
    top = gray[: max(4, gray.shape[0] // 10)]
    values = top[top >= WEDGE]
    return float(np.median(values if values.size > top.size // 4 else top)) < DARK


def grabcut_mask(rgb: np.ndarray) -> np.ndarray:
    """bool [H, W]: the backdrop of a colour photo uint8 [H, W, 3] by GrabCut (OpenCV).

    The backdrop's colour is the median of the top strip (rotation wedges left out). GrabCut starts
    from a mask: outside a box (INSET_X, INSET_TOP) the pixels within BACKDROP_TOL of that colour
    are certain backdrop, the other pixels there (long hair, shoulders reaching the border) and the
    whole box probable foreground. Marking all of the outside as backdrop, as GrabCut's rectangle
    start does, put long dark hair into the backdrop's colour model and cut it away with the
    backdrop (`bench/backdrop_val.py`: IoU 0.904 → 0.965). Deterministic (fixed RNG seed). An empty
    mask when the backdrop found is larger than MAX_SHARE (the cut failed).
    """
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    h, w = bgr.shape[:2]
    mx, my = round(INSET_X * w), round(INSET_TOP * h)
    outside = np.ones((h, w), bool)
    outside[my:, mx : w - mx] = False
    top = bgr[: max(4, h // 10)].reshape(-1, 3)
    lit = top.max(-1) >= WEDGE
    backdrop = np.median(top[lit] if lit.sum() > len(top) // 4 else top, axis=0)
    # Black rotation wedges lie outside the box: left there they would teach the backdrop model that
    # black is backdrop, and black hair would follow. They get the backdrop's colour instead.
    black = outside & (bgr.max(-1) < WEDGE)
    if black.any():
        bgr = bgr.copy()
        bgr[black] = backdrop.astype(np.uint8)
    near = np.linalg.norm(bgr.astype(np.float32) - backdrop.astype(np.float32), axis=-1) < BACKDROP_TOL
    mask = np.full((h, w), cv2.GC_PR_FGD, np.uint8)
    mask[outside & near] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, mask, None, bgd, fgd, GRABCUT_ITERS, cv2.GC_INIT_WITH_MASK)
    back = (mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)
    return back if back.mean() <= MAX_SHARE else np.zeros_like(back)


def _blend_white(gray: np.ndarray, back: np.ndarray) -> np.ndarray:
    """gray uint8 [H, W] with the pixels of `back` blended to white, soft-edged (σ 1.5 px)."""
    soft = cv2.GaussianBlur(back.astype(np.float32), (0, 0), 1.5)
    return np.rint(gray * (1.0 - soft) + 255.0 * soft).astype(np.uint8)


def whiten_background(photos: np.ndarray, tolerance: float) -> np.ndarray:
    """Photos with their backdrop blended to white, as gray uint8 [N, H, W] (or [H, W]).

    Args:
        photos: uint8 gray [N, H, W] / [H, W] or RGB [N, H, W, 3] / [H, W, 3]. Only photos with a
            dark backdrop (`dark_backdrop`) change: GrabCut on colour photos, flood fill within
            ±tolerance of a dark border seed on gray ones (and on RGB files whose channels are equal).
        tolerance: flood-fill tolerance in gray levels (> 0).
    """
    single = photos.ndim == 2 or (photos.ndim == 3 and photos.shape[-1] == 3)
    batch = photos[None] if single else photos

    def one(photo: np.ndarray) -> np.ndarray:
        gray = to_gray(photo)
        if not dark_backdrop(gray):
            return gray
        if is_gray(photo):
            return _blend_white(gray, background_mask(gray, tolerance))
        return _blend_white(gray, grabcut_mask(photo))

    # OpenCV releases the GIL: photos in parallel threads (GrabCut itself is single-threaded).
    with ThreadPoolExecutor(max_workers=max(1, min(len(batch), torch.get_num_threads()))) as pool:
        out = np.stack(list(pool.map(one, batch))) if len(batch) else np.zeros(batch.shape[:3], np.uint8)
    return out[0] if single else out
