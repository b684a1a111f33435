"""Device, precision and memory layout choices for training and inference.

`train.precision: auto` means: fp16 mixed precision (autocast + grad scaler) on CUDA; bf16
autocast on CPUs with native bf16 (AMX or AVX512-BF16); plain fp32 elsewhere. Master weights
and optimizer state are always fp32: autocast casts per op, it never changes the parameters.
Per-layer choices live where the layer is (`fp32_on_cpu`, used by MAB's depthwise conv).

Why (measured with bench/train_step.py and single-layer timings):
* On a Xeon with AMX, bf16 makes the dense convs ~3x faster, but the backward of the 5x5
  depthwise conv ~2x slower than fp32, so that layer stays fp32 under CPU autocast.
* On a CPU without native bf16 (AMD EPYC Zen 3, AVX2) oneDNN emulates bf16: a 3x3 64->64 conv
  forward+backward on 4x64x64x64 took 41 ms in fp32 channels-last and 506 ms in bf16, the 5x5
  depthwise 18 ms vs 509 ms. So `auto` never picks bf16 there.
* On a Zen 4 EPYC with AVX512-BF16 (no AMX), 2 threads: a 2048² matmul runs at 423 GFLOP/s in
  bf16 against 152 in fp32; a 3x3 64->64 conv forward on 20x64x64x64 takes 107 ms fp32 NCHW,
  32 ms fp32 NHWC, 19 ms bf16 NHWC; the 5x5 depthwise forward+backward 35 ms fp32 NHWC against
  60 ms bf16 NHWC (so it stays fp32 there too). The paper's training step: 2.19x faster than
  fp32 NCHW (bench/train_step.py); 250x200 inference of the CPU recipe's generator 2.5-4x.
* Channels-last (NHWC) fp32 on that AVX2 CPU: oneDNN's NHWC forward and data gradient are ~2x
  faster than NCHW for a lone 3x3 conv, but its NHWC weight gradient (jit:avx2) runs at ~1/3 of
  the forward's rate; the paper's training step, measured whole, gained only 1.03x CPU time
  (1.15x wall) at batch 20 (bench/train_step.py). It costs nothing, so it stays on by default.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ide.config_rules import PRECISIONS  # train.precision's choices
from ide.errors import UserError


def resolve_device(name: str, key: str = "device") -> torch.device:
    """The one device rule of ide (training, stage 1, inference, metrics).

    'auto' → cuda if available else cpu; 'cpu'; 'cuda' or 'cuda:N' when CUDA is available.
    Anything else, or CUDA asked for where there is none, is a UserError naming `key` (the config
    key or flag the name came from, e.g. 'train.device' or '--device').
    """
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise UserError(f"{key} '{name}' asks for CUDA, which is not available here; use auto or cpu")
        return torch.device(name)
    raise UserError(f"{key} '{name}' is not a device; use auto, cpu, cuda or cuda:N")


@lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when the CPU computes bf16 natively (AMX-BF16 or AVX512-BF16 flags)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags: set[str] = set()
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
        return bool(flags & {"amx_bf16", "avx512_bf16"})
    # no /proc (macOS, Windows): ask torch's own CPU probe where it has one
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if probe is not None else False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' | 'fp32' | 'bf16' | 'fp16' → the concrete one used on `device` ('fp32', 'bf16' or 'fp16')."""
    if precision not in PRECISIONS:
        raise UserError(
            f"config key 'train.precision' is '{precision}'; choose one of: {', '.join(PRECISIONS)}"
        )
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError(
            "config key 'train.precision' fp16 needs a CUDA device; use auto, fp32 or bf16 on CPU"
        )
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for `precision` on `device` (a no-op context for fp32)."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if resolved == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A loss scaler, enabled only for fp16 (bf16 and fp32 have fp32's exponent range)."""
    enabled = resolve_precision(precision, device) == "fp16"
    return torch.amp.GradScaler(device.type, enabled=enabled)


def fp32_on_cpu(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`layer(x)` computed in fp32 when CPU autocast is on, as autocast would otherwise use bf16.

    For layer kinds whose oneDNN bf16 kernels are slower than fp32 (the 5x5 depthwise conv's
    backward: ~2x). The result is fp32; on CUDA or without autocast this is `layer(x)`.
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return layer(x.float())
    return layer(x)


def to_layout(obj, channels_last: bool):
    """A module or 4-D tensor in channels-last (NHWC) memory when `channels_last`, else unchanged.

    NHWC avoids oneDNN's layout reorders: 1.3-3x faster convs on AVX-512/AMX Xeons in fp32 and
    bf16; about even on an AVX2 EPYC in fp32 (see the module docstring).
    """
    if not channels_last:
        return obj
    if isinstance(obj, torch.Tensor) and obj.dim() != 4:
        return obj
    return obj.to(memory_format=torch.channels_last)
