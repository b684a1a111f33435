"""`ide coarse`: stage-1 coarse sketches of every photo of a split, written as gray PNGs."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from ide.config import Config
from ide.data.dataset import load_data
from ide.data.io import write_png
from ide.errors import UserError
from ide.pgm.cache import cached_coarse
from ide.pgm.prepare import PreparedSplit


def coarse_split(cfg: Config, split: str, out: Path) -> None:
    """Write out/<id>.png (gray 8-bit) for every photo of `split` of cfg.data.

    The bank is the train split; for split "train" each photo's own pair is left out.
    """
    t0 = time.perf_counter()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the coarse sketches")
    bank = PreparedSplit(load_data(cfg.data, "train"), cfg.stage1.background)
    target = bank if split == "train" else PreparedSplit(load_data(cfg.data, split), cfg.stage1.background)
    sketches = cached_coarse(target, bank, cfg.stage1, cfg.data.cache_dir, leave_one_out=split == "train")
    out.mkdir(parents=True, exist_ok=True)
    for pid, image in tqdm(list(zip(target.ids, sketches)), desc="writing", unit="png"):
        write_png(out / f"{pid}.png", image)
    seconds = time.perf_counter() - t0
    print(f"ide coarse: wrote {len(target)} coarse sketches of {split} to {out} in {seconds:.1f} s")
