"""`ide metrics`: score a folder of synthesized sketches against a folder of ground truth.

Files are paired by stem (`<id>.<ext>`, the extensions may differ), read as gray 8-bit (an RGB
file becomes ITU-R 601 luma, as PIL's `convert("L")`), checked (same size: never resized), then
scored in batches with `ide.metrics.score_batch`. Every check runs before any scoring.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ide.data.folders import _index_folder, subset_of
from ide.data.io import read_image
from ide.errors import UserError
from ide.fileio import write_text
from ide.metrics import score_batch
from ide.metrics.recognition import NLDAOptions, format_nlda, resolve_train, score_pairs
from ide.metrics.sharpness import laplacian_energy
from ide.provenance import provenance

METRICS = ("fsim", "ssim", "psnr")
BATCH = 8  # pairs per score_batch call


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use cpu, cuda or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is visible here; use --device cpu")
    return device


def _index(folder: Path, flag: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserError(f"{flag} folder {folder} not found; give a folder of <id>.png/.jpg/.bmp images")
    files = _index_folder(folder)  # also refuses two files with one id (a.png and a.jpg)
    if not files:
        raise UserError(f"no images (png, jpg, jpeg, bmp) in {flag} folder {folder}; is it the right folder?")
    return files


def pair_files(pred: Path, gt: Path, allow_missing: bool) -> list[tuple[str, Path, Path]]:
    """Pair the two folders by id. Returns sorted (id, pred file, gt file); raises UserError on gaps."""
    preds, gts = _index(pred, "--pred"), _index(gt, "--gt")
    common = sorted(preds.keys() & gts.keys())
    if not common:
        raise UserError(
            f"no common ids between --pred {pred} (e.g. {next(iter(preds.values())).name}) and --gt {gt} "
            f"(e.g. {next(iter(gts.values())).name}); files are paired by name without extension"
        )
    only_pred, only_gt = sorted(preds.keys() - gts.keys()), sorted(gts.keys() - preds.keys())
    if not allow_missing and only_pred:
        raise UserError(
            f"prediction {preds[only_pred[0]]} has no ground truth {gt / only_pred[0]}.* ({len(only_pred)} id(s) "
            "in --pred only); remove it or pass --allow-missing to score the common ids only"
        )
    if not allow_missing and only_gt:
        raise UserError(
            f"ground truth {gts[only_gt[0]]} has no prediction {pred / only_gt[0]}.* ({len(only_gt)} id(s) "
            "in --gt only); pass --allow-missing to score the common ids only"
        )
    if only_pred or only_gt:
        print(
            f"ide metrics: scoring the common ids ({len(common)}); skipped {len(only_pred)} only in --pred, "
            f"{len(only_gt)} only in --gt",
            file=sys.stderr,
        )
    return [(i, preds[i], gts[i]) for i in common]


def _load_pair(item: tuple[str, Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    _, pred_path, gt_path = item
    pred, gt = read_image(pred_path, "L"), read_image(gt_path, "L")
    if pred.shape != gt.shape:
        raise UserError(
            f"{pred_path} is {pred.shape[1]}x{pred.shape[0]} but its ground truth {gt_path} is "
            f"{gt.shape[1]}x{gt.shape[0]} (width x height); metrics never resize: save it at the ground-truth size"
        )
    if min(gt.shape) < 11:
        raise UserError(f"{gt_path} is {gt.shape[1]}x{gt.shape[0]}: too small for SSIM's 11x11 window")
    return pred, gt


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _sharpness(scores: dict[str, list[float]], rows: range | list[int]) -> dict:
    """{"sharpness": Σ laplacian of the predictions / Σ of their ground truth} over `rows` (empty
    when the scores carry no Laplacian, or the ground truth is flat)."""
    if "laplacian" not in scores:
        return {}
    gt = math.fsum(scores["laplacian_gt"][k] for k in rows)
    return {"sharpness": math.fsum(scores["laplacian"][k] for k in rows) / gt} if gt > 0 else {}


def summarize(ids: list[str], scores: dict[str, list[float]], nlda: dict | None = None) -> dict:
    """The JSON summary of `ide metrics`: overall means and sharpness ratio, per-subset means and
    ratios, then `nlda` (overall only) when given, then per-image scores (sorted by id)."""
    summary: dict = {
        "n": len(ids),
        **{m: _mean(scores[m]) for m in METRICS},
        **_sharpness(scores, range(len(ids))),
        "subsets": {},
    }
    groups: dict[str, list[int]] = {}
    for k, pair_id in enumerate(ids):
        groups.setdefault(subset_of(pair_id), []).append(k)
    for name in sorted(groups):
        rows = groups[name]
        summary["subsets"][name] = {
            "n": len(rows),
            **{m: _mean([scores[m][k] for k in rows]) for m in METRICS},
            **_sharpness(scores, rows),
        }
    if nlda is not None:
        summary["nlda"] = nlda
    per_image = [m for m in (*METRICS, "laplacian") if m in scores]
    summary["per_image"] = [{"id": i, **{m: scores[m][k] for m in per_image}} for k, i in enumerate(ids)]
    return summary


def format_table(summary: dict) -> str:
    """The printed table: one row per subset, then the overall row."""
    lines = [f"{'subset':<10}{'n':>6}{'FSIM':>9}{'SSIM':>9}{'PSNR':>9}{'sharp':>8}"]
    rows = [*summary["subsets"].items(), ("overall", summary)]
    for name, s in rows:
        sharp = f"{s['sharpness']:>8.2f}" if "sharpness" in s else f"{'-':>8}"
        lines.append(f"{name:<10}{s['n']:>6}{s['fsim']:>9.4f}{s['ssim']:>9.4f}{s['psnr']:>9.2f}{sharp}")
    if "nlda" in summary:  # overall only: the splits draw from all ids
        lines.append(format_nlda(summary["nlda"]))
    return "\n".join(lines)


def _finite_or_none(obj):
    """JSON has no Infinity: the PSNR of identical images (+inf) is written as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_none(v) for v in obj]
    return obj


