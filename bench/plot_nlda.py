"""NLDA face-recognition curves: rank-1 accuracy vs the number of NLDA dimensions, one line per method.

Reads `ide metrics --recognition --json` files (their "nlda" block) and writes one PNG of numbers
only, one panel per dataset (panels in order of first appearance):

    python bench/plot_nlda.py --out imgs/nlda_curve.png \
        "CUFS:pix2pix=results/cufs/pix2pix_cGAN.json" "CUFS:SCA-GAN=results/cufs/SCA-GAN.json" \
        "CUFSF:pix2pix=results/cufsf/pix2pix_cGAN.json"

Each line is the mean over the random splits; the dot marks its peak (the reported figure).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def load(spec: str) -> tuple[str, str, dict]:
    """'DATASET:NAME=path.json' → (dataset, name, nlda block)."""
    head, _, path = spec.partition("=")
    dataset, _, name = head.partition(":")
    if not path or not name or not Path(path).is_file():
        raise SystemExit(f"plot_nlda: expected DATASET:NAME=FILE.json with an existing file, got {spec!r}")
    summary = json.loads(Path(path).read_text())
    if "nlda" not in summary:
        raise SystemExit(f"plot_nlda: {path} has no 'nlda' block; score it with ide metrics --recognition")
    return dataset, name, summary["nlda"]


def plot(curves: list[tuple[str, str, dict]], out: Path) -> None:
    datasets = list(dict.fromkeys(d for d, _, _ in curves))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        rows = [(name, r) for d, name, r in curves if d == dataset]
        for name, r in rows:
            acc = 100 * np.asarray(r["curve"])
            dims = np.arange(1, len(acc) + 1)
            (line,) = ax.plot(dims, acc, lw=1.2, label=f"{name}: {100 * r['mean']:.1f}% at {r['dims']}")
            ax.plot([r["dims"]], [100 * r["mean"]], "o", ms=4, color=line.get_color())
        r0 = rows[0][1]
        ax.set_title(f"{dataset}: {r0['n_train']} train / {r0['n_test']} test ids, {r0['repeats']} splits")
        ax.set_xlabel("NLDA dimensions")
        ax.set_ylabel("rank-1 recognition rate (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results", nargs="+", help="DATASET:NAME=FILE.json (ide metrics --recognition --json)"
    )
    parser.add_argument(
        "--out", default="imgs/nlda_curve.png", help="PNG to write (default imgs/nlda_curve.png)"
    )
    args = parser.parse_args()
    plot([load(s) for s in args.results], Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
