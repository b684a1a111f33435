"""How long `ide metrics` takes on the CUFS test set, and why it is scored the way it is.

1. End to end: `score_folders` on the 338 CUFS test results of one method (read, check, score).
2. On a sample of pairs, in this same process (ratios, since absolute times drift on shared
   machines): the CLI's way (parallel batches, single-threaded torch ops) against sequential
   batches with intra-op threads, and FSIM with float32 FFTs (the default) against float64.

Prints as it goes; the last line is JSON:
{"pairs", "seconds", "cpu_seconds", "threads", "sample_pairs", "parallel_batches_s",
 "intra_op_threads_s", "threads_ratio", "fsim_float32_s", "fsim_float64_s", "float64_ratio", "loadavg"}

    python bench/metrics_speed.py [--data $IDE_DATA] [--method SCA-GAN] [--sample 32]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from ide.data.io import read_image
from ide.metrics import fsim_batch, score_batch
from ide.metrics.folder import pair_files, score_folders, score_images

# The research data: $IDE_DATA, else ../shared/data beside the repository (datasets/README.md).
DATA = Path(os.environ.get("IDE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA), help="folder holding CUFS/ and results/")
    parser.add_argument("--method", default="SCA-GAN", help="results/<method>/CUFS to score")
    parser.add_argument("--sample", type=int, default=32, help="pairs for the in-process comparisons")
    args = parser.parse_args()
    data = Path(args.data)
    pred, gt = data / "results" / args.method / "CUFS", data / "CUFS" / "test" / "sketches"
    threads = torch.get_num_threads()
    print(f"torch threads {threads}, cpu count {os.cpu_count()}, load average {os.getloadavg()}")

    summary: dict = {}
    wall, cpu = _timed(lambda: summary.update(score_folders(pred, gt, None, None, False, "cpu")))
    print(f"ide metrics on {summary['n']} pairs: {wall:.1f} s wall, {cpu:.1f} s CPU")

    items = pair_files(pred, gt, allow_missing=False)[:: max(1, 338 // args.sample)][: args.sample]
    images = [(read_image(p), read_image(g)) for _, p, g in items]
    x = torch.from_numpy(np.stack([p for p, _ in images]))[:, None].double()
    y = torch.from_numpy(np.stack([g for _, g in images]))[:, None].double()
    parallel, _ = _timed(lambda: score_images(images, torch.device("cpu")))

    def sequential() -> None:
        for i in range(0, len(images), 8):
            score_batch(x[i : i + 8], y[i : i + 8])

    intra, _ = _timed(sequential)
    print(f"{len(images)} pairs: parallel batches {parallel:.2f} s, intra-op threads {intra:.2f} s")
    torch.set_num_threads(1)
    f32, _ = _timed(lambda: fsim_batch(x, y))
    f64, _ = _timed(lambda: fsim_batch(x, y, dtype=torch.float64))
    torch.set_num_threads(threads)
    print(f"FSIM alone, one thread: float32 FFTs {f32:.2f} s, float64 FFTs {f64:.2f} s")
    print(json.dumps({
        "pairs": summary["n"], "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2), "threads": threads,
        "sample_pairs": len(images), "parallel_batches_s": round(parallel, 3), "intra_op_threads_s": round(intra, 3),
        "threads_ratio": round(intra / parallel, 2), "fsim_float32_s": round(f32, 3), "fsim_float64_s": round(f64, 3),
        "float64_ratio": round(f64 / f32, 2), "loadavg": [round(v, 2) for v in os.getloadavg()],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
