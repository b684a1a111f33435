"""Drawing primitives and face geometry of the synthetic faces (`ide.data.synthetic`).

A face is a dict of sampled parameters (`_sample`); the helpers here turn it into soft masks and
the polylines of brows, eyes, nose and mouth, in the 200x250 layout, for the photo and the sketch
renderers alike. Coordinates are float pixels; cv2 draws them in fixed point (`SHIFT`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ide.data.folders import HEIGHT, WIDTH
from ide.data.layout import CUFS_EYES

S = 2  # sketch strokes are drawn at 2x and area-downsampled: thin antialiased pencil lines
H2, W2 = HEIGHT * S, WIDTH * S
SHIFT = 2  # cv2 fixed-point bits: drawing coordinates carry 1/4 pixel
AA = cv2.LINE_AA
_Y, _X = (g.astype(np.float32) for g in np.mgrid[0:HEIGHT, 0:WIDTH])
HAIR = np.array([[28, 24, 24], [62, 42, 30], [112, 76, 48], [196, 160, 100], [150, 148, 145], [130, 58, 34]])
IRIS = np.array([[55, 35, 22], [50, 75, 105], [65, 72, 40]])
# Same bytes on every machine: floats reach cv2 only as uint8 (its 8-bit blur and resize are
# bit-exact), the few transcendental values are snapped to a 2^-12 grid, and all else is
# elementwise arithmetic and sqrt (IEEE-rounded, the same everywhere).


def _p(xy, res: int = 1) -> np.ndarray:
    """1x float points [..., 2] → int32 cv2 points (with `shift=SHIFT`) on a canvas `res` times larger."""
    return np.round(((np.asarray(xy, np.float64) + 0.5) * res - 0.5) * (1 << SHIFT)).astype(np.int32)


def _c(colour) -> tuple[float, ...]:
    return tuple(float(v) for v in np.atleast_1d(colour))


def _line(img: np.ndarray, pts: np.ndarray, colour, width: int = 1, res: int = 1) -> None:
    """Antialiased open polyline through 1x points [n, 2] on a canvas `res` times larger."""
    cv2.polylines(img, [_p(pts, res)], False, _c(colour), width, AA, SHIFT)


def _fill(img: np.ndarray, polys: list[np.ndarray], colour, res: int = 1) -> None:
    cv2.fillPoly(img, [_p(q, res) for q in polys], _c(colour), AA, SHIFT)


def _sample(rng: np.random.Generator, style: int) -> dict:
    """All geometry, colours and lighting of one identity, in 1x pixel coordinates."""
    u = rng.uniform
    xl, eye_y, xr, _ = CUFS_EYES
    mid, eye_y, half = (xl + xr) / 2 + u(-2, 2), eye_y + u(-2, 2), (xr - xl) / 2 + u(-2.5, 2.5)
    g = {"style": style, "eyes": [(mid - half, eye_y + u(-1, 1)), (mid + half, eye_y + u(-1, 1))], "mid": mid}
    g.update(cx=mid + u(-1.5, 1.5), a=u(58, 70), cy=u(118, 130), top=u(38, 50), chin=u(206, 221))
    g.update(taper=u(0.15, 0.5), neck=u(22, 30), shoulder=u(82, 100))
    g.update(cut=int(rng.integers(0, 3)), volume=u(4, 14), fringe=u(0, 1) < 0.4, part=u(-25, 25))
    g.update(hairline=u(66, 82), temple=eye_y - u(6, 18), hair_bottom=[0, u(150, 185), u(215, 260)][g["cut"]])
    g.update(wave=u(-2.5, 2.5, 4))  # irregular hairline and silhouette
    g.update(brow_gap=u(13, 18), brow_len=u(12, 16), brow_arch=u(1.5, 5), brow_w=u(2, 4.2))
    g.update(eye_w=u(10, 12.5), eye_up=u(4, 6), eye_lo=u(2.5, 4), iris=u(4.3, 5.3))
    g.update(nose_y=u(155, 166), nose_w=u(8, 12), mouth_y=u(182, 192), mouth_w=u(14, 20))
    g.update(lip_up=u(2.5, 4.5), lip_lo=u(3.5, 6), smile=u(-1, 2.5))
    skin_t = u(0, 1)
    g["skin"] = (1 - skin_t) * np.array([238, 204, 180]) + skin_t * np.array([138, 94, 68]) + u(-8, 8, 3)
    g["hair"] = np.clip(HAIR[rng.integers(0, len(HAIR))] + u(-15, 15, 3), 0, 255)
    g["iris_col"] = IRIS[rng.integers(0, len(IRIS))]
    g["lips"] = g["skin"] * np.array([0.85, 0.6, 0.6]) + u(-10, 10)
    g["clothes"] = u(20, 235, 3)
    lo, hi = (150, 235) if style == 0 else (50, 150)
    g["bg"], g["bg2"] = u(lo, hi, 3), u(lo, hi, 3)
    g["side"] = 1.0 if style == 0 else -1.0  # +1: light from the image left, the right side in shadow
    g["light"] = u(0.25, 0.45) if style == 0 else u(0.35, 0.55)
    g["paper"] = u(240, 252) if style == 0 else u(232, 246)
    return g


def _blur8(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a [0,1] map through uint8 (bit-exact in OpenCV): float32 [H, W] in [0,1]."""
    if mask.dtype == bool:
        u8 = mask.astype(np.uint8) * np.uint8(255)
    else:
        u8 = np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8)
    return cv2.GaussianBlur(u8, (0, 0), sigma).astype(np.float32) / 255


