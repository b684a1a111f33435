"""The background model on validation photos given synthetic dark backdrops (never the test set).

The XM2VTS training photos of CUFS have white backdrops (the ANS-GDA authors replaced them), the
XM2VTS test photos keep their original blue ones, and real users' photos have any backdrop. No
training photo shows that case, so this script makes it: each XM2VTS training photo's white
backdrop (the near-white region connected to the top and side borders) is replaced by a dark one,
drawn per photo from four families (blue, gray, green, brown) with a vertical gradient, noise, a
soft edge and, on half the photos, a black rotation wedge along one side. Each composite photo is
then synthesized by stage 1 leave-one-out from the rest of the training bank and scored against
its own sketch, beside the same photos with their white backdrops (the ceiling) and the composites
without the background model (the floor). The backdrop the model finds is also compared with the
one painted in (IoU).

    python bench/backdrop_val.py --config configs/cufs_cpu.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from ide.config import load_config
from ide.data.folders import load_split, subset_of
from ide.data.io import to_gray
from ide.metrics.arrays import score_arrays
from ide.pgm import background
from ide.pgm.prepare import prepare_photos
from ide.pgm.synthesis import coarse_sketches

# The research data: $IDE_DATA, else ../shared/data beside the repository (datasets/README.md).
DATA = Path(os.environ.get("IDE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")

FAMILIES = {  # RGB ranges of each backdrop family (all with a mean gray level under background.DARK)
    "blue": ((15, 50), (35, 80), (110, 190)),
    "gray": ((45, 95), (45, 95), (45, 95)),
    "green": ((20, 50), (70, 115), (30, 60)),
    "brown": ((80, 120), (55, 80), (35, 60)),
}
WHITE = 240  # the training photos' replaced backdrops are 255; JPEG leaves them at 240 or above


def white_backdrop(rgb: np.ndarray) -> np.ndarray:
    """bool [H, W]: near-white pixels connected to the top border or the sides' upper two thirds,
    grown by 2 px over the light fringe that the authors' cut left around the hair."""
    h, w = rgb.shape[:2]
    n, labels = cv2.connectedComponents((rgb.min(-1) >= WHITE).astype(np.uint8), connectivity=4)
    edge = np.concatenate([labels[0], labels[: 2 * h // 3, 0], labels[: 2 * h // 3, -1]])
    keep = np.setdiff1d(np.unique(edge), [0])
    if n == 1 or keep.size == 0:
        return np.zeros((h, w), bool)
    return cv2.dilate(np.isin(labels, keep).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def composite(rgb: np.ndarray, mask: np.ndarray, family: str, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB [H, W, 3]: `rgb` with the pixels of `mask` replaced by a dark backdrop of `family`."""
    h, w = mask.shape
    base = np.array([rng.uniform(*r) for r in FAMILIES[family]], np.float32)
    ramp = 1.0 + rng.uniform(-0.2, 0.2) * np.linspace(-1, 1, h, dtype=np.float32)[:, None, None]
    back = base * ramp + rng.normal(0, 2.0, (h, w, 3)).astype(np.float32)
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8)[..., None]
    out = alpha * back + (1 - alpha) * rgb.astype(np.float32)
    if rng.random() < 0.5:  # a black wedge tapering along one side, as an earlier rotation leaves
        width = rng.uniform(2, 8) * np.linspace(0, 1, h)[:: rng.choice([-1, 1])]
        cols = np.arange(w)[None, :]
        wedge = cols < width[:, None] if rng.random() < 0.5 else cols >= w - width[:, None]
        out[wedge] = 0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA / "CUFS"))
    ap.add_argument("--config", default="configs/cufs_cpu.yaml", help="stage-1 settings")
    ap.add_argument("--subset", default="XM2VTS", help="training subset whose white backdrops are replaced")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = load_config(args.config, [f"data.root={args.data}"]).stage1
    train = load_split(args.data, "train")
    idx = [i for i, pid in enumerate(train.ids) if subset_of(pid) == args.subset]
    rng = np.random.default_rng(args.seed)
    names = list(FAMILIES)
    masks = [white_backdrop(train.photos[i]) for i in idx]
    comps = np.stack(
        [
            composite(train.photos[i], m, names[j % len(names)], rng)
            for j, (i, m) in enumerate(zip(idx, masks))
        ]
    )
    t0 = time.perf_counter()
    found = [background.grabcut_mask(c) if background.dark_backdrop(to_gray(c)) else None for c in comps]
    mask_s = (time.perf_counter() - t0) / len(idx)
    ious = [0.0 if f is None else iou(f, m) for f, m in zip(found, masks)]
    sketches = np.stack([to_gray(train.sketches[i]) for i in idx])
    rows = {"photos": len(idx), "backdrop_share": round(float(np.mean([m.mean() for m in masks])), 3)}
    rows["triggered"] = sum(f is not None for f in found)
    rows["iou_mean"], rows["iou_min"] = round(float(np.mean(ious)), 4), round(float(np.min(ious)), 4)
    rows["mask_s_per_photo"] = round(mask_s, 3)
    runs = {
        "white backdrop (ceiling)": (train.photos[idx], cfg),
        "dark backdrop, background model off": (comps, dataclasses.replace(cfg, background=0.0)),
        "dark backdrop, background model on": (comps, cfg),
    }
    for name, (queries, c) in runs.items():
        bank, prepared = prepare_photos(train.photos, c.background), prepare_photos(queries, c.background)
        coarse = coarse_sketches(bank, train.sketches, prepared, c, exclude=idx, progress=False)
        score = score_arrays(coarse, sketches)
        rows[name] = {k: round(v, 4) for k, v in score.items() if k in ("fsim", "ssim")}
        per_family = {}
        for f in names:
            part = [j for j in range(len(idx)) if names[j % len(names)] == f]
            per_family[f] = round(score_arrays(coarse[part], sketches[part])["fsim"], 4)
        rows[name]["fsim_by_family"] = per_family
        print(name, rows[name], flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
