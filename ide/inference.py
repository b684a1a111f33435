"""`ide test`: the full pipeline on a dataset split or on any photos, written as gray PNGs + grid.png."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import yaml

from ide.data.io import gray_batch, is_image_file, read_image, write_png
from ide.errors import UserError
from ide.pipeline import Synthesizer, image_grid


def _photo_files(photos: Path) -> tuple[list[Path], list[str]]:
    """Image files of a file or folder, and a note for every other file (skipped)."""
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
    files: list[Path], size: tuple[int, int], bank_gray: bool, align: tuple[float, ...] | None
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Read (and align) photos; returns ids, uint8 [H,W,3] photos, and per-file errors.

    `align`: None, or the target eye centres (x_l, y_l, x_r, y_r) to align every photo to.
    """
    ids, photos, errors = [], [], []
    if align is not None:
        from ide.data.align import align_face
    for path in files:
        try:
            rgb = read_image(path, "RGB")
            gray = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
            if gray != bank_gray:
                kind, trained = ("gray", "colour") if gray else ("colour", "gray")
                raise UserError(
                    f"photo {path} is {kind} but the model was trained on {trained} photos; "
                    f"use a {trained} photo or a checkpoint trained on {kind} photos"
                )
            if align is not None:
                rgb = align_face(rgb, name=str(path), eyes=align)
            elif rgb.shape[:2] != size:
                raise UserError(
                    f"photo {path} is {rgb.shape[1]}x{rgb.shape[0]}, the model needs aligned "
                    f"{size[1]}x{size[0]} faces; add --align"
                )
            ids.append(path.stem)
            photos.append(rgb)
        except UserError as err:
            errors.append(str(err))
    return ids, photos, errors


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
) -> int:
    """Synthesize sketches with a checkpoint; returns the exit code (2 when some photos failed).

    Writes OUT/<id>.png (refined) and OUT/grid.png; with `coarse_out`, the stage-1 sketches as
    COARSE_OUT/<id>.png too (so stage 1 alone and stage 1 + 2 are scored from one run).
    """
    t0 = time.perf_counter()
    extra = list(overrides)
    if config is not None:  # a config file only re-points the data (the networks come from the checkpoint)
        p = Path(config)
        if not p.is_file():
            raise UserError(f"config file {config} not found")
        data = (yaml.safe_load(p.read_text()) or {}).get("data", {})
        extra = [
            f"data.{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in data.items()
        ] + extra
    synth = Synthesizer.from_checkpoint(checkpoint, extra, device)
    bank_gray = bool(synth.bank_photo_gray)
    errors: list[str] = []
    gt = None
    if split is not None:
        from ide.data.dataset import load_data

        data_split = load_data(synth.cfg.data, split)
        ids, rgb, gt = list(data_split.ids), data_split.photos, data_split.sketches
    else:
        files, errors = _photo_files(photos)
        ids, rgb_list, bad = _load_photos(
            files, synth.size, bank_gray, synth.cfg.data.eyes if align else None
        )
        errors += bad
        rgb = np.stack(rgb_list) if rgb_list else None
    if rgb is not None and len(ids):
        if rgb.shape[1:3] != synth.size:
            raise UserError(
                f"photos of {split or photos} are {rgb.shape[2]}x{rgb.shape[1]}, the bank's are "
                f"{synth.size[1]}x{synth.size[0]}; align them (--align)"
            )
        gray = synth.photo_gray(rgb)  # the background model, once for both stages
        coarse, spread = synth.coarse_and_spread(gray, progress=True)
        refined = synth.refine(coarse, gray, batch, progress=True, spread=spread)
        for pid, sketch in zip(ids, refined):
            write_png(out / f"{pid}.png", sketch)
        if coarse_out is not None:
            for pid, sketch in zip(ids, coarse):
                write_png(coarse_out / f"{pid}.png", sketch)
        columns = [gray_batch(rgb), coarse, refined] + ([gt] if gt is not None else [])
        write_png(out / "grid.png", image_grid(columns, 8))
        seconds = time.perf_counter() - t0
        print(
            f"wrote {len(ids)} sketches and grid.png to {out} in {seconds:.1f} s ({seconds / len(ids):.2f} s/photo)"
        )
    for e in errors:
        print(f"skipped: {e}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} file(s) failed; the others were written", file=sys.stderr)
        return 2
    return 0
