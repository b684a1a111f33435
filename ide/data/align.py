"""Face alignment to the CUFS layout: Haar face and eye detection, then a similarity warp to 200x250.

The eye centres land on (75,125) and (127,125) (52 px apart), the CUFS layout, so stage 1's patch
search (which looks only ±5 px around each patch position) sees faces where it expects them.
`ide.data.faces` finds the face at any roll to ±30° and first eyes; here the eyes are re-detected on
an upright copy at a fixed eye distance and the calibrated eye-box offset is added. Given a
`Reference` (the mean of photos already at a layout, built at run time from a folder the user
names), `refine_eyes` then fits the eye windows of that mean face to the photo by image alignment
(docs/alignment.md; `bench/align.py` measures it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from ide.data.eye_refine import Reference, load_reference, refine_eyes
from ide.data.faces import apply, cascade, face_starts, unscale
from ide.data.folders import HEIGHT, WIDTH
from ide.data.io import is_image_file, read_image, write_png
from ide.data.layout import CUFS_EYES, LAYOUTS, eye_transform  # noqa: F401 (re-exported: `ide align --layout`, callers)
from ide.errors import UserError

MAX_TILT = 20.0  # degrees an eye line may turn from the roll the face cascade saw
MERGE = 0.15  # eye boxes this close (in eye distances) to the chosen one are averaged with it
# worst `_pair_cost` of an eye pair on the upright copy that confirms a face box: CUFS training faces
# end at most 0.16, the false faces of skimage's coins image at 0.4 and more
MAX_PAIR_COST = 0.25
REFINE_STEPS = 2  # eye re-detections on the upright copy
REFINE_EYE_DIST = 100.0  # eye distance (px) of the upright copy the eyes are re-detected on
# eye centre minus Haar eye-box centre on that copy, in eye distances (x_l, y_l, x_r, y_r);
# measured on the CUFS training photos by `python bench/align.py --calibrate`
CALIBRATION = (0.0334, -0.0095, 0.0438, -0.0114)
_LAYOUT_HINT = (
    "use a frontal photo of one face, or align it yourself (eyes at ({:g},{:g}) and ({:g},{:g}))".format(
        *CUFS_EYES
    )
)


class AlignError(UserError):
    """A photo that cannot be aligned: no face, several faces, or no pair of eyes. Names the file."""


def _gray(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        return rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def detect_eyes(
    rgb: np.ndarray,
    name: str = "photo",
    calibration: tuple[float, ...] = CALIBRATION,
    reference: Reference | None = None,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Eye centres ((x_left, y_left), (x_right, y_right)) in image pixels, left = smaller x.

    A rotation search finds the face and a first eye pair (`_coarse_eyes`); then the eyes are
    re-detected twice on a copy warped upright to a fixed eye distance, where the Haar eye boxes'
    offset from the true eye centre is the same for every face and `calibration` removes it.

    Args:
        rgb: uint8 [H, W, 3] (or gray [H, W]) photo.
        name: the file, for the error message.
        calibration: (dx_left, dy_left, dx_right, dy_right), eye centre minus eye-box centre in units
            of the eye distance on the upright copy; zeros give the raw box centres (bench/align.py
            --calibrate measures it on the CUFS training photos).
        reference: a mean face (`Reference`); the Haar eyes are then refined against it
            (`refine_eyes`). None: the Haar eyes.
    Raises:
        AlignError: no face, several faces, or no acceptable pair of eyes in the face.
    """
    gray = _gray(np.asarray(rgb))
    found = face_starts(gray)
    if not found:
        raise AlignError(f"no face found in {name}; {_LAYOUT_HINT}")
    faces = []
    for width, roll, starts in found:
        best = None
        for confirmed, (left, right) in starts:
            for _ in range(REFINE_STEPS):
                left, right, seen, cost = _refine(gray, left, right, calibration)
            # a start counts when the upright copy shows both eyes as a pair, or its eyes were found in the
            # face box already (a face box with neither is taken for a texture that fooled the cascade), and
            # when its eye line follows the face's roll (not an eye and a nostril, say)
            tilt = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
            if (confirmed or cost < MAX_PAIR_COST) and abs(tilt - roll) < MAX_TILT:
                rank = (-seen, cost)
                if best is None or rank < best[0]:
                    best = (rank, left, right)
        if best is not None:
            faces.append((width, best[1], best[2]))
    faces = [f for f in faces if f[0] >= max(f[0] for f in faces) / 2] if faces else []  # smaller: background
    if not faces:
        raise AlignError(f"found a face but not two eyes in {name}; {_LAYOUT_HINT}")
    if len(faces) > 1:
        raise AlignError(f"{len(faces)} faces found in {name}; crop the photo to one face")
    _, left, right = faces[0]
    if reference is not None:
        left, right, _ = refine_eyes(gray, left, right, reference)
    return tuple(map(float, left)), tuple(map(float, right))


