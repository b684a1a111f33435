"""How much of a method's FSIM comes from the dark frame the artists drew round a sketch.

Many artists' sketches of the CUFS XM2VTS part have a dark ruled frame at the image edge (the
scanned sheet's border). A method trained on sketches that keep it learns to draw it; `ide`'s CUFS
copy keeps it in only 19 of its 100 XM2VTS training sketches (datasets/README.md). This swaps
the outer W pixels of two folders' sketches (each takes the other's frame) and scores them against
the artists' sketches of the same ids, per part:

    python bench/frame.py --gt DATA/CUFS/test/sketches --pred out/cufs_s0 \
        --other DATA/results/pix2pix_cGAN/CUFS --widths 4 8

Printed per part: the mean gray of the outer 2 px (artist, --pred, --other), FSIM of --pred and
--other as they are, and each with the other's frame. (A white frame is no neutral control: the
artists' paper is not white, and a flat 255 border costs FSIM even where no frame was drawn.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ide.data.folders import _index_folder, subset_of  # noqa: E402
from ide.data.io import read_image  # noqa: E402
from ide.metrics.arrays import score_arrays  # noqa: E402


def with_frame(inner: np.ndarray, outer: np.ndarray, width: int) -> np.ndarray:
    """`inner` [N, H, W] with its outer `width` pixels taken from `outer` (same shape)."""
    out = outer.copy()
    out[:, width:-width, width:-width] = inner[:, width:-width, width:-width]
    return out


def border_gray(images: np.ndarray, width: int = 2) -> float:
    """Mean gray level of the outer `width` pixels of uint8 [N, H, W] images."""
    mask = np.ones(images.shape[1:], bool)
    mask[width:-width, width:-width] = False
    return float(images[:, mask].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", type=Path, required=True, help="the artists' sketches")
    ap.add_argument("--pred", type=Path, required=True, help="the sketches to give another frame")
    ap.add_argument("--other", type=Path, required=True, help="sketches whose frame is lent")
    ap.add_argument("--widths", type=int, nargs="+", default=[4, 8])
    args = ap.parse_args()
    folders = [_index_folder(p) for p in (args.gt, args.pred, args.other)]
    ids = sorted(set(folders[0]).intersection(folders[1], folders[2]))
    if not ids:
        raise SystemExit("no id is in all three folders")
    for part in sorted({subset_of(i) for i in ids}):
        pids = [i for i in ids if subset_of(i) == part]
        gt, pred, other = (np.stack([read_image(f[i], "L") for i in pids]) for f in folders)
        grays = " / ".join(f"{border_gray(x):.0f}" for x in (gt, pred, other))
        print(f"{part} ({len(pids)}): outer 2 px gray, artist / pred / other {grays}")
        print(
            f"  FSIM pred {score_arrays(pred, gt)['fsim']:.4f}, other {score_arrays(other, gt)['fsim']:.4f}"
        )
        for w in args.widths:
            o_pred = score_arrays(with_frame(other, pred, w), gt)["fsim"]
            p_other = score_arrays(with_frame(pred, other, w), gt)["fsim"]
            print(f"  {w} px: pred with other's frame {p_other:.4f}; other with pred's frame {o_pred:.4f}")


if __name__ == "__main__":
    main()
