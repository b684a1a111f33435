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

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ide.data.face_geometry import (
    _X,
    _Y,
    AA,
    H2,
    SHIFT,
    W2,
    S,
    _blur8,
    _brow,
    _c,
    _eye,
    _eyeball,
    _face_half,
    _fill,
    _line,
    _masks,
    _mouth,
    _nose,
    _p,
    _sample,
)
from ide.data.folders import HEIGHT, WIDTH, PairedSplit
from ide.data.io import write_png


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
