"""Eyes refined against a reference face: the mean of photos already at a layout.

The Haar eyes of `ide.data.align` scatter by about 1.7 px (x) about the true eyes. Given the mean
face of aligned photos (built at run time from a folder the user names, or from a checkpoint's
bank photos), `refine_eyes` fits that face's two eye windows to the photo by image alignment
(OpenCV's ECC) and moves the eyes to where the fit carries the reference's eyes
(docs/alignment.md; `bench/align.py --reference` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ide.data.faces import apply
from ide.data.io import is_image_file, read_image
from ide.data.layout import CUFS_EYES, eye_transform
from ide.errors import UserError

# refinement against a reference face (`refine_eyes`): each eye window of the mean face is half
# REFINE_WINDOW (in eye distances) wide and high about the eye; the photo is matched at REFINE_ZOOM
# times the reference's size. The guard reads the fit's ECC correlation coefficient cc (-1..1, over
# the two windows): a fit with cc below REFINE_MIN_CC is a failure; a refined eye may move up to
# REFINE_MAX_MOVE eye distances from the Haar eye (4 px of the CUFS layout's 52), or up to
# REFINE_SURE_MOVE (10 px) when cc is at least REFINE_SURE_CC; otherwise the Haar eyes are kept.
# Chosen on the CUFS training photos (each against the mean of the others), never the test photos.
REFINE_WINDOW = (0.35, 0.2)
REFINE_ZOOM = 2.0
REFINE_MAX_MOVE = 4.0 / 52.0
REFINE_SURE_MOVE = 10.0 / 52.0
REFINE_MIN_CC = 0.5
REFINE_SURE_CC = 0.7
REFINE_PAD = 20  # px of the zoomed upright copy around the reference frame: room for the fit to move


@dataclass(frozen=True)
class Reference:
    """A face at a layout to refine the eyes against: the mean gray of photos aligned to `eyes`.

    Build it with `reference_from_photos` (an array of aligned photos) or `load_reference` (a folder).
    `image` float32 [H, W]; `eyes` (x_left, y_left, x_right, y_right) where its eyes are.
    """

    image: np.ndarray
    eyes: tuple[float, ...]
    _fit: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        z, (wx, wy) = REFINE_ZOOM, REFINE_WINDOW
        d = (self.eyes[2] - self.eyes[0]) * z
        zoomed = cv2.resize(self.image, None, fx=z, fy=z, interpolation=cv2.INTER_LINEAR)
        centres = [((self.eyes[i] + 0.5) * z - 0.5, (self.eyes[i + 1] + 0.5) * z - 0.5) for i in (0, 2)]
        boxes = [
            (round(x - wx * d), round(y - wy * d), round(x + wx * d) + 1, round(y + wy * d) + 1)
            for x, y in centres
        ]
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        if x0 < 0 or y0 < 0 or x1 > zoomed.shape[1] or y1 > zoomed.shape[0]:
            raise UserError(
                f"the reference's eyes {self.eyes} are too near its {self.image.shape[1]}x"
                f"{self.image.shape[0]} edge; give photos aligned to that layout"
            )
        template = np.ascontiguousarray(zoomed[y0:y1, x0:x1], np.float32)
        mask = np.zeros(template.shape, np.uint8)
        for bx0, by0, bx1, by1 in boxes:
            mask[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = 255
        object.__setattr__(self, "_fit", (template, mask, (x0, y0), centres))


def reference_from_photos(photos: np.ndarray, eyes: tuple[float, ...] = CUFS_EYES) -> Reference:
    """The mean face of aligned photos: uint8 [N, H, W, 3] or [N, H, W], eyes at `eyes`."""
    photos = np.asarray(photos)
    if photos.ndim == 4:
        photos = np.stack([cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in photos])
    return Reference(photos.astype(np.float64).mean(0).astype(np.float32), tuple(map(float, eyes)))


def load_reference(folder: Path, eyes: tuple[float, ...] = CUFS_EYES) -> Reference:
    """`--reference DIR`: the mean of the aligned photos (png/jpg/jpeg/bmp, all one size) in a folder,
    whose eyes are at `eyes`. Raises UserError (one line) for a missing folder, no images, or photos
    of different sizes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--reference {folder} is not a folder; give a folder of aligned photos")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise UserError(
            f"--reference {folder} holds no png/jpg/jpeg/bmp photos; give a folder of aligned photos"
        )
    total = None
    for path in files:
        gray = read_image(path, "L").astype(np.float64)
        if total is None:
            total, first = np.zeros_like(gray), path
        if gray.shape != total.shape:
            raise UserError(
                f"--reference: {path} is {gray.shape[1]}x{gray.shape[0]}, {first} is {total.shape[1]}x"
                f"{total.shape[0]}; the reference photos must all be aligned to one layout"
            )
        total += gray
    return Reference((total / len(files)).astype(np.float32), tuple(map(float, eyes)))


def refine_eyes(gray: np.ndarray, left, right, reference: Reference) -> tuple[np.ndarray, np.ndarray, bool]:
    """Eyes refined by image alignment of the reference's two eye windows to the photo.

    The photo is warped so that the given eyes land on the reference's (REFINE_ZOOM times larger);
    `cv2.findTransformECCWithMask` fits an affine map of the eye band (only the two eye windows
    count) and the reference's eye centres carried through it give the new eyes, so the alignment
    from them is the similarity through those two points. The given eyes come back when ECC fails,
    when its correlation is below REFINE_MIN_CC, or when an eye moves more than REFINE_MAX_MOVE eye
    distances (REFINE_SURE_MOVE when the correlation is at least REFINE_SURE_CC).

    `gray` uint8/float [H, W]; `left`, `right` (x, y) pixel centres in it. Returns (left, right,
    refined): float64 [2] each, and whether the fit was taken.
    """
    template, mask, (x0, y0), centres = reference._fit
    height, width = reference.image.shape
    z, pad = REFINE_ZOOM, REFINE_PAD
    target = tuple(z * e + (z - 1) / 2 + pad for e in reference.eyes)  # pixel centres of the zoomed copy
    matrix = eye_transform(left, right, target)
    scale = float(np.hypot(*matrix[:, 0]))
    source = cv2.GaussianBlur(gray, (0, 0), 0.5 * np.sqrt(1 / scale**2 - 1)) if scale < 1 else gray
    upright = cv2.warpAffine(
        source,
        matrix,
        (round(z * width) + 2 * pad, round(z * height) + 2 * pad),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    warp = np.array([[1, 0, x0 + pad], [0, 1, y0 + pad]], np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    given = np.asarray(left, np.float64), np.asarray(right, np.float64)
    try:
        cc, warp = cv2.findTransformECCWithMask(
            template,
            upright,
            mask,
            np.full(upright.shape, 255, np.uint8),
            warp,
            cv2.MOTION_AFFINE,
            criteria,
            5,
        )
    except cv2.error:  # no convergence
        return *given, None
    fitted = [warp.astype(np.float64) @ (cx - x0, cy - y0, 1.0) for cx, cy in centres]
    moved = max(np.hypot(*(f - t)) for f, t in zip(fitted, (target[:2], target[2:])))
    limit = REFINE_SURE_MOVE if cc >= REFINE_SURE_CC else REFINE_MAX_MOVE
    if cc < REFINE_MIN_CC or not np.isfinite(moved) or moved > limit * (target[2] - target[0]):
        return *given, None
    back = cv2.invertAffineTransform(matrix)
    return apply(back, fitted[0]), apply(back, fitted[1]), float(cc)
