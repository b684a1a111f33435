"""How well `ide align` finds faces and eyes under rotation, scale and shift.

Every CUFS photo is aligned already (200x250, eye centres at the layout (75,125) and (127,125)), so
its eyes are known. Each photo is placed on a larger gray canvas by a random similarity transform
(rotation ±20°, scale 0.7-1.4×, shift ±50 px; fixed seed, one pose stream per photo so a subset sees
the same poses as the full run), `detect_eyes` runs on the canvas, and the true eyes are carried
through the canvas→200x250 warp that alignment would use. The eye error of a face is the larger of
its two eyes' distances from the layout, in pixels of the 200x250 output (the eyes are 52 px apart).
A photo counts as found when `detect_eyes` returns a pair (a wrong pair still counts as found and
shows in the error). Reported overall and per rotation and scale bucket; the last line is JSON.

With `--reference`, the mean face of the CUFS **training** photos (never the test photos) refines
each detection (`eye_refine.refine_eyes`); the Haar eyes and the refined eyes of the same detection are
both scored, so one run prints the table before and after refinement.

Photos not at the layout are reported apart as well as in the whole: a test photo whose top or
bottom rows (or left or right columns) are black (every pixel <= 24) over more than 20% of its
height (width) was padded when it was made, its face moved off the layout, and the layout points
are not its eyes. The criterion reads only the photo, not the aligner; it lists the photos by name.

The test photos are the benchmark. `--calibrate` instead runs on the training photos (another seed)
and prints the eye-offset constants of `ide/data/align.py` (CALIBRATION): the test photos never tune.
`--split train` runs the same report on the training photos (another seed again), and with
`--reference` refines each against the mean of the other training photos (leave one out): the
refinement's settings are chosen there.

    OMP_NUM_THREADS=1 python bench/align.py --limit 40     # a spread subset
    OMP_NUM_THREADS=1 python bench/align.py                # all 338 test photos
    OMP_NUM_THREADS=1 python bench/align.py --reference    # + refinement against the training mean face
    OMP_NUM_THREADS=1 python bench/align.py --calibrate    # training photos → CALIBRATION
    OMP_NUM_THREADS=1 python bench/align.py --split train --reference --poses 3  # tuning the refinement
    # the full run in 3 processes, then one report:
    for k in 0 1 2; do python bench/align.py --shard $k/3 --save /tmp/align_$k.json & done; wait
    python bench/align.py --merge /tmp/align_0.json /tmp/align_1.json /tmp/align_2.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from ide.data import align, eye_refine
from ide.data.io import is_image_file, read_image
from ide.data.layout import CUFS_EYES

CANVAS = 560  # square canvas side: a 1.4× photo turned 20° and shifted 50 px still fits
FILL = 127  # canvas gray outside the photo
ROT_EDGES = (0, 5, 10, 15, 20.001)  # |rotation| buckets, degrees
SCALE_EDGES = (0.7, 0.9, 1.1, 1.4001)
PAD_DARK, PAD_SHARE = 24, 0.2  # a black band (all pixels <= PAD_DARK) over PAD_SHARE of the photo: padded


def off_layout(gray: np.ndarray) -> bool:
    """True when the photo has a black band over PAD_SHARE of its height (top or bottom rows) or width
    (left or right columns): a photo padded off the layout (see the module docstring)."""
    for dark, length in (
        ((gray <= PAD_DARK).all(1), gray.shape[0]),
        ((gray <= PAD_DARK).all(0), gray.shape[1]),
    ):
        for run in (dark, dark[::-1]):
            band = len(run) if run.all() else int(np.argmin(run))
            if band > PAD_SHARE * length:
                return True
    return False


def photo_files(root: Path, split: str, limit: int | None) -> list[Path]:
    """Sorted photo files of CUFS/<split>/photos; `limit` picks that many spread evenly (all subsets)."""
    folder = root / "CUFS" / split / "photos"
    files = sorted(p for p in folder.iterdir() if is_image_file(p)) if folder.is_dir() else []
    if not files:
        raise SystemExit(f"no photos in {folder}; set IDE_DATA or --data to the folder holding CUFS/")
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


def random_pose(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(rotation degrees, scale, shift x, shift y) of one trial."""
    return float(rng.uniform(-20, 20)), float(rng.uniform(0.7, 1.4)), *map(float, rng.uniform(-50, 50, 2))