def _refine(gray: np.ndarray, left, right, calibration) -> tuple[np.ndarray, np.ndarray, int, float]:
    """One refinement: warp the eye band upright with the eyes REFINE_EYE_DIST px apart, take per side
    the eye box nearest where the eye should be, add the calibration, map back. An eye whose box is
    not found keeps its estimate. Returns (left, right, how many of the two eyes were seen, the
    pair's cost (`_pair_cost`, inf unless both were seen))."""
    d = REFINE_EYE_DIST
    target = (0.6 * d, 0.6 * d, 1.6 * d, 0.6 * d)  # eyes in a 2.2d x 1.2d band
    matrix = eye_transform(left, right, target)
    scale = float(np.hypot(*matrix[:, 0]))
    source = gray
    while scale < 0.5:  # shrinking a lot: halve first (no aliasing)
        source, scale = cv2.pyrDown(source), scale * 2
    factor = source.shape[0] / gray.shape[0]
    matrix = eye_transform(*((np.asarray(e) + 0.5) * factor - 0.5 for e in (left, right)), target)
    band = cv2.warpAffine(
        source,
        matrix,
        (round(2.2 * d), round(1.2 * d)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    band = cv2.equalizeHist(band)
    boxes = []
    for filename in ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml"):
        found = cascade(filename).detectMultiScale(
            band,
            scaleFactor=1.05,
            minNeighbors=3,
            minSize=(round(0.25 * d),) * 2,
            maxSize=(round(0.8 * d),) * 2,
        )
        boxes += [(x + (s - 1) / 2, y + (t - 1) / 2, s) for x, y, s, t in np.reshape(found, (-1, 4))]
    sides = []
    for i in range(2):
        expected = np.array(target[2 * i : 2 * i + 2])
        sides.append([np.array(b) for b in boxes if np.hypot(*(np.array(b[:2]) - expected)) < 0.35 * d])
    chosen = _band_pair(sides, d)
    back = cv2.invertAffineTransform(matrix)
    eyes = []
    for i, estimate in enumerate((left, right)):
        if chosen[i] is None:
            eyes.append(np.asarray(estimate, np.float64))
            continue
        # the boxes of both cascades around the chosen one agree to a pixel or two: their mean is steadier
        centre = np.mean([b[:2] for b in sides[i] if np.hypot(*(b[:2] - chosen[i][:2])) < MERGE * d], axis=0)
        centre = centre + np.array(calibration[2 * i : 2 * i + 2]) * d
        eyes.append(np.array(unscale(apply(back, centre), factor)))
    cost = _pair_cost(*chosen, d) if all(c is not None for c in chosen) else np.inf
    return eyes[0], eyes[1], sum(c is not None for c in chosen), cost


def _band_pair(sides: list[list[np.ndarray]], d: float) -> list:
    """The left and right eye boxes (x centre, y centre, size) of the upright band that best form a
    pair: level, d apart, centred, similar in size; a box eyebrow or a nostril makes a worse pair than
    the eye. With boxes on one side only, the one nearest its expected place; None where none."""
    expected = [np.array((0.6 * d, 0.6 * d)), np.array((1.6 * d, 0.6 * d))]
    if not sides[0] or not sides[1]:
        return [min(s, key=lambda b: np.hypot(*(b[:2] - e))) if s else None for s, e in zip(sides, expected)]

    return list(min(((a, b) for a in sides[0] for b in sides[1]), key=lambda p: _pair_cost(*p, d)))


def _pair_cost(a: np.ndarray, b: np.ndarray, d: float) -> float:
    """How unlike an eye pair two band boxes (x, y, size) are: tilt, distance off d, centre off the
    band's, size mismatch. 0 for the expected pair."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    mid = (a[:2] + b[:2]) / 2 - (1.1 * d, 0.6 * d)
    return abs(dy) / d + abs(dx / d - 1) + 0.5 * np.hypot(*mid) / d + 0.5 * abs(np.log(a[2] / b[2]))


def align_face(
    rgb: np.ndarray,
    name: str = "photo",
    return_matrix: bool = False,
    eyes: tuple[float, ...] = CUFS_EYES,
    reference: Reference | None = None,
):
    """Detect the eyes and warp to the 200x250 layout. uint8 [H, W, 3] (or [H, W]) → uint8 [250, 200, 3].

    `eyes`: the target eye centres (x_left, y_left, x_right, y_right), e.g. `LAYOUTS["cufsf"]`.
    Outside the photo the border is white (255). With return_matrix, returns (aligned, M) where M is the
    float64 [2, 3] matrix mapping input pixel coordinates to aligned ones. `reference`: refine the
    eyes against this mean face (`detect_eyes`).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    left, right = detect_eyes(rgb, name, reference=reference)
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


def align_path(
    photos: Path, out: Path, eyes: tuple[float, ...] = CUFS_EYES, reference: Path | None = None
) -> int:
    """`ide align`: align one photo or every image in a folder into OUT/<stem>.png.

    `reference`: a folder of photos aligned to `eyes` whose mean face refines the eyes (`load_reference`).

    Photos that fail are reported at the end and the rest are still written. Non-image files in a
    folder are skipped and reported. Returns the exit code: 2 if any photo failed, else 0.
    """
    photos, out = Path(photos), Path(out)
    mean = None if reference is None else load_reference(reference, eyes)
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
            aligned = align_face(read_image(path, "RGB"), name=str(path), eyes=eyes, reference=mean)
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
