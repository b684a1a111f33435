"""Stage-1 settings on a validation part of the training set (never the test set).

Each setting's coarse sketches of `--count` training photos (spread over the subsets by
`validation_index`), each made leave-one-out from the rest of the training bank, scored by
FSIM / SSIM against their sketches. One line per setting, then a JSON list.

    python bench/stage1_sweep.py --data ../shared/data/CUFS --count 60 \
        --try search=3 --try k=5 --try k=20 --try lam=0.5 --try norm=meanstd

`--split test` measures instead (for reporting a setting already chosen, never for choosing):
`--count` test photos spread over the subsets the same way, sketched from the whole training bank.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

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
    ap.add_argument("--split", choices=("train", "test"), default="train", help="test: measure only")
    ap.add_argument("--subset", help="keep only the chosen photos of this subset (e.g. XM2VTS)")
    ap.add_argument(
        "--bank-replace",
        metavar="DIR",
        help="a folder with photos/ and sketches/: its pairs replace the bank's pairs of the same id "
        "(the validation photos and their sketches stay the split's own)",
    )
    args = ap.parse_args()
    base = load_config(args.config, [f"data.root={args.data}"]).stage1
    train = load_split(args.data, "train")
    idx = validation_index(train.ids, args.count)
    bank_p = train.photos.copy()  # colour where the data has it: the background model's GrabCut uses it
    bank_s = np.stack([to_gray(s) for s in train.sketches])
    queries, truth = bank_p[idx].copy(), bank_s[idx].copy()
    exclude: list[int | None] = list(idx)
    ids = [train.ids[i] for i in idx]
    if args.split == "test":
        test = load_split(args.data, "test")
        idx = validation_index(test.ids, args.count)
        queries, truth = test.photos[idx], np.stack([to_gray(test.sketches[i]) for i in idx])
        exclude, ids = [None] * len(idx), [test.ids[i] for i in idx]
    if args.bank_replace:
        other = load_split(Path(args.bank_replace).parent, Path(args.bank_replace).name)
        where = {pid: i for i, pid in enumerate(train.ids)}
        swap = [(where[pid], j) for j, pid in enumerate(other.ids) if pid in where]
        changed = sum(not np.array_equal(bank_p[i], other.photos[j]) for i, j in swap)
        for i, j in swap:
            bank_p[i], bank_s[i] = other.photos[j], to_gray(other.sketches[j])
        print(f"bank: {len(swap)} pairs replaced from {args.bank_replace} ({changed} photos differ)")
    if args.subset:
        keep = [j for j, pid in enumerate(ids) if subset_of(pid) == args.subset]
        queries, truth, ids = queries[keep], truth[keep], [ids[j] for j in keep]
        exclude = [exclude[j] for j in keep]
    subsets = [subset_of(pid) for pid in ids]
    rows = []
    for spec in ["", *args.tries]:
        cfg = setting(base, spec)
        t0 = time.perf_counter()
        coarse = coarse_sketches(bank_p, bank_s, queries, cfg, exclude=exclude, progress=False)
        seconds = time.perf_counter() - t0
        row = {"setting": spec or "base", "seconds_per_photo": round(seconds / len(ids), 3)}
        row.update({k: round(v, 4) for k, v in score_arrays(coarse, truth).items()})
        for name in sorted(set(subsets)):
            part = [j for j, s in enumerate(subsets) if s == name]
            row[f"fsim_{name}"] = round(score_arrays(coarse[part], truth[part])["fsim"], 4)
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
