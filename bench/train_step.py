"""Time one paper-config MLA-GAN training step: fp32 contiguous against the optimised path.

The step is the product's `ide.train.train_step`: G forward once; D step with BCE on real and
detached fake; G step with 0.01·L1 + 1.0·perceptual (VGG19 conv5_4, random init here: no
ImageNet weights offline) + 0.005·GAN, D frozen; Adam for both. Both paths run the same step on the same data; only
precision and memory layout differ (`ide.precision`: "auto" → bf16 on CPUs with native bf16,
fp16 AMP on CUDA, fp32 elsewhere; channels-last everywhere). Warm-up steps are excluded and the
median of the timed steps is reported; the two paths' steps alternate, so that other load on
a shared machine falls on both alike. Also times the generator-alone step (L1 only), the
figure of the MLA-Net training table.

    python bench/train_step.py                 # batch 20, 64x64 → 128x128, 3 timed steps
    python bench/train_step.py --batch 4 --steps 2 --no-perceptual

Ends with one JSON line: fp32_seconds, optimized_seconds, speedup, gflops (achieved by the
optimised step, FLOPs counted by FlopCounterMode), generator_params, discriminator_params, ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ide.config import LossConfig, PerceptualConfig
from ide.losses import PerceptualLoss
from ide.models import MLANet, VGGDiscriminator
from ide.precision import (
    autocast,
    cpu_supports_bf16,
    grad_scaler,
    resolve_device,
    resolve_precision,
    to_layout,
)
from ide.train import Nets, train_step


def make_nets(channels_last: bool, perceptual: bool, device: torch.device, seed: int = 0) -> Nets:
    """The paper's networks (1-channel sketches), identically initialised for every path."""
    torch.manual_seed(seed)
    g = MLANet(in_channels=1, out_channels=1, scale=2)
    d = VGGDiscriminator(in_channels=1)
    perc = PerceptualLoss(weights="random" if perceptual else "none")
    g, d, perc = (to_layout(m.to(device), channels_last) for m in (g, d, perc))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.999))
    return Nets(g, opt_g, d, opt_d, perc if perceptual else None)


PAPER_LOSS = LossConfig()  # 0.01·L1 + 1.0·perceptual + 0.005·GAN, the config defaults
L1_ONLY = LossConfig(pixel=1.0, gan=0.0, perceptual=PerceptualConfig(weight=0.0, weights="none"))


def gan_step(nets: Nets, lq, gt, device, precision: str) -> dict[str, float]:
    """One step of the product's `ide.train.train_step`: D step, then G step with D frozen."""
    scaler = grad_scaler(device, precision)
    return train_step(nets, lq, gt, PAPER_LOSS, lambda: autocast(device, precision), scaler)


def generator_step(nets: Nets, lq, gt, device, precision: str) -> dict[str, float]:
    """The generator alone through the same `train_step`: L1 loss, no D, no VGG."""
    alone = Nets(nets.g, nets.opt_g)
    scaler = grad_scaler(device, precision)
    return train_step(alone, lq, gt, L1_ONLY, lambda: autocast(device, precision), scaler)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, nets, lq, gt, device, precision) -> tuple[float, float, dict[str, float]]:
    """Wall and process-CPU seconds of one step, and its losses."""
    sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    losses = step(nets, lq, gt, device, precision)
    sync(device)
    return time.perf_counter() - start, time.process_time() - cpu_start, losses


def compare(step, paths: dict, lq_base, gt_base, device, warmup: int, steps: int, label: str) -> dict:
    """Median wall and CPU seconds per step of each path; the paths' steps alternate so that load
    from other processes on a shared machine falls on all of them alike. Warm-up steps are not timed.
    (With one thread, CPU seconds are the steadier figure on a machine shared with other work.)"""
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(warmup + steps):
        kind = "warm-up" if i < warmup else "timed"
        for name, (nets, prec, channels_last) in paths.items():
            lq, gt = to_layout(lq_base, channels_last), to_layout(gt_base, channels_last)
            seconds, cpu_seconds, losses = timed(step, nets, lq, gt, device, prec)
            shown = ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
            print(
                f"  {label} {name}: step {i + 1} ({kind}) {seconds:.2f} s (cpu {cpu_seconds:.2f} s)  [{shown}]",
                flush=True,
            )
            if i >= warmup:
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    medians.update({f"{name}_cpu": statistics.median(t) for name, t in cpu.items()})
    return medians


def count_flops(step, nets, lq, gt, device, precision) -> int:
    """FLOPs of one step (convolutions and matrix products, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        step(nets, lq, gt, device, precision)
    return counter.get_total_flops()


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--size", type=int, default=64, help="input side; the output is 2x (128 for D)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per path (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-perceptual", action="store_true", help="leave the VGG19 loss out")
    parser.add_argument("--no-generator-alone", action="store_true", help="skip the G-only timings")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="precision of the optimised path")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    resolved = resolve_precision(args.precision, device)
    perceptual = not args.no_perceptual
    torch.manual_seed(0)
    lq_base = torch.rand(args.batch, 1, args.size, args.size, device=device)
    gt_base = torch.rand(args.batch, 1, 2 * args.size, 2 * args.size, device=device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(
        f"device {device} ({machine}), {torch.get_num_threads()} threads, "
        f"native CPU bf16: {cpu_supports_bf16()}; optimised path: {resolved} + channels-last",
        flush=True,
    )
    paths = {}
    for name, prec, channels_last in (("fp32", "fp32", False), ("optimized", args.precision, True)):
        paths[name] = (make_nets(channels_last, perceptual, device), prec, channels_last)
    print(f"paths: fp32 = fp32 contiguous; optimized = {resolved} channels-last", flush=True)
    result = compare(gan_step, paths, lq_base, gt_base, device, args.warmup, args.steps, "GAN step")
    nets, prec, channels_last = paths["optimized"]
    lq, gt = to_layout(lq_base, channels_last), to_layout(gt_base, channels_last)
    step_flops = count_flops(gan_step, nets, lq, gt, device, prec)
    if not args.no_generator_alone:
        alone = compare(generator_step, paths, lq_base, gt_base, device, 1, args.steps, "G alone")
    g, d = nets.g, nets.d

    fp32_s, opt_s = result["fp32"], result["optimized"]
    summary = {
        "fp32_seconds": round(fp32_s, 3),
        "optimized_seconds": round(opt_s, 3),
        "speedup": round(fp32_s / opt_s, 3),
        "gflops": round(step_flops / 1e9 / opt_s, 1),
        "fp32_cpu_seconds": round(result["fp32_cpu"], 3),
        "optimized_cpu_seconds": round(result["optimized_cpu"], 3),
        "step_gflop": round(step_flops / 1e9, 1),
        "generator_params": sum(p.numel() for p in g.parameters()),
        "discriminator_params": sum(p.numel() for p in d.parameters()),
        "batch": args.batch,
        "input_size": args.size,
        "perceptual": perceptual,
        "device": str(device),
        "machine": machine,
        "optimized_precision": resolved,
        "cpu_native_bf16": cpu_supports_bf16(),
        "threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if not args.no_generator_alone:
        g32, gopt = alone["fp32"], alone["optimized"]
        summary.update(
            generator_fp32_seconds=round(g32, 3),
            generator_optimized_seconds=round(gopt, 3),
            generator_speedup=round(g32 / gopt, 3),
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
