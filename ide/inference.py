"""`ide test`: the full pipeline on a dataset split or on any photos, written as gray PNGs.

Beside (not inside) the output folder OUT: OUT.grid.png (photo, coarse, refined, and the sketch
for a split) and, for a split, OUT.json, the scores as `ide metrics` writes them, with provenance.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ide.config import to_dict
from ide.data.io import gray_batch, is_image_file, read_image, write_png
from ide.errors import UserError
from ide.metrics.folder import format_table, score_images, summarize, write_report
from ide.metrics.recognition import NLDAOptions, resolve_train, score_pairs
from ide.pipeline import Synthesizer
from ide.provenance import provenance
from ide.report import image_grid

GRID_ROWS = 8  # samples in the grid


def _photo_files(photos: Path) -> tuple[list[Path], list[str]]:
    """Image files of a file or folder, and a note for every other file (skipped, not a failure)."""
    if photos.is_file():
        return [photos], []
    if not photos.is_dir():
        raise UserError(f"--photos {photos}: no such file or folder")
    files, skipped = [], []
    for p in sorted(photos.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            (files if is_image_file(p) else skipped).append(p)
    if not files:
        raise UserError(f"--photos {photos}: no png/jpg/bmp images in the folder")
    return files, [f"{p}: not an image file (skipped)" for p in skipped]


def _load_photos(
    files: list[Path], size: tuple[int, int], align: tuple[float, ...] | None, reference=None
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Read (and align) photos; returns ids, uint8 [H,W,3] photos, and one line per failed file.

    `align`: None, or the target eye centres (x_l, y_l, x_r, y_r) to align every photo to;
    `reference`: an `ide.data.eye_refine.Reference` that refines the detected eyes. Gray and colour
    photos are both taken, whatever the bank's photos were: stage 1 compares gray.
    """
    ids, photos, failed = [], [], []
    if align is not None:
        from ide.data.align import align_face
    for path in files:
        try:
            rgb = read_image(path, "RGB")
            if align is not None:
                rgb = align_face(rgb, name=str(path), eyes=align, reference=reference)
            elif rgb.shape[:2] != size:
                raise UserError(
                    f"photo {path} is {rgb.shape[1]}x{rgb.shape[0]}, the model needs aligned "
                    f"{size[1]}x{size[0]} faces; add --align"
                )
            ids.append(path.stem)
            photos.append(rgb)
        except UserError as err:
            failed.append(str(err))
    return ids, photos, failed


def beside(out: Path, suffix: str) -> Path:
    """The file next to folder `out` named after it: beside(Path("res/cufs"), ".json") → res/cufs.json."""
    folder = out.resolve()
    return folder.with_name(folder.name + suffix)


def _synthesizer(checkpoint: Path, config: str | None, overrides: list[str], device: str) -> Synthesizer:
    """The checkpoint's Synthesizer; a config file only re-points the data (networks come from the checkpoint)."""
    extra = list(overrides)
    if config is not None:
        p = Path(config)
        if not p.is_file():
            raise UserError(f"config file {config} not found")
        data = (yaml.safe_load(p.read_text()) or {}).get("data", {})
        extra = [
            f"data.{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in data.items()
        ] + extra
    return Synthesizer.from_checkpoint(checkpoint, extra, device)


def _inputs(
    synth: Synthesizer, split: str | None, photos: Path | None, align: bool
) -> tuple[list[str], np.ndarray | None, np.ndarray | None, list[str], list[str]]:
    """(ids, uint8 [N,H,W,3] photos or None, uint8 [N,H,W] ground truth or None, notes, failures)."""
    if split is not None:
        from ide.data.dataset import load_data

        data = load_data(synth.cfg.data, split)
        if data.photos.shape[1:3] != synth.size:
            raise UserError(
                f"photos of {split} are {data.photos.shape[2]}x{data.photos.shape[1]}, the bank's are "
                f"{synth.size[1]}x{synth.size[0]}; align them (ide align)"
            )
        return list(data.ids), data.photos, data.sketches, [], []
    files, notes = _photo_files(photos)
    reference = None
    if align:  # the bank's photos are training photos at the layout: their mean face refines the eyes
        from ide.data.eye_refine import reference_from_photos

        reference = reference_from_photos(synth.stage1.bank_photos, synth.cfg.data.eyes)
    ids, rgb, failed = _load_photos(files, synth.size, synth.cfg.data.eyes if align else None, reference)
    return ids, (np.stack(rgb) if rgb else None), None, notes, failed


