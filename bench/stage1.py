"""Stage-1 speed on the CUFS bank, against the plain reference search, with a neighbour check.

    python bench/stage1.py [--data $IDE_DATA/CUFS] [--count 338] [--reference 1]

Bank: the train split (268 pairs for CUFS). Queries: the first --count test photos. Times the
background model (with --set background=10, as configs/cufs*.yaml), the exact K-NN search and
the MWF weight solve of `ide.pgm` with the stage-1 defaults, then the
numpy reference search (`ide.pgm.reference`) on --reference photos, and checks that both
return the same neighbours. Prints as it goes; the last line is one JSON object:
{"seconds_per_photo", "reference_seconds_per_photo", "speedup", "same_neighbours", "peak_rss_mb",
"search_seconds_per_photo", "solve_seconds_per_photo", "background_seconds_per_photo", ...}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from ide.config import Stage1Config
from ide.data.folders import load_split
from ide.pgm.features import build_features
from ide.pgm.grid import PatchGrid
from ide.pgm.prepare import prepare_photos
from ide.pgm.reference import reference_knn
from ide.pgm.search import knn_search
from ide.pgm.synthesis import metric_of, synthesize

# The research data: $IDE_DATA, else ../shared/data beside the repository (datasets/README.md).
DATA = Path(os.environ.get("IDE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA / "CUFS"), help="dataset root with train/ and test/")
    ap.add_argument("--count", type=int, default=338, help="test photos to time (default 338, all of CUFS)")
    ap.add_argument("--reference", type=int, default=1, help="photos for the reference search (slow)")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a Stage1Config field, e.g. --set k=5",
    )
    args = ap.parse_args()
    cfg = Stage1Config(device="cpu")
    for item in args.overrides:  # lists as '+'-separated items: features=intensity+dog1
        key, value = item.split("=", 1)
        old = getattr(cfg, key)
        if isinstance(old, tuple):
            new = tuple((float if key == "feature_weights" else str)(v) for v in value.split("+") if v)
        else:
            new = type(old)(value)
        cfg = dataclasses.replace(cfg, **{key: new})

    bank_split = load_split(args.data, "train")
    test = load_split(args.data, "test")
    bank = torch.from_numpy(prepare_photos(bank_split.photos, cfg.background))
    t0 = time.perf_counter()  # the background model on the RGB photos, timed per query photo
    queries = torch.from_numpy(prepare_photos(test.photos[: args.count], cfg.background))
    t_background = time.perf_counter() - t0 if cfg.background > 0 else 0.0
    bank_s = torch.from_numpy(bank_split.sketches)
    t0 = time.perf_counter()
    feats = build_features(
        bank.numpy(), queries.numpy(), cfg.features, cfg.feature_weights, cfg.patch
    )  # the bank's maps are made once per bank; timed with the queries' as an upper bound
    t_features = time.perf_counter() - t0
    m, h, w = queries.shape
    grid = PatchGrid(h, w, cfg.patch, cfg.step)
    print(
        f"bank {len(bank)} pairs, {m} query photos {w}x{h}, {grid.count} patches, K={cfg.k}, "
        f"window ±{cfg.search}, norm {cfg.norm}, features {'+'.join(cfg.features)} "
        f"{cfg.feature_weights or ''}, {torch.get_num_threads()} threads",
        flush=True,
    )

    t0 = time.perf_counter()
    nbrs = knn_search(
        bank,
        queries,
        grid,
        cfg.search,
        cfg.k,
        metric_of(cfg),
        torch.full((m,), -1),
        batch=cfg.batch,
        progress=True,
        feats=feats,
    )
    t_search = time.perf_counter() - t0
    print(f"search: {t_search:.1f} s, {t_search / m:.3f} s/photo ({nbrs.widened} rows widened)", flush=True)
    t0 = time.perf_counter()
    synthesize(bank, bank_s, queries, nbrs, grid, cfg, progress=True, feats=feats)
    t_solve = time.perf_counter() - t0
    print(f"weights + blend: {t_solve:.1f} s, {t_solve / m:.3f} s/photo", flush=True)
    rss_fast = peak_rss_mb()

    bank_np = bank.numpy()
    same = True
    t0 = time.perf_counter()
    for i in range(args.reference):
        idx, dist = reference_knn(
            bank_np,
            queries[i].numpy(),
            cfg.patch,
            cfg.step,
            cfg.search,
            cfg.k,
            cfg.norm,
            cfg.floor,
            cfg.brightness,
            feats=None
            if feats is None
            else (feats.bank.numpy(), feats.query[:, i].numpy(), feats.coef, feats.stride),
        )
        equal = np.array_equal(idx, nbrs.index[i].numpy())
        close = np.allclose(dist, nbrs.dist[i].numpy(), rtol=0, atol=1e-5)
        same &= equal and close
        print(f"reference photo {i}: same neighbours {equal}, same distances {close}", flush=True)
    t_ref = (time.perf_counter() - t0) / max(args.reference, 1)

    per_photo = (t_background + t_features + t_search + t_solve) / m
    print(
        json.dumps(
            {
                "seconds_per_photo": round(per_photo, 4),
                "reference_seconds_per_photo": round(t_ref, 2),
                "speedup": round(t_ref / (t_search / m), 1),  # search against search
                "same_neighbours": bool(same),
                "peak_rss_mb": round(rss_fast, 1),
                "search_seconds_per_photo": round(t_search / m, 4),
                "solve_seconds_per_photo": round(t_solve / m, 4),
                "background_seconds_per_photo": round(t_background / m, 4),
                "features_seconds_per_photo": round(t_features / m, 4),
                "photos": m,
                "reference_photos": args.reference,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
