"""Stage-2 training data in memory: generator inputs (coarse sketch, optionally the photo) and targets.

Everything is decoded and resized once; each step draws paired random crops with shared flips
from tensors, never from disk. Values are float32 in [0, 1], layout [N, C, H, W].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


def downscale(images: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic ×1/scale (PIL's antialiased bicubic, as MATLAB `imresize`). uint8 [N,H,W] → uint8 [N,H/s,W/s]."""
    if scale == 1:
        return images
    n, h, w = images.shape
    size = (round(w / scale), round(h / scale))
    return np.stack([np.asarray(Image.fromarray(im).resize(size, Image.BICUBIC)) for im in images])


def make_inputs(coarse: np.ndarray, photos_gray: np.ndarray | None, scale: int) -> torch.Tensor:
    """Generator input from uint8 [N,H,W] coarse sketches (+ gray photos): float [N, 1 or 2, H/s, W/s] in [0,1].

    Channel 0 is the coarse sketch (the generator's global skip upsamples it); channel 1, when
    given, the photo.
    """
    planes = [downscale(coarse, scale)]
    if photos_gray is not None:
        planes.append(downscale(photos_gray, scale))
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

    def __post_init__(self) -> None:
        if self.crop % self.scale:
            raise ValueError(f"train.crop {self.crop} must be a multiple of model.scale {self.scale}")
        h, w = self.inputs.shape[-2:]
        if self.crop // self.scale > min(h, w):
            raise ValueError(
                f"train.crop {self.crop} is larger than the images ({w * self.scale}x{h * self.scale})"
            )

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
        xin, xgt = [], []
        for b in range(batch):
            i, y, x = int(idx[b]), int(ys[b]), int(xs[b])
            a = self.inputs[i, :, y : y + ci, x : x + ci]
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
