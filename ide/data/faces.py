"""Where the faces are: OpenCV's frontal-face Haar cascade run on turned copies of the photo.

The cascade fires only within about ±15° of upright, so it runs on copies turned by each of ANGLES;
detections of one face at several angles are merged and give the face's roll, and the eye cascades
give a first eye pair. `ide.data.align` refines those eyes on an upright copy. Uses the cascades
bundled with OpenCV 4.x (`cv2.data.haarcascades`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ide.errors import UserError

SEARCH_SIDE = 400  # faces are searched on a copy no larger than this: faster, and scale-independent
ANGLES = (0, -10, 10, -20, 20, -30, 30)  # rotations (degrees) of the face search
MAX_FACES = 4  # face clusters examined, best-scoring first
BOX_EYES = (0.28, 0.39, 0.72, 0.39)  # eye centres in a Haar face box, in box widths and heights
FACE_SIDE = 240  # eyes are searched in a face crop at least this wide


def face_starts(gray: np.ndarray) -> list[tuple[float, float, list]]:
    """Faces by a rotation search on a copy no larger than SEARCH_SIDE, each with first guesses of its
    eyes. The face cascade runs on copies turned by each of ANGLES; detections of one face at several
    angles are merged, and the eye cascades run in its best-scoring boxes (highest level weight).

    Returns per face (box width in image px, roll in degrees (`_angle`), starts), starts a list of (confirmed, (left, right)),
    eyes float64 [2] in image pixels: the eye pair found in a box (confirmed) and the eyes where a
    Haar face box puts them (BOX_EYES), which the refinement can still pull onto the eyes.
    Empty when the cascade finds no face at all.
    """
    zoom = min(1.0, SEARCH_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA) if zoom < 1 else gray
    clusters = _face_clusters(cv2.equalizeHist(small))
    if not clusters:
        return []
    faces = []
    for cluster in clusters[:MAX_FACES]:
        # the cascade fires within about ±15° of upright, so the face's roll is the middle of the angles
        # it fired at (the best-scoring angle is often one end); boxes nearest that angle come first
        angles = np.array([_angle(m) for _, _, _, m in cluster])
        weights = np.maximum([h[0] for h in cluster], 0.1)
        roll = float(np.average(angles, weights=weights))
        cluster = sorted(cluster, key=lambda h: abs(_angle(h[3]) - roll))
        starts = []
        for _, box, image, matrix in cluster[:2]:
            pair = _eyes_in(image, box)
            if pair is not None:
                starts.append((True, [np.add(e, box[:2]) for e in pair], matrix))
                break
        _, (x, y, w, h), _, matrix = cluster[0]
        guess = [(x + BOX_EYES[0] * w, y + BOX_EYES[1] * h), (x + BOX_EYES[2] * w, y + BOX_EYES[3] * h)]
        starts.append((False, guess, matrix))
        eyes = []
        for confirmed, pair, m in starts:
            back = cv2.invertAffineTransform(m)
            pair = sorted((np.array(unscale(apply(back, e), zoom)) for e in pair), key=lambda e: e[0])
            eyes.append((confirmed, pair))
        faces.append((w / zoom, roll, eyes))
    return faces


def _face_clusters(gray: np.ndarray) -> list[list]:
    """Face detections on rotated copies, grouped by face: clusters of (weight, box, rotated image,
    image→rotated matrix), best weight first within and across clusters."""
    side = min(gray.shape)
    for scale, neighbours in ((1.1, 5), (1.05, 3)):  # the looser pass only when the first finds nothing
        hits = []
        for angle in ANGLES:
            image, matrix = _rotated(gray, angle)
            boxes, _, weights = cascade("haarcascade_frontalface_default.xml").detectMultiScale3(
                image,
                scaleFactor=scale,
                minNeighbors=neighbours,
                minSize=(max(24, side // 8),) * 2,
                outputRejectLevels=True,
            )
            for box, weight in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights)):
                hits.append((float(weight), tuple(int(v) for v in box), image, matrix))
        if hits:
            break
    clusters: list[list] = []
    back = {id(h[3]): cv2.invertAffineTransform(h[3]) for h in hits}
    for hit in sorted(hits, key=lambda h: -h[0]):
        x, y, w, h = hit[1]
        centre = apply(back[id(hit[3])], (x + w / 2, y + h / 2))
        for cluster in clusters:
            ref_centre, ref_w = cluster[0][0], cluster[0][1]
            if np.hypot(*(centre - ref_centre)) < 0.5 * max(w, ref_w) and 0.5 < w / ref_w < 2:
                cluster[1].append(hit)
                break
        else:
            clusters.append(((centre, w), [hit]))
    return [members for _, members in clusters]


def _angle(matrix: np.ndarray) -> float:
    """Rotation (degrees, cv2's sense: counter-clockwise on screen) of an image→copy [2, 3] map; a face
    upright on that copy has its eye line at this angle in the image (y down)."""
    return float(np.degrees(np.arctan2(-matrix[1, 0], matrix[0, 0])))


def _rotated(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned by `angle` degrees (counter-clockwise on screen) on a canvas that holds all of
    it, edges replicated (no artificial border for the cascade), and the float64 [2, 3] image→copy map."""
    h, w = gray.shape
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    if angle == 0:
        return gray, matrix
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
    matrix[:, 2] += ((size[0] - w) / 2, (size[1] - h) / 2)
    return cv2.warpAffine(gray, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), matrix


def _eyes_in(gray: np.ndarray, box: tuple[int, int, int, int]):
    """The eye pair of one face box, in face-box pixels, or None."""
    x, y, w, h = box
    # eyes sit in the upper part of a Haar face box (the crop keeps nostrils and mouth out); small
    # faces are enlarged first, the eye cascades find little below ~20 px per eye
    top = gray[y : y + int(0.62 * h), x : x + w]
    up = max(1.0, FACE_SIDE / w)
    if up > 1:
        top = cv2.resize(top, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
    pair = _find_eyes(cv2.equalizeHist(top), round(w * up), round(h * up))
    return None if pair is None else (unscale(pair[0], up), unscale(pair[1], up))


def _find_eyes(face_gray: np.ndarray, w: int, h: int):
    """The best eye pair in a face crop, in crop pixels, or None. Passes go from strict to loose (plain
    eye cascade, then the eyeglasses one, then both with fewer neighbours), pooling candidates as
    (x centre, y centre, size), and stop at the first pass that yields an acceptable pair."""
    found: list[tuple[float, float, float]] = []
    passes = [
        (name, n) for n in (3, 2) for name in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
    ]
    for filename, neighbours in passes:
        boxes = cascade(filename).detectMultiScale(
            face_gray,
            scaleFactor=1.05,
            minNeighbors=neighbours,
            minSize=(max(8, w // 10),) * 2,
            maxSize=(w // 2,) * 2,
        )
        found += [
            (x + (s - 1) / 2, y + (t - 1) / 2, (s + t) / 2) for x, y, s, t in np.asarray(boxes).reshape(-1, 4)
        ]
        pair = _best_pair(found, w, h)
        if pair is not None:
            return pair
    return None


def _best_pair(cands: list[tuple[float, float, float]], w: int, h: int):
    """The most face-like eye pair in a face box of w x h: one eye each side of the centre, level,
    similar in size, symmetric, and where Haar face boxes put eyes (measured on CUFSF train photos:
    eye distance 0.37-0.50 w, eye height 0.31-0.46 h). None if no pair qualifies."""
    best, best_score = None, np.inf
    for i, a in enumerate(cands):
        for b in cands[i + 1 :]:
            left, right = (a, b) if a[0] < b[0] else (b, a)
            dx, dy = right[0] - left[0], right[1] - left[1]
            mid_x, mid_y = (left[0] + right[0]) / 2 / w, (left[1] + right[1]) / 2 / h
            if not (
                0.28 < dx / w < 0.6 and abs(dy) < 0.3 * dx and 0.2 < mid_y < 0.58 and abs(mid_x - 0.5) < 0.15
            ):
                continue
            score = abs(dy) / dx + 2 * abs(mid_x - 0.5) + abs(np.log(left[2] / right[2]))
            score += 2 * abs(dx / w - 0.435) + abs(mid_y - 0.39)
            if score < best_score:
                best, best_score = (left[:2], right[:2]), score
    return best


@lru_cache(maxsize=4)
def cascade(filename: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / filename
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise UserError(
            f"OpenCV cascade {path} is missing; install opencv-python-headless>=4.8,<5 (OpenCV 5 dropped them)"
        )
    return cascade


def unscale(point: np.ndarray, factor: float) -> tuple[float, float]:
    """Pixel coordinates on an image resized by `factor` → on the original (pixel centres match)."""
    x, y = (np.asarray(point, np.float64) + 0.5) / factor - 0.5
    return float(x), float(y)


def apply(matrix: np.ndarray, point) -> np.ndarray:
    """float64 [2] image of a point (x, y) under a [2, 3] affine map."""
    return matrix[:, :2] @ np.asarray(point, np.float64) + matrix[:, 2]
