"""How the modified XM2VTS pairs of CUFS/extras differ in geometry from the original test pairs.

For each XM2VTS test id, an affine ECC fit (OpenCV) maps the original sketch onto its modified
copy; the fit's rotation (degrees), scale and shift of the image centre (px) are summarised over
all ids. The
modified versions replace the dark photo backdrops and clean the sketch borders, and this shows
they were also re-aligned, so the XM2VTS training photos of the bank sit in another geometry
than the original test photos.

    python bench/xm2vts_geometry.py --data $IDE_DATA/CUFS
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

from ide.data.io import read_image

# The research data: $IDE_DATA, else ../shared/data beside the repository (datasets/README.md).
DATA = Path(os.environ.get("IDE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def affine_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """2x3 affine warp W with dst(x) ≈ src(W x) by ECC on uint8 gray images; None if it fails."""
    warp = np.eye(2, 3, dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    try:
        _, warp = cv2.findTransformECC(
            dst.astype(np.float32), src.astype(np.float32), warp, cv2.MOTION_AFFINE, crit, None, 5
        )
    except cv2.error:
        return None
    return warp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA / "CUFS"))
    args = ap.parse_args()
    root = Path(args.data)
    modified = {p.stem: p for p in (root / "extras" / "XM2VTS_ANS-GDA_modified" / "sketches").iterdir()}
    rows = []
    for orig in sorted((root / "test" / "sketches").glob("XM2VTS_*")):
        if orig.stem not in modified:
            continue
        src = read_image(orig, "L")
        w = affine_fit(src, read_image(modified[orig.stem], "L"))
        if w is None:
            continue
        a, b = w[:, :2], w[:, 2]
        centre = np.array([src.shape[1] / 2, src.shape[0] / 2])  # (x, y)
        rows.append(
            {
                "rotation_deg": math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1])),
                "scale": float(math.sqrt(abs(np.linalg.det(a)))),
                "centre_shift_px": float(np.hypot(*(a @ centre + b - centre))),
            }
        )
    out = {"pairs": len(rows)}
    for key in ("rotation_deg", "scale", "centre_shift_px"):
        v = np.array([r[key] for r in rows])
        size = np.abs(v - 1) if key == "scale" else np.abs(v)  # how far from the identity
        out[key] = {
            "median": round(float(np.median(v)), 3),
            "median_abs_deviation": round(float(np.median(size)), 3),
            "p90_abs_deviation": round(float(np.percentile(size, 90)), 3),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
