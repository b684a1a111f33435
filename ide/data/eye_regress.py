"""Eyes refined by a cascade of linear regressors on HOG features, learned at run time from aligned photos.

Supervised descent (Xiong & De la Torre, CVPR 2013) for two points: the photo is warped so that
the current eye estimates land on the layout, HOG descriptors of a window about each layout eye are
read, and a ridge regression maps them to where the true eyes are in that frame; the estimates move
there and the next stage reads again. The stages are learned from photos already at a layout (their
eyes are known) with estimates scattered about the true eyes the way a detector misses them, so the
regressor needs no file beyond the photos the user names (`ide align --reference DIR`, or a
checkpoint's bank photos) and takes a few seconds to learn (docs/alignment.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ide.data.layout import CUFS_EYES, eye_transform

WINDOW = 48  # px side of the HOG window about each eye, in the layout frame (the eyes 52 px apart)
STAGES = 4
SAMPLES = 24  # scattered estimates per training photo (half of them on the mirrored photo)
SCATTER = 10.0  # px (layout frame): each training estimate lies within this radius of the true eye
ZOOM = 1.0  # the frame the features are read in: the layout times this
RIDGE = 0.1  # ridge penalty, relative to the mean diagonal of the features' Gram matrix
_HOG = None


def _hog() -> cv2.HOGDescriptor:
    global _HOG
    if _HOG is None:  # 48x48 window, 16 px blocks at an 8 px stride, 9 orientations: 900 values
        _HOG = cv2.HOGDescriptor((WINDOW, WINDOW), (16, 16), (8, 8), (8, 8), 9)
    return _HOG


@dataclass(frozen=True)
class EyeRegressor:
    """The learned stages: `weights[t]` float64 [F + 1, 4] maps a stage's features (and a bias) to the
    true eyes minus the layout's (x_l, y_l, x_r, y_r, px of the layout frame); `eyes` the layout."""

    weights: tuple[np.ndarray, ...]
    eyes: tuple[float, ...]
    zoom: float = ZOOM

    @property
    def frame(self) -> tuple[float, ...]:
        """The eyes in the frame the features are read in (the layout's times `zoom`)."""
        return tuple(self.zoom * e for e in self.eyes)


def _band(gray: np.ndarray, left, right, eyes: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The eye band of the layout frame seen from estimates (left, right) → (uint8 band, the image→frame
    matrix). The band spans both HOG windows: x from eyes[0] - WINDOW/2, y from eyes[1] - WINDOW/2."""
    matrix = eye_transform(left, right, eyes)
    scale = float(np.hypot(*matrix[:, 0]))
    source = cv2.GaussianBlur(gray, (0, 0), 0.5 * np.sqrt(1 / scale**2 - 1)) if scale < 1 else gray
    x0, y0 = eyes[0] - WINDOW / 2 + 0.5, min(eyes[1], eyes[3]) - WINDOW / 2 + 0.5
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    width = round(eyes[2] - eyes[0]) + WINDOW
    height = round(abs(eyes[3] - eyes[1])) + WINDOW
    band = cv2.warpAffine(
        source, shifted, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return band, matrix


def _features(band: np.ndarray, eyes: tuple[float, ...]) -> np.ndarray:
    """HOG of the two eye windows of a band (from `_band`) and a bias: float64 [F + 1]."""
    hog = _hog()
    top = min(eyes[1], eyes[3])
    parts = []
    for x, y in ((eyes[0], eyes[1]), (eyes[2], eyes[3])):
        c, r = round(x - eyes[0]), round(y - top)
        parts.append(hog.compute(np.ascontiguousarray(band[r : r + WINDOW, c : c + WINDOW])).ravel())
    return np.concatenate([*parts, [1.0]]).astype(np.float64)


def _step(gray, left, right, weights: np.ndarray, eyes) -> tuple[np.ndarray, np.ndarray]:
    band, matrix = _band(gray, left, right, eyes)
    frame = np.add(eyes, _features(band, eyes) @ weights).reshape(2, 2)
    back = cv2.invertAffineTransform(matrix)
    new = frame @ back[:, :2].T + back[:, 2]
    return new[0], new[1]


def regress_eyes(gray: np.ndarray, left, right, regressor: EyeRegressor) -> tuple[np.ndarray, np.ndarray]:
    """Eyes moved by every stage of `regressor`. `gray` uint8 [H, W]; `left`, `right` (x, y) pixel
    estimates in it → float64 [2] each."""
    left, right = np.asarray(left, np.float64), np.asarray(right, np.float64)
    for weights in regressor.weights:
        left, right = _step(gray, left, right, weights, regressor.frame)
    return left, right


def train_regressor(
    grays: np.ndarray,
    eyes: tuple[float, ...] = CUFS_EYES,
    stages: int = STAGES,
    samples: int = SAMPLES,
    scatter: float = SCATTER,
    ridge: float = RIDGE,
    seed: int = 0,
    zoom: float = ZOOM,
) -> EyeRegressor:
    """Learn the stages from aligned photos: uint8 [N, H, W] gray, eyes at `eyes`.

    Each photo (and its mirror image, whose eyes are the layout's mirrored) gets `samples` estimates,
    each eye uniform within `scatter` px of the truth; a stage is the ridge regression from the
    features at the estimates to the truth in their frame, and moves the estimates for the next.
    """
    grays = np.asarray(grays)
    rng = np.random.default_rng(seed)
    width = grays.shape[2]
    truth = np.reshape(eyes, (2, 2))
    mirrored = np.array([[width - 1 - truth[1, 0], truth[1, 1]], [width - 1 - truth[0, 0], truth[0, 1]]])
    images, truths, estimates = [], [], []
    for gray in grays:
        for flip in (False, True):
            image = np.ascontiguousarray(gray[:, ::-1]) if flip else gray
            true = mirrored if flip else truth
            for _ in range(samples // 2):
                radius = scatter * np.sqrt(rng.uniform(0, 1, 2))
                angle = rng.uniform(0, 2 * np.pi, 2)
                offset = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
                images.append(image)
                truths.append(true)
                estimates.append(true + offset)
    weights, layout = [], eyes
    eyes = tuple(zoom * e for e in layout)  # the features' frame
    frame_truth = np.reshape(eyes, (2, 2))
    for _ in range(stages):
        feats, targets, matrices = [], [], []
        for image, true, est in zip(images, truths, estimates):
            band, matrix = _band(image, est[0], est[1], eyes)
            feats.append(_features(band, eyes))
            in_frame = true @ matrix[:, :2].T + matrix[:, 2]
            targets.append((in_frame - frame_truth).ravel())
            matrices.append(matrix)
        phi, delta = np.array(feats), np.array(targets)
        gram = phi.T @ phi
        penalty = ridge * np.trace(gram) / len(gram) * np.eye(len(gram))
        w = np.linalg.solve(gram + penalty, phi.T @ delta)
        weights.append(w)
        moved = np.add(eyes, phi @ w).reshape(-1, 2, 2)
        for i, matrix in enumerate(matrices):
            back = cv2.invertAffineTransform(matrix)
            estimates[i] = moved[i] @ back[:, :2].T + back[:, 2]
    return EyeRegressor(tuple(weights), tuple(map(float, layout)), zoom)
