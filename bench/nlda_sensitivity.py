"""How much the NLDA figure moves with the split seed and with the probe/gallery roles swapped.

Scores the published results of the data folder (env var IDE_DATA, default ../shared/data):

    python bench/nlda_sensitivity.py            # CUFS seeds 0-4, CUFSF seeds 0-2
    python bench/nlda_sensitivity.py CUFS       # one dataset

One line per method: the figure for each seed (peak of the mean curve, %), their spread, and the
figure with probe = synthesized sketch and gallery = artist's sketch (seed 0).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ide.data.io import read_image
from ide.metrics.recognition import default_train_count, nlda_protocol

DATA = Path(os.environ.get("IDE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
RUNS = {  # dataset: (methods with results, seeds)
    "CUFS": (("pix2pix_cGAN", "CA-GAN", "SCA-GAN"), range(5)),
    "CUFSF": (("pix2pix_cGAN", "SCA-GAN"), range(3)),
}


def load(folder: Path, ids: list[str]) -> np.ndarray:
    """uint8 [N, H, W] gray images <id>.* of folder, in the order of ids."""
    files = {p.stem: p for p in folder.iterdir()}
    return np.stack([read_image(files[i], "L") for i in ids])


def main(datasets: list[str]) -> None:
    for dataset in datasets:
        methods, seeds = RUNS[dataset]
        gt_dir = DATA / dataset / "test" / "sketches"
        ids = sorted(p.stem for p in gt_dir.iterdir())
        artist = load(gt_dir, ids)
        n_train = default_train_count(len(ids))
        for method in methods:
            synth = load(DATA / "results" / method / dataset, ids)
            start = time.perf_counter()
            figures = [100 * nlda_protocol(artist, synth, n_train, seed=s)["mean"] for s in seeds]
            swapped = 100 * nlda_protocol(synth, artist, n_train, seed=0)["mean"]
            seconds = (time.perf_counter() - start) / (len(figures) + 1)
            print(
                f"{dataset} {method}: seeds {', '.join(f'{f:.2f}' for f in figures)} "
                f"(spread {max(figures) - min(figures):.2f}); roles swapped {swapped:.2f}; "
                f"{seconds:.1f} s per protocol run",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:] or list(RUNS))
