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
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ide.data.faces import apply, cascade, face_starts, unscale
from ide.data.folders import HEIGHT, WIDTH
from ide.data.io import is_image_file, read_image, write_png
from ide.data.layout import CUFS_EYES, LAYOUTS  # noqa: F401 (LAYOUTS: the table of `ide align --layout`)
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
# refinement against a reference face (`refine_eyes`): each eye window of the mean face is half
# REFINE_WINDOW (in eye distances) wide and high about the eye; the photo is matched at REFINE_ZOOM
# times the reference's size; a refined eye that moves more than REFINE_MAX_MOVE eye distances from
# the Haar eye (4 px of the CUFS layout's 52) is taken for a failure and the Haar eyes are kept.
# Chosen on the CUFS training photos (each against the mean of the others), never the test photos.
REFINE_WINDOW = (0.35, 0.2)
REFINE_ZOOM = 2.0
REFINE_MAX_MOVE = 4.0 / 52.0
REFINE_PAD = 20  # px of the zoomed upright copy around the reference frame: room for the fit to move
_LAYOUT_HINT = (
    "use a frontal photo of one face, or align it yourself (eyes at ({:g},{:g}) and ({:g},{:g}))".format(
        *CUFS_EYES
    )
)


class AlignError(UserError):
    """A photo that cannot be aligned: no face, several faces, or no pair of eyes. Names the file."""


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
        photos = np.stack([_gray(p) for p in photos])
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
    from them is the similarity through those two points. When ECC fails or an eye moves more than
    REFINE_MAX_MOVE eye distances, the given eyes come back. Returns (left, right, refined).
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
        _, warp = cv2.findTransformECCWithMask(
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
        return *given, False
    fitted = [warp.astype(np.float64) @ (cx - x0, cy - y0, 1.0) for cx, cy in centres]
    moved = max(np.hypot(*(f - t)) for f, t in zip(fitted, (target[:2], target[2:])))
    if not np.isfinite(moved) or moved > REFINE_MAX_MOVE * (target[2] - target[0]):
        return *given, False
    back = cv2.invertAffineTransform(matrix)
    return apply(back, fitted[0]), apply(back, fitted[1]), True


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
