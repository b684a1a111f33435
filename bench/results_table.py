"""Markdown table of scored results (`ide metrics --json` files): FSIM / SSIM overall and per subset.

python bench/results_table.py "stage 1=results/cufs/stage1.json" "SCA-GAN=results/cufs/SCA-GAN.json"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cell(summary: dict | None) -> str:
    return "–" if summary is None else f"{summary['fsim']:.4f} / {summary['ssim']:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="NAME=metrics.json")
    args = ap.parse_args()
    rows = []
    for spec in args.results:
        name, _, path = spec.partition("=")
        rows.append((name, json.loads(Path(path).read_text())))
    subsets = sorted({s for _, r in rows for s in r.get("subsets", {})})
    subsets = subsets if len(subsets) > 1 else []
    full = max(r["n"] for _, r in rows)
    head = [f"overall ({full})"] + [
        f"{s} ({max(r['subsets'][s]['n'] for _, r in rows if s in r.get('subsets', {}))})" for s in subsets
    ]
    print("| method | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for name, r in rows:
        overall = r if r["n"] == full else None  # a method scored on one part only has no overall
        parts = [cell(r.get("subsets", {}).get(s)) for s in subsets]
        print(f"| {name} | " + " | ".join([cell(overall), *parts]) + " |")


if __name__ == "__main__":
    main()
