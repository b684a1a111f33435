"""Sharpness as a number: the mean absolute Laplacian of a sketch, against the artist's.

Stage 1 averages candidate patches and blurs; an artist's sketch is full of fine strokes. The mean
of |∇²I| (OpenCV's 3x3 Laplacian, kernel [[0,1,0],[1,-4,1],[0,1,0]], on gray levels 0-255) measures
that high-frequency energy. `ide metrics` reports it per image and, per folder and subset, as the
ratio of the synthesized sketches' total to the artists' on the same ids: 1 is the artists' level,
below 1 blur, above 1 more high-frequency content than they drew (grain, ringing, texture). It
measures energy, not whether the energy lies on the artist's strokes: read it beside FSIM.
"""

from __future__ import annotations

import cv2
import numpy as np


def laplacian_energy(gray: np.ndarray) -> float:
    """Mean absolute 3x3 Laplacian of a uint8 (or float, 0-255) [H, W] image, in gray levels."""
    return float(np.abs(cv2.Laplacian(np.asarray(gray, np.float64), cv2.CV_64F, ksize=1)).mean())
