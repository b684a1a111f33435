"""Photo → coarse (stage 1) → refined (stage 2): the glue used by `ide test`, training validation and users.

from ide.pipeline import Synthesizer
synth = Synthesizer.from_checkpoint("runs/cufs/checkpoints/best.pt")
sketch = synth(photo)            # uint8 [250, 200] from an aligned uint8 [250, 200, 3] photo
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ide.checkpoint import check_architecture, config_of, load_checkpoint
from ide.config import Config, apply_overrides, from_dict
from ide.data.stage2 import make_inputs
from ide.errors import UserError
from ide.models import build_generator, input_scale
from ide.models.refine import refine
from ide.pgm.prepare import prepare_photos
from ide.pgm.synthesis import Stage1
from ide.precision import resolve_device, to_layout


class Synthesizer:
    """Stage 1 + stage 2 from one self-contained checkpoint (generator, config and stage-1 bank).

    The checkpoint's bank is the prepared one that training searched (gray, backdrop whitened:
    `ide.pgm.prepare`); it is used as it is. The stage-1 bank side (`Stage1`) is kept between
    calls, so one photo at a time does not redo it.
    """

    def __init__(self, cfg: Config, generator: nn.Module, bank: dict, device: torch.device):
        self.cfg = cfg
        self.g = to_layout(generator.to(device), True).eval()
        self.bank_ids = list(bank["bank_ids"])
        self.stage1 = Stage1(bank["bank_photos"].numpy(), bank["bank_sketches"].numpy(), cfg.stage1)
        self.device = device

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, overrides: list[str] | None = None, device: str = "auto"
    ) -> Synthesizer:
        ck = load_checkpoint(path)
        trained = config_of(path, ck)  # before the overrides (apply_overrides may edit the dict)
        cfg = from_dict(apply_overrides(ck["config"], overrides or []))
        check_architecture(trained, cfg)  # one line naming the differing model.* keys
        g = build_generator(cfg.model)
        g.load_state_dict(ck["generator"])
        return cls(cfg, g, ck, resolve_device(device))

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the photos the bank holds; inputs must match it."""
        return tuple(self.stage1.bank_photos.shape[1:3])

    def prepare(self, photos: np.ndarray) -> np.ndarray:
        """uint8 RGB [N,H,W,3] or gray [N,H,W] photos → the prepared gray [N,H,W] that `coarse`
        and `refine` take (the background model when stage1.background > 0). Gray photos work
        with a bank of colour photos and the reverse: the search compares gray."""
        return prepare_photos(photos, self.cfg.stage1.background)

    def coarse(self, prepared: np.ndarray, progress: bool = False) -> np.ndarray:
        """uint8 [N,H,W] prepared aligned photos → uint8 [N,H,W] stage-1 coarse sketches."""
        return self.stage1(prepared, progress=progress)

    def refine(
        self, coarse: np.ndarray, prepared: np.ndarray, batch: int = 8, progress: bool = False
    ) -> np.ndarray:
        """Stage 2 on uint8 [N,H,W] coarse sketches; `prepared` (`prepare`'s photos) is the photo
        channel when the model is photo-conditioned."""
        if prepared.ndim != 3 or prepared.shape != coarse.shape:
            raise UserError(
                f"refine: photos {prepared.shape} must be the prepared gray [N, H, W] of the coarse "
                f"sketches {coarse.shape}; pass Synthesizer.prepare's output"
            )
        gray = prepared if self.cfg.model.photo_condition else None
        inputs = make_inputs(coarse, gray, input_scale(self.cfg.model))
        return refine(
            self.g, inputs, coarse.shape[1:3], self.device, self.cfg.train.precision, batch, progress
        )

    def __call__(self, photo: np.ndarray) -> np.ndarray:
        """One aligned photo uint8 [H,W,3] or [H,W] → sketch uint8 [H,W]."""
        prepared = self.prepare(photo[None])
        return self.refine(self.coarse(prepared), prepared)[0]
