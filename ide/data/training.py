"""Stage-2 training data: the split loaded once, its leave-one-out coarse sketches, the generator's
inputs and targets, the validation part, and the stage-1 bank the checkpoint carries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ide.config import Config
from ide.data.dataset import load_data
from ide.data.folders import validation_index
from ide.data.stage2 import PairedCrops, make_inputs, to_target
from ide.distributed import DistInfo, barrier
from ide.errors import UserError
from ide.models import input_scale
from ide.pgm.cache import cached_coarse
from ide.pgm.prepare import PreparedSplit


@dataclass
class StageTwoData:
    """Everything the loop needs from the data, built once (validated before any work)."""

    crops: PairedCrops
    val_inputs: torch.Tensor  # [V, C, h, w] in [0,1]
    val_targets: np.ndarray  # uint8 [V, H, W]
    val_coarse: np.ndarray  # uint8 [V, H, W]
    val_ids: list[str]
    bank: dict  # checkpoint keys bank_ids / bank_photos / bank_sketches


def prepare_data(cfg: Config, info: DistInfo) -> StageTwoData:
    split = load_data(cfg.data, "train")
    # The photos as both stages take them (gray, backdrop whitened), made once: they are the
    # stage-1 search's bank and queries, the photo channel, and the checkpoint's bank.
    prepared = PreparedSplit(split, cfg.stage1.background)
    val = validation_index(split.ids, cfg.data.val_count)
    fit = [i for i in range(len(split)) if i not in set(val)]
    if not fit or not val:
        raise UserError(f"data.val_count={cfg.data.val_count} leaves no training or no validation pairs")
    # Rank 0 makes (and caches) the leave-one-out coarse sketches; the others then read the cache.
    if info.main:
        coarse = cached_coarse(prepared, prepared, cfg.stage1, cfg.data.cache_dir, leave_one_out=True)
    barrier(info)
    if not info.main:
        coarse = cached_coarse(prepared, prepared, cfg.stage1, cfg.data.cache_dir, leave_one_out=True)
    gray = prepared.photos
    inputs = make_inputs(coarse, gray if cfg.model.photo_condition else None, input_scale(cfg.model))
    targets = to_target(split.sketches)
    t = cfg.train
    crops = PairedCrops(
        inputs[fit], targets[fit], input_scale(cfg.model), t.crop, t.hflip, t.vflip, t.transpose
    )
    bank = {
        "bank_ids": list(split.ids),
        "bank_photos": torch.from_numpy(gray),
        "bank_sketches": torch.from_numpy(split.sketches),
        "bank_photo_gray": split.photo_gray,
    }
    return StageTwoData(
        crops, inputs[val], split.sketches[val], coarse[val], [split.ids[i] for i in val], bank
    )
