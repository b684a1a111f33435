"""Sharpness of synthesized sketches: mean absolute Laplacian per folder, against the artists'.

python bench/sharpness.py --gt DATA/CUFS/test/sketches --dirs "stage 1=out/stage1" "SCA-GAN=PATH" ...

For every folder, the mean over images of mean |∇²I| (OpenCV's 3x3 Laplacian, kernel
[[0,1,0],[1,-4,1],[0,1,0]], on gray levels 0-255), overall and per subset (the id's prefix before
`_`), and its ratio to the artists' sketches on the same ids: 1 is the artists' fine detail,
below 1 blur, above 1 more high-frequency content than the artists drew (grain, ringing). Only
ids found in every folder and in --gt are used. The last line is the table as one JSON object.

python bench/sharpness.py --grid runs/NAME/samples/0003000.png

The same energy per column of a training run's sample grid (columns coarse / refined / target,
200x250 faces 2 px apart), for validation faces without running the model again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ide.data.folders import subset_of  # noqa: E402
from ide.data.io import is_image_file, read_image  # noqa: E402


def laplacian_energy(gray: np.ndarray) -> float:
    """Mean absolute 3x3 Laplacian of a uint8 [H, W] image, in gray levels."""
    return float(np.abs(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F, ksize=1)).mean())


def images_of(folder: Path) -> dict[str, Path]:
    """id (file stem) → image path of a folder."""
    if not folder.is_dir():
        raise SystemExit(f"--dirs: {folder} is not a folder")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and is_image_file(p)}


def folder_scores(files: dict[str, Path], ids: list[str], size: tuple[int, int]) -> dict[str, float]:
    """id → Laplacian energy; images of another size are resized (bicubic) to `size` (H, W) first."""
    out = {}
    for pid in ids:
        im = read_image(files[pid], "L")
        if im.shape != size:
            im = cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        out[pid] = laplacian_energy(im)
    return out


def summarise(scores: dict[str, float], ref: dict[str, float]) -> dict:
    """Overall and per-subset mean energy, and its ratio to the reference's on the same ids."""

    def part(ids: list[str]) -> dict:
        mean = float(np.mean([scores[i] for i in ids]))
        return {
            "n": len(ids),
            "laplacian": round(mean, 3),
            "ratio": round(mean / np.mean([ref[i] for i in ids]), 3),
        }

    ids = sorted(scores)
    subsets = sorted({subset_of(i) for i in ids})
    return {**part(ids), "subsets": {s: part([i for i in ids if subset_of(i) == s]) for s in subsets}}


def grid_columns(grid: np.ndarray, size: tuple[int, int] = (250, 200), gap: int = 2) -> list[float]:
    """Mean Laplacian energy of each column of an `image_grid` of `size` (H, W) tiles `gap` apart."""
    h, w = size
    rows, cols = (grid.shape[0] + gap) // (h + gap), (grid.shape[1] + gap) // (w + gap)
    return [
        float(
            np.mean(
                [
                    laplacian_energy(
                        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w]
                    )
                    for r in range(rows)
                ]
            )
        )
        for c in range(cols)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", type=Path, help="folder of the artists' sketches")
    ap.add_argument("--dirs", nargs="+", help="NAME=FOLDER or FOLDER (named by the folder)")
    ap.add_argument("--grid", nargs="+", type=Path, help="sample grids (coarse / refined / target columns)")
    args = ap.parse_args()
    if args.grid:
        table = {}
        for path in args.grid:
            coarse, refined, target = grid_columns(read_image(path, "L"))[:3]
            table[str(path)] = {
                "coarse": round(coarse, 3),
                "refined": round(refined, 3),
                "target": round(target, 3),
            }
            print(f"{path}: coarse {coarse:.2f} refined {refined:.2f} target {target:.2f}")
        print(json.dumps(table))
        return
    if not (args.gt and args.dirs):
        ap.error("give --gt and --dirs, or --grid")
    gt = images_of(args.gt)
    named = []
    for spec in args.dirs:
        name, _, path = spec.rpartition("=")
        named.append((name or Path(path).name, images_of(Path(path))))
    ids = sorted(set(gt).intersection(*(set(f) for _, f in named)))
    if not ids:
        raise SystemExit("no id is found in every folder and in --gt")
    size = read_image(gt[ids[0]], "L").shape
    ref = folder_scores(gt, ids, size)
    table = {"artist": summarise(ref, ref)}
    for name, files in named:
        table[name] = summarise(folder_scores(files, ids, size), ref)
    subsets = sorted(table["artist"]["subsets"])
    print(
        "| sketches | overall ("
        + str(len(ids))
        + ") | "
        + " | ".join(f"{s} ({table['artist']['subsets'][s]['n']})" for s in subsets)
        + " |"
    )
    print("|---" * (len(subsets) + 2) + "|")
    for name, row in table.items():
        cells = [row] + [row["subsets"][s] for s in subsets]
        print(f"| {name} | " + " | ".join(f"{c['laplacian']:.2f} ({c['ratio']:.2f})" for c in cells) + " |")
    print(json.dumps(table))


if __name__ == "__main__":
    main()
