"""Synthetic aligned face photo/sketch pairs: the embedded default dataset of `ide demo` and most tests.

Each identity comes from its own `np.random.default_rng`: face shape (ellipse + jaw taper), hair
(cut, colour, volume, fringe), brows, eyes, nose, mouth, skin tone, clothes, background, lighting.
The photo is a shaded cartoon (directional light, soft edges, sensor noise). The sketch is a pencil
drawing of the same geometry on paper: contour strokes, hair as strokes that follow the hair flow,
the shadowed side of the face hatched in proportion to the photo's shading, darker hatching for
darker hair, lips and clothes. So a sketch is consistently related to its photo across identities,
yet not a pixelwise function of it: the photo background never reaches the paper, and stroke
phase, jitter and paper grain are random.

Layout (CUFS): 200x250 (W x H), eye centres near (75,125) and (127,125). Identities alternate
between two subsets: `SYNA` (light from the left, light backgrounds, fine lines) and `SYNB` (light
from the right, darker backgrounds, heavier lines), so per-subset reports have something to split.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ide.data.folders import HEIGHT, WIDTH, PairedSplit
from ide.data.io import write_png
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


def _render_photo(g: dict, m: dict, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H, W, 3]: flat colour layers, hair strands, features, directional shading, blur and noise."""
    t, planes = _Y / HEIGHT, []  # one [H, W] plane per channel: numpy is slow over a last axis of 3
    layers = (("clothes", g["clothes"]), ("back", g["hair"] * 0.9), ("neck", g["skin"] * 0.75))
    for ch in range(3):
        img = (1 - t) * np.float32(g["bg"][ch]) + t * np.float32(g["bg2"][ch])
        for key, colour in layers + (("face", g["skin"]), ("front", g["hair"])):
            img += (np.float32(colour[ch]) - img) * m[key]
        planes.append(np.clip(img, 0, 255).astype(np.uint8))
    c, skin, hair = cv2.merge(planes), g["skin"], _hair_mask(m)
    strands, curves = c.copy(), _p(_hair_curves(g, rng, hair, 0.2))  # strands: darker and lighter
    tone = rng.integers(0, 2, len(curves))
    for k, shade in enumerate((-0.16, 0.16)):
        colour = np.clip(g["hair"] + shade * np.maximum(g["hair"], 60), 0, 255)
        cv2.polylines(strands, list(curves[tone == k]), False, _c(colour), 1, AA, SHIFT)
    cv2.copyTo(strands, (hair > 0.5).astype(np.uint8), c)
    for i in range(2):
        _fill(c, [np.concatenate([_brow(g, i, -0.5), _brow(g, i, 0.5)[::-1]])], g["hair"] * 0.8)
        _eyeball(c, g, i, 1, (232, 228, 222), g["iris_col"], (15, 12, 12), (250, 250, 250))
        up, lo = _eye(g, i)
        _line(c, up, (35, 28, 28), 2)
        _line(c, lo, skin * 0.6)
        _line(c, up + [0, -2.5], skin * 0.8)
        nostril, wing = _nose(g, 2 * i - 1)
        cv2.ellipse(c, tuple(_p(nostril)), (12, 6), (1 - 2 * i) * 20, 0, 360, _c(skin * 0.4), -1, AA, SHIFT)
        _line(c, wing, skin * 0.7)
    top, line, bottom = _mouth(g)
    _fill(c, [np.concatenate([top, line[::-1]]), np.concatenate([line, bottom[::-1]])], g["lips"])
    _line(c, line, skin * 0.3)
    # light: a gentle gradient over the whole frame, strong shading on the person's far side
    person = np.clip(m["face"] + m["neck"] + 0.6 * m["front"] + 0.6 * m["back"], 0, 1)
    light = (1 + 0.12 * g["side"] * (g["cx"] - _X) / 100) * (1 - m["shadow"] * person)
    noise = 2.5 * rng.standard_normal((HEIGHT, WIDTH), dtype=np.float32)  # sensor noise (luma)
    planes = [p.astype(np.float32) * light + noise for p in cv2.split(cv2.GaussianBlur(c, (0, 0), 0.5))]
    return cv2.merge([np.clip(np.round(p), 0, 255).astype(np.uint8) for p in planes])


