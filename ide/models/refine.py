"""Running a trained generator over a stack of inputs (validation in training, `ide test`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ide.precision import autocast, to_layout


@torch.no_grad()
def refine(
    g: nn.Module,
    inputs: torch.Tensor,
    out_size: tuple[int, int],
    device: torch.device,
    precision: str = "auto",
    batch: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """Run the generator on [N, C, h, w] inputs in [0,1]; returns uint8 [N, H, W] at `out_size` (H, W).

    An output of another size (odd input sizes at scale 2) is resized bicubically to `out_size`.
    Inputs go in channels-last (NHWC), the layout oneDNN's convs run fastest in; with `precision`
    auto that is bf16 on CPUs with native bf16 (2.5-4x faster than fp32 NCHW, one thread of a
    Zen 4 EPYC, 8 photos of 250x200). The generator's train/eval mode is restored afterwards.
    """
    was_training = g.training
    g.eval()
    outs = []
    starts = range(0, inputs.shape[0], batch)
    for i in tqdm(starts, desc="stage 2", unit="batch", disable=not progress):
        x = to_layout(inputs[i : i + batch].to(device), True)
        with torch.inference_mode(), autocast(device, precision):
            y = g(x)
        y = y.float()
        if tuple(y.shape[-2:]) != tuple(out_size):
            y = F.interpolate(y, size=tuple(out_size), mode="bicubic", align_corners=False)
        outs.append((y[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
    g.train(was_training)
    return np.concatenate(outs)