def _snap(a: np.ndarray) -> np.ndarray:
    """float64 → float32 on a 2^-12 grid, so ulp differences of libm/SIMD transcendentals vanish
    (used on the 1-D results of sin and exp; everything 2-D is plain arithmetic and sqrt)."""
    return (np.round(a * 4096) / 4096).astype(np.float32)


def _face_half(g: dict, y: np.ndarray) -> np.ndarray:
    """Half-width of the face at height y (0 outside): ellipse above cy, tapered jaw below."""
    b = np.where(y < g["cy"], g["cy"] - g["top"], g["chin"] - g["cy"])
    s = (y - g["cy"]) / b
    return g["a"] * np.sqrt(np.clip(1 - s * s, 0, 1)) * (1 - g["taper"] * np.clip(s, 0, 1) ** 2)


def _masks(g: dict) -> dict[str, np.ndarray]:
    """Float32 [H, W] soft masks in [0,1] of the body parts, and the photo's shadow map."""
    # x is a row, y a column: whatever depends on one of them only stays 1-D until it meets the other
    x, y, cx = np.arange(WIDTH, dtype=np.float64)[None], np.arange(HEIGHT, dtype=np.float64)[:, None], g["cx"]
    dx, w = np.abs(x - cx), g["wave"]
    # a wavy silhouette: sin 5θ and cos 3θ of the polar angle, as polynomials of sin θ and cos θ
    r = np.maximum(np.sqrt((x - cx) ** 2 + (y - g["cy"]) ** 2), 1e-6)
    c, s = (x - cx) / r, (y - g["cy"]) / r
    c2, s2 = c * c, s * s  # products, not np.power: the same bits on every CPU
    outer_a = g["a"] + g["volume"] + w[0] * s * (16 * s2 * s2 - 20 * s2 + 5) + w[1] * c * (4 * c2 - 3)
    in_outer = ((x - cx) / outer_a) ** 2 + ((y - g["cy"]) / (g["cy"] - g["top"] + g["volume"])) ** 2 < 1
    # hairline: high over the forehead (lower, slanted under a fringe), down to the temples at the sides
    hx = cx + (0.3 * g["part"] if g["fringe"] else 0.0)
    line_y = g["hairline"] + g["fringe"] * (16 + 8 * (x - hx) / g["a"] * np.sign(g["part"]))
    line_y = line_y + _snap(w[2] * np.sin(x / 9) + w[3] * np.sin(x / 4.3))
    rise = np.clip(np.abs(x - hx) / (0.85 * g["a"]), 0, 1)
    hairline = line_y + (g["temple"] - line_y) * rise * rise * rise
    front = in_outer & (y < hairline)
    face_half = _face_half(g, y)
    if g["cut"] > 0:  # side curtains over the face edge down to hair_bottom, leaving the neck free
        inner = np.maximum(face_half - 4 - 4 * g["cut"], g["neck"] + 3)
        front |= (dx > inner) & (dx < outer_a) & (y >= g["temple"]) & (y < g["hair_bottom"])
    back = (in_outer | ((dx < outer_a - 2) & (y > g["cy"]) & (y < g["hair_bottom"]))) & (g["cut"] > 0)
    ear_y = g["eyes"][0][1] + 12
    ear_x = _face_half(g, np.float64(ear_y - 2)) - 1
    ears = ((dx - ear_x) / 7.5) ** 2 + ((y - ear_y) / 15) ** 2 < 1
    neck = (dx < g["neck"] + 0.15 * np.clip(y - g["chin"], 0, None)) & (y > g["cy"])
    clothes = ((x - cx) / g["shoulder"]) ** 2 + ((y - 272) / 50) ** 2 < 1
    m = {"front": front, "back": back, "face": (dx < face_half) | ears, "neck": neck, "clothes": clothes}
    m = {k: _blur8(v, 0.7) for k, v in m.items()}
    # shadow: the side away from the light, deeper towards the edge, plus a blob beside the nose
    side = np.clip((x - cx) / g["a"] * g["side"] + 0.15, 0, 1)
    nose_x = _snap(np.exp(-(((x - g["mid"] - g["side"] * 7) / 5) ** 2)))
    nose_y = _snap(np.exp(-(((y - g["nose_y"] + 10) / 14) ** 2)))
    m["shadow"] = np.float32(g["light"]) * (_snap(side * np.sqrt(side)) + 0.6 * nose_x * nose_y)
    return m