def _hair_mask(m: dict) -> np.ndarray:
    """Visible hair: the front layer, and the back layer where face and neck do not cover it."""
    return np.clip(m["front"] + m["back"] * (1 - m["face"]) * (1 - m["neck"]), 0, 1)


@lru_cache(maxsize=8)
def _hatch_texture(angle: float, spacing: float, dash: float) -> np.ndarray:
    """Float32 [H+32, W+32] in [0,1]: parallel broken pencil strokes (drawn at 2x), fixed per argument set."""
    rng = np.random.default_rng([int(angle * 10), int(spacing * 10), int(dash * 10)])
    h, w = H2 + 64, W2 + 64
    layer = np.zeros((h, w), np.uint8)
    d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
    n, r = np.array([-d[1], d[0]]), np.hypot(h, w) / 2
    offs = np.arange(-r, r, spacing * S)
    k = int(2 * r / (dash * S)) + 2
    start = -r + np.cumsum(rng.uniform(0.9, 1.5, (len(offs), k)) * dash * S, 1) - dash * S
    length = rng.uniform(0.55, 1.0, start.shape) * dash * S
    base = np.array([w / 2, h / 2]) + offs[:, None, None] * n
    ends = np.stack([base + start[..., None] * d, base + (start + length)[..., None] * d], 2)
    seg = np.round(ends + rng.normal(0, 0.5, ends.shape)).astype(np.int32).reshape(-1, 2, 2)
    pressure = rng.integers(0, 3, len(seg))
    for level, value in enumerate((150, 200, 255)):  # three pencil pressures
        cv2.polylines(layer, list(seg[pressure == level]), False, value, 2, AA)
    out = _down(layer)
    out.flags.writeable = False
    return out


def _hatch(rng: np.random.Generator, angle: float, spacing: float, dash: float) -> np.ndarray:
    """A randomly placed crop of the hatch texture: float32 [H, W]."""
    oy, ox = rng.integers(0, 32, 2)
    return _hatch_texture(angle, spacing, dash)[oy : oy + HEIGHT, ox : ox + WIDTH]


def _hair_curves(g: dict, rng: np.random.Generator, mask: np.ndarray, per_sample: float) -> np.ndarray:
    """Float [n, 5, 2] 1x polylines along the hair flow: fanning out from above the crown, falling
    straight below the temples. Starts are drawn from `mask` (float32 [H, W]) sampled every 2 px."""
    ys, xs = np.nonzero(mask[::2, ::2] > 0.5)
    count = int(len(ys) * per_sample) if len(ys) else 0
    i = rng.integers(0, max(len(ys), 1), count)
    p = np.stack([xs[i], ys[i]], 1) * 2.0 + rng.uniform(-1, 1, (count, 2))
    crown = np.array([g["cx"] + g["part"], g["top"] - 40])
    step, curve = rng.uniform(6, 12, (count, 1)), [p]
    for _ in range(4):
        v = p - crown
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        down = np.clip((p[:, 1:] - g["temple"]) / 30, 0, 1)
        v = v * (1 - down) + np.array([[0.0, 1.0]]) * down + rng.normal(0, 0.12, v.shape)
        p = p + v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-6) * step
        curve.append(p)
    return np.stack(curve, 1)


def _hair_strokes(g: dict, rng: np.random.Generator, mask: np.ndarray, dark: float) -> np.ndarray:
    """Float32 [H, W] ink of the sketch's hair; dark (1 - hair luminance) sets density and pressure."""
    layer = np.zeros((H2, W2), np.uint8)
    strokes = _p(_hair_curves(g, rng, mask, 0.08 + 0.4 * dark), S)
    pressure = rng.integers(0, 3, len(strokes))
    for level, value in enumerate((0.5, 0.75, 1.0)):
        ink = 255 * value * (0.35 + 0.65 * dark)
        cv2.polylines(layer, list(strokes[pressure == level]), False, ink, 1, AA, SHIFT)
    layer = cv2.dilate(layer, np.ones((2, 2), np.uint8))  # 2 px wide at 2x, much cheaper than width=2
    return _down(layer) * np.minimum(_blur8(mask, 1) * 1.5, 1)