def place(rgb: np.ndarray, pose: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The photo on the canvas under `pose` → (uint8 [CANVAS, CANVAS, 3], float64 [2, 3] photo→canvas)."""
    angle, scale, sx, sy = pose
    h, w = rgb.shape[:2]
    # cv2's positive angle turns counter-clockwise on screen; the photo centre goes to canvas centre + shift
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
    matrix[:, 2] += np.array([(CANVAS - w) / 2 + sx, (CANVAS - h) / 2 + sy])
    src = cv2.GaussianBlur(rgb, (0, 0), 0.5 * np.sqrt(1 / scale**2 - 1)) if scale < 1 else rgb
    canvas = cv2.warpAffine(
        src, matrix, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR, borderValue=(FILL, FILL, FILL)
    )
    return canvas, matrix


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def trial(rgb: np.ndarray, pose, reference: eye_refine.Reference | None = None) -> tuple:
    """Eye errors (px, 200x250 frame) of one placed photo: (Haar, refined against `reference` with the
    move guard only, refined with the correlation guard; the last two None without a reference);
    (None, None, None) when no face was found."""
    canvas, to_canvas = place(rgb, pose)
    try:
        left, right = align.detect_eyes(canvas)
    except align.AlignError:
        return None, None, None
    truth = apply(to_canvas, np.reshape(CUFS_EYES, (2, 2)))

    def error(left, right) -> float:
        landed = apply(align.eye_transform(left, right, CUFS_EYES), truth)
        return float(np.hypot(*(landed - np.reshape(CUFS_EYES, (2, 2))).T).max())

    if reference is None:
        return error(left, right), None, None
    gray = cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY)
    refined = error(*eye_refine.refine_eyes(gray, left, right, reference)[:2])
    with move_guard_only():
        return error(left, right), error(*eye_refine.refine_eyes(gray, left, right, reference)[:2]), refined


@contextmanager
def move_guard_only():
    """The refinement's earlier guard, for comparison: any correlation, moves up to REFINE_MAX_MOVE."""
    saved = eye_refine.REFINE_MIN_CC, eye_refine.REFINE_SURE_CC
    eye_refine.REFINE_MIN_CC, eye_refine.REFINE_SURE_CC = -np.inf, np.inf
    try:
        yield
    finally:
        eye_refine.REFINE_MIN_CC, eye_refine.REFINE_SURE_CC = saved


class LeaveOneOut:
    """References for the training photos: for each, the mean of all the others (never itself)."""

    def __init__(self, files: list[Path]):
        self.names = [p.name for p in files]
        self.grays = np.stack([read_image(p, "L").astype(np.float64) for p in files])
        self.total = self.grays.sum(0)

    def without(self, path: Path) -> eye_refine.Reference:
        mean = (self.total - self.grays[self.names.index(path.name)]) / (len(self.names) - 1)
        return eye_refine.Reference(mean.astype(np.float32), tuple(map(float, CUFS_EYES)))


def summary(errors: list[float | None]) -> dict:
    found = [e for e in errors if e is not None]
    return {
        "n": len(errors),
        "found_pct": round(100 * len(found) / max(len(errors), 1), 1),
        "median_px": round(float(np.median(found)), 2) if found else None,
        "p90_px": round(float(np.percentile(found, 90)), 2) if found else None,
        "worst_px": round(float(np.max(found)), 2) if found else None,
        "over_4px": sum(e > 4 for e in found),
    }


def bucket_rows(poses: list, errors: list, index: int, edges: tuple, label: str) -> dict:
    rows = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [e for p, e in zip(poses, errors) if lo <= (abs(p[index]) if index == 0 else p[index]) < hi]
        rows[f"{label} {lo:g}-{round(hi, 1):g}"] = summary(sel)
    return rows


def calibrate(files: list[Path], seed: int, poses: int) -> None:
    """Residual eye offsets on the training photos under align.CALIBRATION → the CALIBRATION to store.

    Per detection, the true eyes are expressed in the upright frame of the detected ones (left eye at
    (0, 0), right at (1, 0), units of the eye distance); their mean is what the current CALIBRATION
    leaves, so the new constants are the current ones plus it (rerun to check it is near zero).
    """
    residuals, missed = [], 0
    for i, path in enumerate(files):
        rgb = read_image(path, "RGB")
        rng = np.random.default_rng([seed, i])
        for pose in [random_pose(rng) for _ in range(poses)]:
            canvas, to_canvas = place(rgb, pose)
            try:
                left, right = align.detect_eyes(canvas)
            except align.AlignError:
                missed += 1
                continue
            frame = align.eye_transform(left, right, (0.0, 0.0, 1.0, 0.0))
            truth = apply(frame, apply(to_canvas, np.reshape(CUFS_EYES, (2, 2))))
            residuals.append((truth - [[0, 0], [1, 0]]).ravel())
    res = np.array(residuals)
    mean, spread = res.mean(0), res.std(0)
    scale = CUFS_EYES[2] - CUFS_EYES[0]
    print(f"{len(res)} detections, {missed} missed, on {len(files)} training photos x {poses} poses")
    print("residual mean (x_l, y_l, x_r, y_r) in eye distances:", np.round(mean, 4).tolist())
    print("residual std in 200x250 px:", np.round(spread * scale, 2).tolist())
    print("CALIBRATION =", tuple(np.round(np.add(align.CALIBRATION, mean), 4).tolist()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("IDE_DATA", "../shared/data"))
    ap.add_argument("--limit", type=int, default=None, help="photos, spread over the subsets (default all)")
    ap.add_argument("--poses", type=int, default=1, help="random poses per photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibrate", action="store_true", help="training photos: print align.CALIBRATION")
    ap.add_argument(
        "--split", choices=("test", "train"), default="test", help="train: leave-one-out reference, tuning"
    )
    ap.add_argument(
        "--reference", action="store_true", help="also refine against the mean of the CUFS training photos"
    )
    ap.add_argument("--shard", default="0/1", help="K/N: only every N-th photo from the K-th (0-based)")
    ap.add_argument("--save", help="write the trials of this run (or shard) to this JSON file")
    ap.add_argument("--merge", nargs="+", help="report the trials of these --save files together")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if args.calibrate:
        calibrate(photo_files(Path(args.data), "train", args.limit), args.seed + 1000, args.poses)
        return
    if args.merge:  # shards of one run, written with --save: the report of the whole
        rows = [r for f in args.merge for r in json.loads(Path(f).read_text())["rows"]]
        report(rows, sum(json.loads(Path(f).read_text())["cpu_seconds"] for f in args.merge))
        return
    files = photo_files(Path(args.data), args.split, args.limit)
    seed = args.seed + (2000 if args.split == "train" else 0)
    reference = loo = None
    if args.reference and args.split == "train":
        loo = LeaveOneOut(photo_files(Path(args.data), "train", None))
        print(f"reference: for each photo the mean of the other {len(loo.names) - 1} CUFS training photos")
    elif args.reference:
        train = photo_files(Path(args.data), "train", None)
        reference = eye_refine.load_reference(train[0].parent, CUFS_EYES)
        print(f"reference: mean of the {len(train)} CUFS training photos")
    k, n = map(int, args.shard.split("/"))
    rows = []
    start = time.process_time()
    for path in files[k::n]:
        rgb = read_image(path, "RGB")
        rng = np.random.default_rng([seed, _index(path)])
        padded = off_layout(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        for _ in range(args.poses):
            pose = random_pose(rng)
            error, moved, refined = trial(rgb, pose, loo.without(path) if loo else reference)
            rows.append(
                {"photo": path.stem, "pose": pose, "off_layout": padded}
                | {"error": error, "refined_move_guard": moved, "refined": refined}
            )
    cpu = time.process_time() - start
    if args.save:
        Path(args.save).write_text(json.dumps({"rows": rows, "cpu_seconds": cpu}))
    report(rows, cpu)


def report(rows: list[dict], cpu: float) -> None:
    """Prints the tables (Haar eyes; refined, when the rows have it) and a JSON line each."""
    apart = sorted({r["photo"] for r in rows if r.get("off_layout")})
    titles = {
        "error": "Haar eyes",
        "refined_move_guard": "refined, guard: moves up to 4 px",
        "refined": "refined, guard: correlation and moves up to 4 px (10 px when the fit is sure)",
    }
    keys = [k for k in titles if any(r.get(k) is not None for r in rows)]
    for key in keys:
        print(f"\n== {titles[key]}")
        table(rows, cpu, key)
        if apart:
            print(f"-- without the photos not at the layout ({', '.join(apart)}):")
            table([r for r in rows if not r.get("off_layout")], cpu, key)


def table(rows: list[dict], cpu: float, key: str) -> None:
    """Prints the table and the JSON line of trials {photo, pose, error}."""
    poses, errors = [r["pose"] for r in rows], [r[key] for r in rows]
    subsets = [r["photo"].split("_")[0] for r in rows]
    result = {"eyes": key, "photos": len(set(r["photo"] for r in rows)), "trials": len(rows)}
    result["cpu_seconds_per_trial"] = round(cpu / max(len(rows), 1), 3)
    result |= summary(errors)
    result["buckets"] = bucket_rows(poses, errors, 0, ROT_EDGES, "rot") | bucket_rows(
        poses, errors, 1, SCALE_EDGES, "scale"
    )
    result["buckets"] |= {
        s: summary([e for e, t in zip(errors, subsets) if t == s]) for s in sorted(set(subsets))
    }
    print(f"{'':12} {'n':>4} {'found%':>7} {'median':>7} {'p90':>6} {'worst':>6} {'>4px':>5}")
    for name, row in [("all", summary(errors))] + list(result["buckets"].items()):
        print(
            f"{name:12} {row['n']:4d} {row['found_pct']:7.1f} "
            + " ".join(
                f"{row[k]:6.2f}" if row[k] is not None else "     -"
                for k in ("median_px", "p90_px", "worst_px")
            )
            + f" {row['over_4px']:5d}"
        )
    print(json.dumps(result))


_ALL: list[str] = []


def _index(path: Path) -> int:
    """The photo's index in the full sorted test list, so a subset draws the same poses as the full run."""
    if not _ALL:
        _ALL.extend(p.name for p in sorted(q for q in path.parent.iterdir() if is_image_file(q)))
    return _ALL.index(path.name)


if __name__ == "__main__":
    main()
