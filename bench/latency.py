"""Single-photo latency of `Synthesizer(photo)`: kept bank side against redone bank side, one process.

warm: one `Synthesizer` sketches the photos one at a time; the prepared bank, its tensors and the
stage-1 search's bank-side tables are kept between calls (the first call, which builds them, is
not timed). cold: the per-call work of an API that keeps nothing, as `Synthesizer(photo)` did
before the bank side was kept: a fresh `Stage1` for every photo, the whole bank re-whitened, and
the photo through the background model three times (the photo channel, stage 1, stage 2). The
two alternate photo by photo, so other load on a shared machine falls on both alike.

    python bench/latency.py --checkpoint runs/cufs_cpu/checkpoints/best.pt --count 3

Photos: --photos DIR (aligned), else the test photos of the checkpoint's data.root, taken evenly
over the sorted ids. Ends with one JSON line: cold_seconds, warm_seconds (medians of wall time),
ratio, cpu_ratio (the same from this process's CPU time), ...
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ide.data.dataset import load_data
from ide.data.io import is_image_file, read_image
from ide.pgm.prepare import prepare_photos
from ide.pgm.synthesis import Stage1
from ide.pipeline import Synthesizer
from ide.provenance import cpu_model


def photos_to_time(synth: Synthesizer, folder: str | None, count: int) -> list[np.ndarray]:
    """`count` uint8 [H, W, 3] photos: from `folder`, or spread over the checkpoint's test split."""
    if folder:
        files = sorted(p for p in Path(folder).iterdir() if is_image_file(p))
        return [read_image(p, "RGB") for p in files[:count]]
    photos = load_data(synth.cfg.data, "test").photos
    return [photos[i] for i in np.linspace(0, len(photos) - 1, count).round().astype(int)]


def cold_call(synth: Synthesizer, photo: np.ndarray) -> np.ndarray:
    """One photo with nothing kept between calls (see the module docstring)."""
    background = synth.cfg.stage1.background
    bank = synth.stage1.bank_photos
    prepare_photos(bank, background)  # the bank was re-whitened on every call (its time, not its result)
    stage1 = Stage1(bank, synth.stage1.bank_sketches, synth.cfg.stage1)
    for _ in range(2):  # the photo channel and stage 1 each ran the background model once more
        prepare_photos(photo[None], background)
    prepared = prepare_photos(photo[None], background)
    return synth.refine(stage1(prepared), prepared)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--photos", help="folder of aligned photos (default: the checkpoint's test split)")
    ap.add_argument("--count", type=int, default=3, help="photos timed (default 3)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    synth = Synthesizer.from_checkpoint(args.checkpoint, args.overrides, "cpu")
    photos = photos_to_time(synth, args.photos, args.count)
    synth(photos[0])  # builds the kept bank side: not timed
    times = {"cold": [], "warm": [], "cold_cpu": [], "warm_cpu": []}
    for photo in photos:
        sketches = []
        for name, call in (("cold", lambda p: cold_call(synth, p)), ("warm", synth)):
            cpu, wall = time.process_time(), time.perf_counter()
            sketches.append(call(photo))
            times[name].append(time.perf_counter() - wall)
            times[f"{name}_cpu"].append(time.process_time() - cpu)
        assert np.array_equal(*sketches), "kept and redone bank side gave different sketches"
        print(", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "cold_seconds": round(med["cold"], 3),
        "warm_seconds": round(med["warm"], 3),
        "ratio": round(med["cold"] / med["warm"], 2),
        # CPU seconds of this process: on a shared, busy machine steadier than wall time
        "cpu_ratio": round(med["cold_cpu"] / med["warm_cpu"], 2),
        "photos": len(photos),
        "bank": int(synth.stage1.bank_photos.shape[0]),
        "threads": args.threads,
        "cpu": cpu_model() or platform.processor(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
