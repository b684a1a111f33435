"""The eye layouts of the aligned 200x250 datasets: the one place these numbers live.

Each is the eye centres (x_left, y_left, x_right, y_right) in pixels of the 200x250 (W x H) image,
left = smaller x. CUFS photos and sketches put the eyes at (75,125) and (127,125), 52 px apart;
CUFSF's sit higher and wider apart (75 px).
"""

from __future__ import annotations

import numpy as np

CUFS_EYES: tuple[float, float, float, float] = (75.0, 125.0, 127.0, 125.0)
CUFSF_EYES: tuple[float, float, float, float] = (62.0, 112.0, 137.0, 112.0)
LAYOUTS: dict[str, tuple[float, float, float, float]] = {"cufs": CUFS_EYES, "cufsf": CUFSF_EYES}


def eye_transform(
    left: tuple[float, float], right: tuple[float, float], eyes: tuple[float, ...] = CUFS_EYES
) -> np.ndarray:
    """float64 [2, 3] similarity (rotation, uniform scale, shift) taking left → eyes[:2], right → eyes[2:]
    (default the CUFS layout (75,125), (127,125))."""
    target_left, target_right = np.asarray(eyes[:2], np.float64), np.asarray(eyes[2:], np.float64)
    src = np.subtract(right, left).astype(np.float64)
    dst = target_right - target_left
    scale = np.hypot(*dst) / max(np.hypot(*src), 1e-9)
    angle = np.arctan2(dst[1], dst[0]) - np.arctan2(src[1], src[0])
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    rot = np.array([[a, -b], [b, a]])
    shift = target_left - rot @ np.asarray(left, np.float64)
    return np.concatenate([rot, shift[:, None]], axis=1)
