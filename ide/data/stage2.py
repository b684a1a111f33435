"""Stage-2 training data in memory: generator inputs (coarse sketch, optionally the photo) and targets.

Everything is decoded and resized once; each step draws paired random crops with shared flips
from tensors, never from disk. Values are float32 in [0, 1], layout [N, C, H, W].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ide.config import Config
from ide.data.folders import PairedSplit
from ide.errors import UserError

DEGRADED_COPIES = 4  # degraded copies per training sketch (train.degraded)


def downscale(images: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic ×1/scale (PIL's antialiased bicubic, as MATLAB `imresize`). uint8 [N,H,W] → uint8 [N,H/s,W/s]."""
    if scale == 1:
        return images
    n, h, w = images.shape
    size = (round(w / scale), round(h / scale))
    return np.stack([np.asarray(Image.fromarray(im).resize(size, Image.BICUBIC)) for im in images])


def make_inputs(
    coarse: np.ndarray, photos_gray: np.ndarray | None, scale: int, spread: np.ndarray | None = None
) -> torch.Tensor:
    """Generator input from uint8 [N,H,W] coarse sketches (+ gray photos, + stage-1 spread):
    float [N, 1-3, H/s, W/s] in [0,1].

    Channel 0 is the coarse sketch (the generator's global skip upsamples it); then the photo
    when given; then the candidates' spread when given (uint8 std in gray levels, ide/pgm/spread.py).
    """
    planes = [downscale(coarse, scale)]
    if photos_gray is not None:
        planes.append(downscale(photos_gray, scale))
    if spread is not None:
        planes.append(downscale(spread, scale))
    return torch.from_numpy(np.stack(planes, axis=1)).float().div_(255.0)


def to_target(sketches: np.ndarray) -> torch.Tensor:
    """uint8 [N,H,W] → float [N,1,H,W] in [0,1]."""
    return torch.from_numpy(sketches[:, None]).float().div_(255.0)


