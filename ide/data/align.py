"""Face alignment to the CUFS layout: Haar face and eye detection, then a similarity warp to 200x250.

The eye centres land on (75,125) and (127,125) (52 px apart), the CUFS layout, so stage 1's patch
search (which looks only ±5 px around each patch position) sees faces where it expects them.
Detection uses the cascades bundled with OpenCV 4.x (`cv2.data.haarcascades`).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ide.data.folders import HEIGHT, WIDTH
from ide.data.io import is_image_file, read_image, write_png
from ide.errors import UserError

LEFT_EYE, RIGHT_EYE = (75.0, 125.0), (127.0, 125.0)  # targets in the aligned 200x250 image
# Eye centres (x_left, y_left, x_right, y_right) of the datasets' 200x250 layouts (medians of detections).
LAYOUTS = {"cufs": (75.0, 125.0, 127.0, 125.0), "cufsf": (62.0, 112.0, 137.0, 112.0)}
DETECT_SIDE = 800  # faces are searched on a copy no larger than this: faster, and scale-independent
FACE_SIDE = 240  # eyes are searched in a face crop at least this wide
_LAYOUT_HINT = (
    "use a frontal, upright photo of one face, or align it yourself (eyes at (75,125) and (127,125))"
)


class AlignError(UserError):
    """A photo that cannot be aligned: no face, several faces, or no pair of eyes. Names the file."""


@lru_cache(maxsize=4)
def _cascade(filename: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / filename
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise UserError(
            f"OpenCV cascade {path} is missing; install opencv-python-headless>=4.8,<5 (OpenCV 5 dropped them)"
        )
    return cascade


def _gray(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        return rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _find_faces(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h), largest first; boxes under half the width of the largest are dropped
    as background. A looser second pass runs only when the first finds nothing."""
    side = min(gray.shape)
    for scale, neighbours in ((1.1, 5), (1.05, 3)):
        faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
            gray, scaleFactor=scale, minNeighbors=neighbours, minSize=(max(24, side // 8),) * 2
        )
        if len(faces):
            faces = sorted((tuple(int(v) for v in f) for f in faces), key=lambda f: -f[2])
            return [f for f in faces if f[2] >= faces[0][2] / 2]
    return []


def _find_eyes(face_gray: np.ndarray, w: int, h: int):
    """The best eye pair in a face crop, in crop pixels, or None. Passes go from strict to loose (plain
    eye cascade, then the eyeglasses one, then both with fewer neighbours), pooling candidates as
    (x centre, y centre, size), and stop at the first pass that yields an acceptable pair."""
    found: list[tuple[float, float, float]] = []
    passes = [
        (name, n) for n in (3, 2) for name in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
    ]
    for filename, neighbours in passes:
        boxes = _cascade(filename).detectMultiScale(
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


def detect_eyes(rgb: np.ndarray, name: str = "photo") -> tuple[tuple[float, float], tuple[float, float]]:
    """Eye centres ((x_left, y_left), (x_right, y_right)) in image pixels, left = smaller x.

    Args:
        rgb: uint8 [H, W, 3] (or gray [H, W]) photo.
        name: the file, for the error message.
    Raises:
        AlignError: no face, several faces, or no acceptable pair of eyes in the face.
    """
    gray = _gray(rgb)
    zoom = min(1.0, DETECT_SIDE / max(gray.shape))
    if zoom < 1:
        gray = cv2.resize(gray, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    faces = _find_faces(gray)
    if not faces:
        raise AlignError(f"no face found in {name}; {_LAYOUT_HINT}")
    # a face box without a pair of eyes is taken for a false detection (Haar finds "faces" in textures)
    found = [(box, pair) for box in faces if (pair := _eyes_in(gray, box)) is not None]
    if not found:
        raise AlignError(f"found a face but not two eyes in {name}; {_LAYOUT_HINT}")
    if len(found) > 1:
        raise AlignError(f"{len(found)} faces found in {name}; crop the photo to one face")
    (x, y, _, _), (left, right) = found[0]
    return _unscale(np.add(left, (x, y)), zoom), _unscale(np.add(right, (x, y)), zoom)


def _unscale(point: np.ndarray, factor: float) -> tuple[float, float]:
    """Pixel coordinates on an image resized by `factor` → on the original (pixel centres match)."""
    x, y = (np.asarray(point, np.float64) + 0.5) / factor - 0.5
    return float(x), float(y)


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
    return None if pair is None else (_unscale(pair[0], up), _unscale(pair[1], up))


def eye_transform(
    left: tuple[float, float], right: tuple[float, float], eyes: tuple[float, ...] = LAYOUTS["cufs"]
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


def align_face(
    rgb: np.ndarray,
    name: str = "photo",
    return_matrix: bool = False,
    eyes: tuple[float, ...] = LAYOUTS["cufs"],
):
    """Detect the eyes and warp to the 200x250 layout. uint8 [H, W, 3] (or [H, W]) → uint8 [250, 200, 3].

    `eyes`: the target eye centres (x_left, y_left, x_right, y_right), e.g. `LAYOUTS["cufsf"]`.
    Outside the photo the border is white (255). With return_matrix, returns (aligned, M) where M is the
    float64 [2, 3] matrix mapping input pixel coordinates to aligned ones.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    left, right = detect_eyes(rgb, name)
    matrix = eye_transform(left, right, eyes)
    scale = float(np.hypot(*matrix[:, 0]))
    sigma = 0.5 * np.sqrt(1 / scale**2 - 1) if scale < 1 else 0.0  # low-pass before shrinking (no aliasing)
    # work on the part of the photo the output needs (plus the blur's reach): big photos stay cheap
    corners = np.array([[0, 0], [WIDTH - 1, 0], [0, HEIGHT - 1], [WIDTH - 1, HEIGHT - 1]], np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    src_corners = corners @ inverse[:, :2].T + inverse[:, 2]
    pad = int(np.ceil(3 * sigma)) + 3
    x0, y0 = np.maximum(np.floor(src_corners.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(src_corners.max(0)).astype(int) + pad + 1, [rgb.shape[1], rgb.shape[0]])
    src = rgb[y0:y1, x0:x1] if x1 > x0 and y1 > y0 else rgb[:1, :1]
    if sigma > 0:
        src = cv2.GaussianBlur(src, (0, 0), sigma)
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    aligned = cv2.warpAffine(
        src,
        shifted,
        (WIDTH, HEIGHT),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(255, 255, 255),
    )
    return (aligned, matrix) if return_matrix else aligned


def align_path(photos: Path, out: Path, eyes: tuple[float, ...] = LAYOUTS["cufs"]) -> int:
    """`ide align`: align one photo or every image in a folder into OUT/<stem>.png.

    Photos that fail are reported at the end and the rest are still written. Non-image files in a
    folder are skipped and reported. Returns the exit code: 2 if any photo failed, else 0.
    """
    photos, out = Path(photos), Path(out)
    if photos.is_dir():
        entries = sorted(p for p in photos.iterdir() if p.is_file() and not p.name.startswith("."))
        files = [p for p in entries if is_image_file(p)]
        for p in entries:
            if not is_image_file(p):
                print(f"ide align: skipped {p} (not a png/jpg/jpeg/bmp image)", file=sys.stderr)
        if not files:
            raise UserError(f"no images in {photos}; give a folder of png/jpg/jpeg/bmp photos or one photo")
    elif photos.is_file():
        files = [photos]
    else:
        raise UserError(f"--photos {photos} not found; give a photo or a folder of photos")
    failed: list[tuple[Path, str]] = []
    written: dict[str, Path] = {}
    for path in _progress(files):
        try:
            if path.stem in written:
                raise UserError(f"{path} has the same stem as {written[path.stem]}; rename one of them")
            aligned = align_face(read_image(path, "RGB"), name=str(path), eyes=eyes)
            write_png(out / f"{path.stem}.png", aligned)
            written[path.stem] = path
        except UserError as err:
            failed.append((path, str(err)))
            print(f"ide align: error: {err}", file=sys.stderr)
    print(f"ide align: aligned {len(written)} of {len(files)} photos into {out}", file=sys.stderr)
    if failed:
        print(f"ide align: {len(failed)} failed: " + ", ".join(str(p) for p, _ in failed), file=sys.stderr)
        return 2
    return 0


def _progress(files: list[Path]):
    if len(files) < 20:
        return files
    from tqdm import tqdm

    return tqdm(files, desc="align", unit="photo")
