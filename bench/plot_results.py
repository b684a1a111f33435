"""Plots of scored results: a bar chart of FSIM per method and subset, and FSIM histograms.

Reads `ide metrics --json` files (which hold the per-image scores) and writes two PNGs of
numbers only (no face images):

    python bench/plot_results.py --title "CUFS test (338)" --out imgs/results_cufs \
        "stage 1=results/cufs/stage1_blend8.json" "stage 1+2=results/cufs/refined.json" \
        "SCA-GAN=results/cufs/sca-gan.json"

→ imgs/results_cufs_bars.png, imgs/results_cufs_hist.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def load(spec: str) -> tuple[str, dict]:
    """'name=path.json' → (name, summary)."""
    name, _, path = spec.partition("=")
    if not path or not Path(path).is_file():
        raise SystemExit(f"plot_results: expected NAME=FILE.json with an existing file, got {spec!r}")
    return name, json.loads(Path(path).read_text())


def bars(results: list[tuple[str, dict]], title: str, out: Path) -> None:
    """Grouped bars: FSIM overall and per subset, one colour per method."""
    groups = ["overall", *sorted({s for _, r in results for s in r.get("subsets", {})})]
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(groups), 3.6))
    for i, (name, r) in enumerate(results):
        vals = [
            r["fsim"] if g == "overall" else r.get("subsets", {}).get(g, {}).get("fsim", np.nan)
            for g in groups
        ]
        pos = np.arange(len(groups)) + (i - (len(results) - 1) / 2) * width
        ax.bar(pos, vals, width, label=name)
        for x, v in zip(pos, vals):
            if np.isfinite(v):
                ax.text(x, v + 0.002, f"{v:.3f}", ha="center", va="bottom", fontsize=6, rotation=90)
    finite = [v for _, r in results for v in [r["fsim"], *(s["fsim"] for s in r.get("subsets", {}).values())]]
    ax.set_ylim(min(finite) - 0.03, max(finite) + 0.03)
    ax.set_xticks(np.arange(len(groups)), [f"{g}" for g in groups])
    ax.set_ylabel("FSIM (mean over images)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)


def histograms(results: list[tuple[str, dict]], title: str, out: Path) -> None:
    """Per-image FSIM distribution of every method (step histograms on shared bins)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    scores = [np.array([p["fsim"] for p in r["per_image"]]) for _, r in results]
    bins = np.linspace(min(s.min() for s in scores), max(s.max() for s in scores), 30)
    for (name, _), s in zip(results, scores):
        ax.hist(s, bins=bins, histtype="step", linewidth=1.4, label=f"{name} (median {np.median(s):.3f})")
    ax.set_xlabel("per-image FSIM")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="NAME=metrics.json (from ide metrics --json)")
    ap.add_argument("--title", required=True)
    ap.add_argument("--out", required=True, help="output prefix: PREFIX_bars.png and PREFIX_hist.png")
    args = ap.parse_args()
    results = [load(s) for s in args.results]
    prefix = Path(args.out)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    bars(results, args.title, prefix.with_name(prefix.name + "_bars.png"))
    histograms(results, args.title, prefix.with_name(prefix.name + "_hist.png"))
    print(f"wrote {prefix}_bars.png and {prefix}_hist.png")


if __name__ == "__main__":
    main()