@dataclass
class PairedCrops:
    """Samples batches of paired crops with the paper's augmentations.

    Attributes:
        inputs: float [N, C, h, w] in [0,1] at input resolution (h = H / scale).
        targets: float [N, 1, H, W] in [0,1] at ground-truth resolution.
        scale: resolution ratio between targets and inputs.
        crop: target crop side (input crop = crop // scale).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    scale: int
    crop: int
    hflip: bool = True
    vflip: bool = True
    transpose: bool = True
    # float [V, N, 1, h, w]: other coarse sketches of the same photos (data.coarse_variants);
    # each crop takes its channel 0 from one of the V + 1 coarse sets, uniformly
    variants: torch.Tensor | None = None
    # float [M, N, 1, h, w]: degraded copies of the targets (train.degraded); with probability
    # `degraded_ratio` a crop takes its channel 0 from one of them instead
    degraded: torch.Tensor | None = None
    degraded_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.crop % self.scale:
            raise ValueError(f"train.crop {self.crop} must be a multiple of model.scale {self.scale}")
        h, w = self.inputs.shape[-2:]
        if self.crop // self.scale > min(h, w):
            raise ValueError(
                f"train.crop {self.crop} is larger than the images ({w * self.scale}x{h * self.scale})"
            )
        for name, alt in (("variants", self.variants), ("degraded", self.degraded)):
            if alt is not None and (alt.ndim != 5 or alt.shape[1:] != (self.inputs.shape[0], 1, h, w)):
                raise ValueError(
                    f"{name} must be [V, {self.inputs.shape[0]}, 1, {h}, {w}], got {tuple(alt.shape)}"
                )

    def _coarse_source(self, batch: int, generator: torch.Generator) -> list[tuple[torch.Tensor, int] | None]:
        """Per crop: (alternative set [V, N, 1, h, w], index in it) for channel 0, or None (the inputs').

        Draws nothing from `generator` when neither option is on, so the default run's batches
        stay what they were."""
        src: list[tuple[torch.Tensor, int] | None] = [None] * batch
        if self.variants is not None:
            pick = torch.randint(self.variants.shape[0] + 1, (batch,), generator=generator)
            src = [(self.variants, int(p) - 1) if p > 0 else None for p in pick]
        if self.degraded is not None and self.degraded_ratio > 0:
            use = torch.rand(batch, generator=generator) < self.degraded_ratio
            pick = torch.randint(self.degraded.shape[0], (batch,), generator=generator)
            src = [(self.degraded, int(p)) if u else s for s, u, p in zip(src, use, pick)]
        return src

    def sample(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of `batch` crops: (inputs [B, C, c/s, c/s], targets [B, 1, c, c]), both in [0,1].

        All randomness comes from `generator`, so a run resumed with the saved generator state
        draws the same batches as an uninterrupted one.
        """
        n = self.inputs.shape[0]
        s, ci = self.scale, self.crop // self.scale
        h, w = self.inputs.shape[-2:]
        idx = torch.randint(n, (batch,), generator=generator)
        ys = torch.randint(h - ci + 1, (batch,), generator=generator)
        xs = torch.randint(w - ci + 1, (batch,), generator=generator)
        flips = torch.rand(batch, 3, generator=generator) < 0.5
        sources = self._coarse_source(batch, generator)
        xin, xgt = [], []
        for b in range(batch):
            i, y, x = int(idx[b]), int(ys[b]), int(xs[b])
            a = self.inputs[i, :, y : y + ci, x : x + ci]
            if sources[b] is not None:
                alt, v = sources[b]
                a = torch.cat([alt[v, i, :, y : y + ci, x : x + ci], a[1:]])
            t = self.targets[i, :, y * s : (y + ci) * s, x * s : (x + ci) * s]
            if self.hflip and flips[b, 0]:
                a, t = a.flip(-1), t.flip(-1)
            if self.vflip and flips[b, 1]:
                a, t = a.flip(-2), t.flip(-2)
            if self.transpose and flips[b, 2]:
                a, t = a.transpose(-1, -2), t.transpose(-1, -2)
            xin.append(a)
            xgt.append(t)
        return torch.stack(xin), torch.stack(xgt)


def coarse_alternatives(cfg: Config, split: PairedSplit, fit: list[int], scale: int) -> dict:
    """The `PairedCrops` keyword arguments of the data options (all off: an empty dict).

    data.coarse_variants: extra leave-one-out coarse sketches of the training photos
    (ide/pgm/variants.py); train.degraded: the share of crops whose input is a degraded copy of
    the target (ide/data/degrade.py, 4 copies per sketch). Only the `fit` pairs are kept.
    """
    out: dict = {}
    if cfg.model.uncertainty and (cfg.data.coarse_variants or cfg.train.degraded):
        raise UserError(
            "model.uncertainty does not combine with data.coarse_variants or train.degraded yet "
            "(their inputs have no stage-1 spread); turn one of them off"
        )
    if cfg.data.coarse_variants:
        from ide.pgm.variants import cached_variants

        var = cached_variants(
            split, cfg.stage1, cfg.data.cache_dir, cfg.data.coarse_variants, cfg.data.variant_fraction
        )
        out["variants"] = torch.stack([make_inputs(v[fit], None, scale) for v in var])
    if not 0.0 <= cfg.train.degraded < 1.0:
        raise UserError(f"config key 'train.degraded' is {cfg.train.degraded}; choose a share in [0, 1)")
    if cfg.train.degraded > 0:
        from ide.data.degrade import degrade_sketches

        deg = degrade_sketches(split.sketches[fit], DEGRADED_COPIES, seed=cfg.train.seed)
        out["degraded"] = torch.stack([make_inputs(d, None, scale) for d in deg])
        out["degraded_ratio"] = cfg.train.degraded
    return out


def stage1_spread(cfg: Config, split: PairedSplit) -> np.ndarray | None:
    """uint8 [N, H, W] leave-one-out candidate spread of the training photos (model.uncertainty), else None."""
    if not cfg.model.uncertainty:
        return None
    from ide.pgm.spread import cached_spread

    return cached_spread(split, split, cfg.stage1, cfg.data.cache_dir, leave_one_out=True)
