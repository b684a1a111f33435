"""Stage-2 training: the MLA-GAN refiner learns coarse sketch → artist's sketch.

`train()` reads as build → restore → loop: `build` makes the networks, optimisers and schedule,
`restore` puts a checkpoint back into them (`--resume`; what may change on resume:
`ide.train_setup`), `loop` runs `train_step` with validation, logging and checkpoints around it.
Multi-process runs start with torchrun (README, "Several GPUs or processes").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ide.checkpoint import save_checkpoint
from ide.config import Config, LossConfig, dump_config
from ide.data.io import write_png
from ide.data.training import StageTwoData, prepare_data
from ide.distributed import DistInfo, barrier, init_from_env
from ide.errors import UserError
from ide.fileio import write_text
from ide.losses import discriminator_losses, generator_losses
from ide.metrics.arrays import score_arrays
from ide.models.refine import refine
from ide.precision import autocast, grad_scaler, resolve_device
from ide.report import image_grid
from ide.train_setup import (
    Nets,
    Schedule,
    build,
    checkpoint_state,
    distribute,
    restore,
    resume_checkpoint,
    run_dir,
    shipped,
    unwrap,
)


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the run stops and last.pt stays as it was."""


def train_step(
    nets: Nets,
    x: torch.Tensor,
    y: torch.Tensor,
    w: LossConfig,
    amp: Callable[[], AbstractContextManager],
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """One optimisation step: D on the real and the detached fake crops, then G with D frozen.

    x: input crops [B,C,c/s,c/s], y: target crops [B,1,c,c], both in [0,1]; `w` the loss weights;
    `amp` the autocast context factory; `scaler` the fp16 loss scaler (None: off, for fp32/bf16).
    Returns the named losses (g_pix, g_perc, g_gan, g_total, d_real, d_fake; those that are on)
    as floats. Raises TrainingDiverged before any weight changes if a loss is not finite.
    """
    scaler = scaler or torch.amp.GradScaler(x.device.type, enabled=False)
    losses: dict[str, torch.Tensor] = {}
    with amp():
        fake = nets.g(x)
    if nets.d is not None:
        nets.d.requires_grad_(True)
        nets.opt_d.zero_grad(set_to_none=True)
        with amp():
            losses.update(discriminator_losses(nets.d, y, fake.detach()))
        check_finite(losses)
        scaler.scale(losses["d_real"] + losses["d_fake"]).backward()
        scaler.step(nets.opt_d)
        nets.d.requires_grad_(False)  # the generator step must not touch the discriminator
    nets.opt_g.zero_grad(set_to_none=True)
    with amp():
        # the unwrapped discriminator: its parameters are frozen, only the generator gets gradients
        losses.update(generator_losses(fake, y, w, nets.perceptual, unwrap(nets.d), nets.texture))
    check_finite(losses)
    scaler.scale(losses["g_total"]).backward()
    scaler.step(nets.opt_g)
    scaler.update()
    return {k: float(v.detach()) for k, v in losses.items()}


def check_finite(losses: dict[str, torch.Tensor]) -> None:
    """Raise TrainingDiverged naming the first loss that is NaN or infinite."""
    for k, v in losses.items():
        if not torch.isfinite(v.detach()).all():
            raise TrainingDiverged(
                f"loss {k} is {float(v.detach())}; training stopped, last.pt is unchanged (lower train.lr?)"
            )


def validate(
    g: nn.Module, data: StageTwoData, cfg: Config, device: torch.device
) -> tuple[dict[str, float], np.ndarray]:
    """Refine the validation inputs and score them: ({"fsim", "ssim", "psnr"}, uint8 [V,H,W])."""
    refined = refine(g, data.val_inputs, data.val_targets.shape[-2:], device, cfg.train.precision)
    return score_arrays(refined, data.val_targets), refined


class Log:
    """Progress bar and TensorBoard of the main process (both silent on the other ranks)."""

    def __init__(self, cfg: Config, run: Path, info: DistInfo, step: int) -> None:
        self.writer = None
        if info.main and cfg.log.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # after a resume, drop what a killed run logged past the checkpoint: no step twice
            self.writer = SummaryWriter(str(run / "tb"), purge_step=step + 1 if step else None)
        self.last = (step, time.perf_counter())  # (step, time) of the last speed measurement
        self.bar = tqdm(
            total=cfg.train.iterations, initial=step, disable=not info.main, desc="train", dynamic_ncols=True
        )

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def baseline(self, data: StageTwoData) -> None:
        """Print and log the stage-1 coarse sketches' validation scores (what stage 2 must beat)."""
        base = score_arrays(data.val_coarse, data.val_targets)
        print(
            f"stage-1 coarse sketches on the {len(data.val_ids)} validation pairs: fsim {base['fsim']:.4f} "
            f"ssim {base['ssim']:.4f} psnr {base['psnr']:.2f}",
            flush=True,
        )
        self.scalars("val_coarse", base, 0)

    def losses(self, losses: dict[str, float], lr: float, step: int) -> None:
        """The step's losses on the bar and in TensorBoard, with the lr and the steps/s since the last call."""
        now = time.perf_counter()
        speed = (step - self.last[0]) / max(now - self.last[1], 1e-9)
        self.last = (step, now)
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items() if k != "g_total"})
        self.scalars("loss", losses, step)
        if self.writer is not None:
            self.writer.add_scalar("lr", lr, step)
            self.writer.add_scalar("speed/iter_per_s", speed, step)

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def evaluate(cfg: Config, run: Path, data: StageTwoData, nets: Nets, s: Schedule, log: Log, device) -> None:
    """Validate the shipped generator (and the online one under an EMA), write the sample grid,
    and save best.pt when validation FSIM improves. Main process only."""
    note = ""
    if s.ema is not None:  # the online weights too, so each run shows what the average buys
        online, _ = validate(unwrap(nets.g), data, cfg, device)
        log.scalars("val_online", online, s.step)
        note = f" (online weights: fsim {online['fsim']:.4f})"
    scores, refined = validate(shipped(nets, s), data, cfg, device)
    log.bar.write(
        f"step {s.step}: val fsim {scores['fsim']:.4f} ssim {scores['ssim']:.4f} psnr {scores['psnr']:.2f}{note}"
    )
    grid = image_grid([data.val_coarse, refined, data.val_targets], cfg.eval.grid)
    write_png(run / "samples" / f"{s.step:07d}.png", grid)
    log.scalars("val", scores, s.step)
    if log.writer is not None:
        log.writer.add_image("val/coarse_refined_gt", grid, s.step, dataformats="HW")
    if scores["fsim"] > s.best:
        s.best = scores["fsim"]
        save_checkpoint(run / "checkpoints" / "best.pt", checkpoint_state(cfg, nets, s, data.bank))


