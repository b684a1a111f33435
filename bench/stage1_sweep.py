"""Stage-1 settings on a validation part of the training set (never the test set).

Each setting's coarse sketches of `--count` training photos (spread over the subsets by
`validation_index`), each made leave-one-out from the rest of the training bank, scored by
FSIM / SSIM against their sketches. One line per setting, then a JSON list.

    python bench/stage1_sweep.py --data ../shared/data/CUFS --count 60 \
        --try search=3 --try k=5 --try k=20 --try lam=0.5 --try norm=meanstd
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from ide.config import Stage1Config, load_config
from ide.data.folders import load_split, subset_of, validation_index
from ide.data.io import to_gray
from ide.pgm.synthesis import coarse_sketches
from ide.pipeline import score_arrays


def setting(base: Stage1Config, spec: str) -> Stage1Config:
    """'k=5,lam=0.5' → base with those fields replaced (types from the dataclass); list fields
    take '+'-separated items: 'features=intensity+dog1,feature_weights=1+0.5'."""
    out = base
    for item in filter(None, spec.split(",")):
        key, value = item.split("=", 1)
        old = getattr(base, key)
        if isinstance(old, tuple):
            kind = float if key == "feature_weights" else str
            new = tuple(kind(v) for v in value.split("+") if v)
        else:
            new = type(old)(value)
        out = dataclasses.replace(out, **{key: new})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/CUFS")
    ap.add_argument("--config", default="configs/cufs.yaml", help="base stage-1 settings")
    ap.add_argument("--count", type=int, default=60, help="validation photos (leave-one-out)")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="K=V[,K=V]")
    args = ap.parse_args()
    base = load_config(args.config, [f"data.root={args.data}"]).stage1
    train = load_split(args.data, "train")
    idx = validation_index(train.ids, args.count)
    bank_p = train.photos  # colour where the data has it: the background model's GrabCut uses it
    bank_s = np.stack([to_gray(s) for s in train.sketches])
    subsets = [subset_of(train.ids[i]) for i in idx]
    rows = []
    for spec in ["", *args.tries]:
        cfg = setting(base, spec)
        t0 = time.perf_counter()
        coarse = coarse_sketches(bank_p, bank_s, bank_p[idx], cfg, exclude=idx, progress=False)
        seconds = time.perf_counter() - t0
        row = {"setting": spec or "base", "seconds_per_photo": round(seconds / len(idx), 3)}
        row.update({k: round(v, 4) for k, v in score_arrays(coarse, bank_s[idx]).items()})
        for name in sorted(set(subsets)):
            part = [j for j, s in enumerate(subsets) if s == name]
            row[f"fsim_{name}"] = round(score_arrays(coarse[part], bank_s[idx][part])["fsim"], 4)
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