def _csv_text(summary: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "subset", *METRICS])
    for row in summary["per_image"]:
        writer.writerow([row["id"], subset_of(row["id"]), *(repr(row[m]) for m in METRICS)])
    return out.getvalue()


def score_images(images: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> dict[str, list[float]]:
    """Score (pred, gt) uint8 [H, W] pairs in batches of one size. Returns {metric: [score per pair]}:
    fsim, ssim, psnr, and the mean absolute Laplacian of each prediction and of its ground truth
    (laplacian, laplacian_gt; `ide.metrics.sharpness`).

    On CPU the batches run in parallel Python threads with single-threaded torch ops: the metrics
    are hundreds of ~1 ms operations, and with intra-op threads each ends in a barrier that, on a
    shared machine, waits for a descheduled thread (measured 7x slower on 2 busy cores).
    """
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, (_, g) in enumerate(images):
        by_shape.setdefault(g.shape, []).append(k)
    batches = [members[i : i + BATCH] for members in by_shape.values() for i in range(0, len(members), BATCH)]

    def run(rows: list[int]) -> tuple[list[int], dict[str, list[float]]]:
        x = torch.from_numpy(np.stack([images[k][0] for k in rows]))[:, None].to(device, torch.float64)
        y = torch.from_numpy(np.stack([images[k][1] for k in rows]))[:, None].to(device, torch.float64)
        return rows, {m: v.cpu().tolist() for m, v in score_batch(x, y).items()}

    scores = {m: [math.nan] * len(images) for m in METRICS}
    scores["laplacian"] = [laplacian_energy(p) for p, _ in images]
    scores["laplacian_gt"] = [laplacian_energy(g) for _, g in images]
    threads = torch.get_num_threads()
    workers = threads if device.type == "cpu" else 1
    disable = None if len(images) >= 64 else True  # tqdm: None = shown on a terminal only
    bar = tqdm(total=len(images), desc="ide metrics", unit="img", disable=disable, leave=False)
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for rows, batch_scores in pool.map(run, batches):
                for m, values in batch_scores.items():
                    for k, v in zip(rows, values):
                        scores[m][k] = v
                bar.update(len(rows))
    finally:
        torch.set_num_threads(threads)
        bar.close()
    return scores


def score_folders(
    pred: Path,
    gt: Path,
    json_path: str | None,
    csv_path: str | None,
    allow_missing: bool,
    device: str,
    recognition: NLDAOptions | None = None,
) -> dict:
    """Score every id present in both folders; print the table; write the JSON and CSV if asked.

    Args:
        pred: folder of synthesized sketches `<id>.<ext>` (png, jpg, jpeg, bmp; gray or RGB).
        gt: folder of ground-truth sketches, same ids, same sizes.
        json_path, csv_path: where to write the summary / per-image rows (atomically), or None.
        allow_missing: score the common ids instead of failing on ids present on one side only.
        device: "cpu", "cuda[:k]" or "auto".
        recognition: also run NLDA face recognition (`ide.metrics.recognition`) with these settings.
    Returns:
        {"n", "fsim", "ssim", "psnr", "sharpness", "subsets": {name: {"n", "fsim", "ssim", "psnr",
         "sharpness"}}, "per_image": [{"id", "fsim", "ssim", "psnr", "laplacian"}, ...]} (means of
         per-image scores, PSNR may be inf; sharpness: `ide.metrics.sharpness`),
        plus "nlda" (see `nlda_protocol`) before "per_image" when recognition is given.
    Raises:
        UserError naming the file for an empty or missing folder, no common ids, an id on one side
        only (without allow_missing), an unreadable image, or a size mismatch.
    """
    dev = _device(device)
    items = pair_files(Path(pred), Path(gt), allow_missing)
    if recognition is not None:
        resolve_train(len(items), recognition)  # a split that cannot be made fails before any scoring
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(_load_pair, items))

    # NLDA first: its checks (one image size for all ids) also run before any scoring
    nlda = None if recognition is None else score_pairs([i for i, _, _ in items], images, recognition)
    scores = score_images(images, dev)

    summary = summarize([i for i, _, _ in items], scores, nlda)
    print(f"ide metrics: {summary['n']} pairs, --pred {pred}, --gt {gt}")
    print(format_table(summary))
    write_report(summary, json_path, csv_path, provenance())
    return summary


def write_report(
    summary: dict, json_path: str | Path | None, csv_path: str | Path | None, prov: dict
) -> None:
    """Write `summarize`'s summary as JSON (with `prov` under "provenance") and/or CSV, atomically;
    None skips a file. PSNR +inf (identical images) is written as null."""
    if json_path:
        doc = {**summary, "provenance": prov}
        write_text(json_path, json.dumps(_finite_or_none(doc), indent=1, allow_nan=False) + "\n")
    if csv_path:
        write_text(csv_path, _csv_text(summary))