def loop(cfg: Config, run: Path, data: StageTwoData, nets: Nets, s: Schedule, device, info: DistInfo) -> None:
    """Train from step s.step to train.iterations: step, log, validate, save."""
    t = cfg.train
    log = Log(cfg, run, info, s.step)
    if info.main and s.step == 0:
        log.baseline(data)
    scaler = grad_scaler(device, t.precision)
    mine = slice(info.rank * t.batch_size // info.world, (info.rank + 1) * t.batch_size // info.world)
    layout = torch.channels_last if t.channels_last else torch.contiguous_format
    while s.step < t.iterations:
        nets.g.train()
        x, y = data.crops.sample(t.batch_size, s.data_rng)
        x, y = (v[mine].to(device).contiguous(memory_format=layout) for v in (x, y))
        losses = train_step(nets, x, y, cfg.loss, lambda: autocast(device, t.precision), scaler)
        s.advance(nets.g)
        log.bar.update(1)
        if info.main and (s.step % t.log_every == 0 or s.step == 1):
            log.losses(losses, nets.opt_g.param_groups[0]["lr"], s.step)
        last = s.step == t.iterations
        if s.step % cfg.eval.every == 0 or last:
            if info.main:
                evaluate(cfg, run, data, nets, s, log, device)
            barrier(info)
        if s.step % t.save_every == 0 or last:
            if info.main:
                save_checkpoint(run / "checkpoints" / "last.pt", checkpoint_state(cfg, nets, s, data.bank))
            barrier(info)
    log.close()


def train(cfg: Config, resume: bool = False) -> Path:
    """Train stage 2 into <log.dir>/<train.name>/ (config checked by `load_config`); returns the run folder."""
    device = resolve_device(cfg.train.device, "train.device")
    info = init_from_env(device)
    if info.active and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    if cfg.train.batch_size % info.world:
        raise UserError(
            f"train.batch_size {cfg.train.batch_size} must be divisible by the {info.world} processes"
        )
    run = run_dir(cfg, resume)
    ck = resume_checkpoint(run, cfg) if resume else None  # checked before the data is read
    data = prepare_data(cfg, info)
    nets, schedule = build(cfg, device)
    if ck is not None:
        restore(ck, nets, schedule)
    if info.active:
        distribute(nets, device)
    if info.main:
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        write_text(run / "config.yaml", dump_config(cfg))
    loop(cfg, run, data, nets, schedule, device, info)
    return run