def _brow(g: dict, i: int, offset: float = 0.0) -> np.ndarray:
    """Centre line of brow i (0 = image left) as [n, 2] 1x points; offset in [-0.5, 0.5] crosses its width."""
    ex, ey = g["eyes"][i]
    t = np.linspace(-1, 1, 12)
    inner = t * (1 if i == 0 else -1)  # +1 at the inner (nose-side) end, where brows are thicker
    y = ey - g["brow_gap"] - g["brow_arch"] * (1 - t * t) + 1.5 * inner
    return np.stack([ex + t * g["brow_len"], y + offset * g["brow_w"] * (0.6 + 0.4 * inner)], 1)


def _eye(g: dict, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid of eye i as [n, 2] 1x points (corner to corner)."""
    ex, ey = g["eyes"][i]
    t = np.linspace(-1, 1, 15)
    tilt = 0.8 * t * (1 if i == 0 else -1)  # the outer corner sits slightly higher
    return (
        np.stack([ex + t * g["eye_w"], ey - g["eye_up"] * (1 - t * t) + tilt], 1),
        np.stack([ex + t * g["eye_w"], ey + g["eye_lo"] * (1 - t * t) + tilt], 1),
    )


def _mouth(g: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper lip top, mouth line and lower lip bottom as [n, 2] 1x points."""
    t = np.linspace(-1, 1, 17)
    x, line = g["mid"] + t * g["mouth_w"], g["mouth_y"] - g["smile"] * t * t
    bow = 1 - 0.35 * np.exp(-((t / 0.15) ** 2))  # cupid's bow: a dip in the middle of the upper lip
    top, bottom = line - g["lip_up"] * np.sqrt(1 - t * t) * bow, line + g["lip_lo"] * np.sqrt(1 - t * t)
    return np.stack([x, top], 1), np.stack([x, line], 1), np.stack([x, bottom], 1)


def _nose(g: dict, sgn: int) -> tuple[np.ndarray, np.ndarray]:
    """Nostril centre and nose-wing arc on side sgn (-1 = image left) in 1x points."""
    t = np.linspace(-0.3, 2.2, 10) if sgn > 0 else np.linspace(np.pi - 2.2, np.pi + 0.3, 10)
    wing = np.stack([g["mid"] + sgn * g["nose_w"] + 3 * np.cos(t), g["nose_y"] - 2 + 4.5 * np.sin(t)], 1)
    return np.array([g["mid"] + sgn * g["nose_w"] * 0.45, g["nose_y"] + 1]), wing


def _eyeball(img: np.ndarray, g: dict, i: int, res: int, white, iris, pupil, shine) -> None:
    """Eye i's white, iris, pupil and catch-light, shown only between its lids, on a canvas `res` times
    larger: RGB colours on a photo, ink values on a sketch layer."""
    up, lo = _eye(g, i)
    almond = np.concatenate([up, lo[::-1]])
    (x0, y0), (x1, y1) = (
        (np.floor(almond.min(0) * res) - 2 * res).astype(int),
        (np.ceil(almond.max(0) * res) + 2 * res).astype(int),
    )
    roi, off = img[y0:y1, x0:x1], np.array([x0, y0]) << SHIFT
    inside = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(inside, [_p(almond, res) - off], 255, AA, SHIFT)
    eye = np.empty_like(roi)
    eye[:] = white
    (cx, cy), r = _p(g["eyes"][i], res) - off, g["iris"] * res * (1 << SHIFT)
    cv2.circle(eye, (cx, cy), int(r), _c(iris), -1, AA, SHIFT)
    cv2.circle(eye, (cx, cy), int(0.45 * r), _c(pupil), -1, AA, SHIFT)
    cv2.circle(eye, (cx - 5 * res, cy - 5 * res), 4 * res, _c(shine), -1, AA, SHIFT)
    alpha = inside.astype(np.float32).reshape(inside.shape + (1,) * (img.ndim - 2)) / 255
    roi[:] = np.round(eye * alpha + roi * (1 - alpha)).astype(np.uint8)