def test_command(
    checkpoint: Path,
    out: Path,
    config: str | None,
    overrides: list[str],
    split: str | None,
    photos: Path | None,
    align: bool,
    batch: int,
    device: str,
    coarse_out: Path | None = None,
    json_path: Path | None = None,
    recognition: NLDAOptions | None = None,
) -> int:
    """Synthesize sketches with a checkpoint; returns the exit code: 0 all written, 1 some photos
    failed (listed on stderr). Bad input (nothing written) raises UserError.

    Writes OUT/<id>.png (refined) and OUT.grid.png; for a split also the scores, as `ide metrics`
    prints and writes them (NLDA too with `recognition`), to `json_path` (default OUT.json); with `coarse_out`, the stage-1
    sketches as COARSE_OUT/<id>.png too (stage 1 alone and stage 1 + 2 from one run).
    """
    t0 = time.perf_counter()
    if (json_path is not None or recognition is not None) and split is None:
        raise UserError(
            "--json and --recognition need --split: scores need the split's ground-truth sketches"
        )
    for folder, flag in ((out, "--out"), (coarse_out, "--coarse-out")):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise UserError(f"{flag} {folder} is a file; give a folder for the sketches")
    synth = _synthesizer(checkpoint, config, overrides, device)
    ids, rgb, gt, notes, failed = _inputs(synth, split, photos, align)
    for line in notes:
        print(f"ide test: {line}", file=sys.stderr)
    for line in failed:
        print(f"ide test: failed: {line}", file=sys.stderr)
    if rgb is None:
        raise UserError(
            f"none of the {len(failed)} photo(s) of --photos {photos} could be used; nothing written"
        )
    if recognition is not None:
        resolve_train(len(ids), recognition)  # too few ids: one line before anything is written
    prepared = synth.prepare(rgb)  # the background model, once for both stages
    coarse = synth.coarse(prepared, progress=True)
    refined = synth.refine(coarse, prepared, batch, progress=True)
    for pid, sketch in zip(ids, refined):
        write_png(out / f"{pid}.png", sketch)
    if coarse_out is not None:
        for pid, sketch in zip(ids, coarse):
            write_png(coarse_out / f"{pid}.png", sketch)
    columns = [gray_batch(rgb), coarse, refined] + ([gt] if gt is not None else [])
    grid = beside(out, ".grid.png")
    write_png(grid, image_grid(columns, GRID_ROWS))
    wrote = [f"grid {grid}"] + ([f"coarse sketches to {coarse_out}"] if coarse_out is not None else [])
    if gt is not None:
        pairs = list(zip(refined, gt))
        nlda = None if recognition is None else score_pairs(ids, pairs, recognition)
        summary = summarize(ids, score_images(pairs, torch.device("cpu")), nlda)
        print(format_table(summary))
        json_path = json_path or beside(out, ".json")
        write_report(summary, json_path, None, provenance(to_dict(synth.cfg), checkpoint))
        wrote.append(f"scores {json_path}")
    seconds = time.perf_counter() - t0
    print(
        f"ide test: wrote {len(ids)} sketches to {out} ({', '.join(wrote)}) in {seconds:.1f} s "
        f"({seconds / len(ids):.2f} s/photo)"
        + (f"; {len(failed)} photo(s) failed (listed above)" if failed else "")
    )
    return 1 if failed else 0