def _down(layer: np.ndarray) -> np.ndarray:
    """uint8 ink drawn at 2x, [2h, 2w] → float32 [h, w] in [0,1] (area average, bit-exact in OpenCV)."""
    size = (layer.shape[1] // S, layer.shape[0] // S)
    return cv2.resize(layer, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _lum(rgb) -> float:
    return float(np.dot(rgb, [0.299, 0.587, 0.114]) / 255)


def _render_sketch(g: dict, m: dict, rng: np.random.Generator) -> np.ndarray:
    """uint8 [H, W]: pencil strokes, hatching and paper grain; never sees the photo's pixels.

    Lines, hatching and hair strokes are drawn at 2x (uint8) and area-averaged to 1x, where the smooth
    weight maps (where to hatch, how dark) scale them.
    """
    heavy = g["style"] == 1
    lw, ink_line = (3, 0.85) if heavy else (2, 0.7)
    lines = np.zeros((H2, W2), np.uint8)  # contours and features: all hidden where hair covers them

    def stroke(pts, value, width=lw, passes=2):  # a pencil line: a few wobbly passes
        for _ in range(passes):
            _line(lines, pts + rng.normal(0, 0.3, 2) + rng.normal(0, 0.12, pts.shape), value, width, S)

    ys = np.linspace(g["top"], g["chin"], 80)
    half = _face_half(g, ys)
    neck_y = ys[(ys > g["cy"]) & (half < g["neck"] + 1)][0]  # the neck leaves the jaw here ...
    collar_y = 272 - 50 * np.sqrt(1 - (g["neck"] / g["shoulder"]) ** 2)  # ... and meets the clothes here
    ear_y, t = g["eyes"][0][1] + 12, np.linspace(-1.3, 1.4, 15)
    for sgn in (-1, 1):
        stroke(np.stack([g["cx"] + sgn * half, ys], 1), 210 * ink_line)
        ear_x = g["cx"] + sgn * (_face_half(g, np.float64(ear_y - 2)) - 1)
        stroke(np.stack([ear_x + sgn * 7.5 * np.cos(t), ear_y + 15 * np.sin(t)], 1), 190 * ink_line)
        stroke(np.stack([ear_x + sgn * 3 * np.cos(t[3:-3]), ear_y + 8 * np.sin(t[3:-3])], 1), 70, 2, 1)
        neck_x = g["cx"] + sgn * (
            g["neck"] + 0.15 * np.clip(np.array([neck_y, collar_y]) - g["chin"], 0, None)
        )
        stroke(np.stack([neck_x, [neck_y, collar_y]], 1), 180 * ink_line)
    hair_dark = 1 - _lum(g["hair"])
    for i in range(2):
        for off in np.linspace(-0.5, 0.5, 5):
            stroke(_brow(g, i, off), 255 * (0.4 + 0.55 * hair_dark), 2, 1)
        _eyeball(lines, g, i, S, 0, 140, 255, 0)
        up, lo = _eye(g, i)
        stroke(up, 250, lw + 1)
        stroke(lo, 110, 2, 1)
        stroke(up + [0, -2.5], 90, 2, 1)
        nostril, wing = _nose(g, 2 * i - 1)
        cv2.ellipse(lines, tuple(_p(nostril, S)), (24, 12), (1 - 2 * i) * 20, 0, 360, 200, -1, AA, SHIFT)
        stroke(wing, 150, 2)
    top, mouth, bottom = _mouth(g)
    stroke(mouth, 245, lw)
    stroke(top, 120, 2, 1)
    stroke(bottom[3:-3] + [0, 1], 80, 2, 1)
    lips = np.zeros((HEIGHT, WIDTH), np.uint8)
    _fill(lips, [np.concatenate([top, mouth[::-1]])], 255)
    _fill(lips, [np.concatenate([mouth, bottom[::-1]])], 115)

    # 1x weight maps: hatch where the photo is shaded, darker where the photo is darker
    shade = m["shadow"] / 0.55 * np.clip(m["face"] + m["neck"] * 0.6, 0, 1)
    hair = _hair_mask(m)
    bare, cloth_dark = 1 - hair, 1 - _lum(g["clothes"])
    w1 = bare * (np.clip(shade * 1.1, 0, 0.65) + m["neck"] * (1 - m["face"]) * 0.25)
    w1 += lips.astype(np.float32) / 255 * (0.2 + 0.6 * (1 - _lum(g["lips"])))
    w1 += bare * m["clothes"] * max(0.0, cloth_dark - 0.45)
    w2 = bare * (np.clip(shade * 1.6 - 0.5, 0, 0.5) + m["clothes"] * (0.1 + 0.7 * cloth_dark))
    body = (255 * (hair + m["clothes"] > 0.5)).astype(np.uint8)
    outline = cv2.morphologyEx(body, cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8)).astype(np.float32) / 255

    angle = 55.0 if not heavy else 125.0
    keep = 1 - _down(cv2.GaussianBlur(lines, (0, 0), 0.6)) * bare  # lines soften a little, like graphite
    keep *= 1 - _hatch(rng, angle, 3.0, 9.0) * np.minimum(w1, 1)
    keep *= 1 - _hatch(rng, angle + 75, 3.5, 8.0) * np.minimum(w2, 1)
    keep *= 1 - _hair_strokes(g, rng, hair, hair_dark)
    ink = 1 - keep * (1 - 0.4 * outline)
    tooth = rng.standard_normal((HEIGHT, WIDTH), dtype=np.float32)  # fine grain, and soft blotches:
    blotch = np.clip(128 + 40 * rng.standard_normal((HEIGHT // 4, WIDTH // 4)), 0, 255).astype(np.uint8)
    blotch = cv2.resize(blotch, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR_EXACT)
    grain = 2 * tooth + 0.07 * (cv2.GaussianBlur(blotch, (0, 0), 2).astype(np.float32) - 128)
    return np.clip(np.round(g["paper"] * (1 - 0.93 * ink) + grain), 0, 255).astype(np.uint8)


def make_pair(seed: int, style: int) -> tuple[np.ndarray, np.ndarray]:
    """One identity. Returns photo uint8 [250, 200, 3] and sketch uint8 [250, 200]; same seed → same bytes.

    Args:
        seed: the identity's seed (`np.random.default_rng(seed)` drives every random choice).
        style: 0 (subset SYNA: light from the left) or 1 (subset SYNB: light from the right, darker
            backgrounds, heavier lines).
    """
    rng = np.random.default_rng(seed)
    g = _sample(rng, int(style))
    m = _masks(g)
    return _render_photo(g, m, rng), _render_sketch(g, m, rng)


def make_split(count: int, seed: int, name: str = "synthetic") -> PairedSplit:
    """`count` identities alternating SYNA / SYNB; ids `SYNA_<seed>-<i:04d>` / `SYNB_<seed>-<i:04d>`, sorted.

    Identity i depends only on (seed, i), so a larger count extends a smaller one.
    Returns photos uint8 [count, 250, 200, 3] and sketches uint8 [count, 250, 200].
    """
    items = {}
    for i in range(count):
        pair_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        items[f"SYN{'AB'[i % 2]}_{seed}-{i:04d}"] = make_pair(pair_seed, i % 2)
    ids = tuple(sorted(items))
    photos = np.stack([items[k][0] for k in ids]) if ids else np.zeros((0, HEIGHT, WIDTH, 3), np.uint8)
    sketches = np.stack([items[k][1] for k in ids]) if ids else np.zeros((0, HEIGHT, WIDTH), np.uint8)
    return PairedSplit(ids=ids, photos=photos, sketches=sketches, photo_gray=False, name=name)


def write_dataset(root: str | Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Write ROOT/{train,test}/{photos,sketches}/<id>.png. Train uses seed 2*seed and test 2*seed+1, as
    `ide.data.dataset.load_data` does for `root: synthetic`, so the two splits never share an identity."""
    for split, count, s in (("train", n_train, 2 * seed), ("test", n_test, 2 * seed + 1)):
        data = make_split(count, s, name=f"synthetic/{split}")
        for pid, photo, sketch in zip(data.ids, data.photos, data.sketches):
            write_png(Path(root) / split / "photos" / f"{pid}.png", photo)
            write_png(Path(root) / split / "sketches" / f"{pid}.png", sketch)
