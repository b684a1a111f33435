"""Stage-2 training: the MLA-GAN refiner learns coarse sketch → artist's sketch.

`train_step` is the whole optimisation step on one screen: discriminator on detached fakes,
then generator with the discriminator frozen. `train` wires data, networks, checkpoints,
validation and logging around it. Multi-process runs start with torchrun (see README).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from ide.checkpoint import load_checkpoint, save_checkpoint
from ide.config import Config, LossConfig, dump_config, to_dict
from ide.data.dataset import load_data
from ide.data.folders import validation_index
from ide.data.io import write_png
from ide.data.stage2 import PairedCrops, coarse_alternatives, make_inputs, stage1_spread, to_target
from ide.distributed import DistInfo, barrier, init_from_env
from ide.ema import EMA
from ide.errors import UserError
from ide.losses import PerceptualLoss, fsim_loss, gan_loss, gradient_loss, pixel_loss
from ide.models import build_discriminator, build_generator, input_scale
from ide.pgm.background import photos_gray
from ide.pgm.cache import cached_coarse
from ide.pipeline import image_grid, refine, score_arrays
from ide.precision import autocast, grad_scaler, resolve_device


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the run stops and last.pt stays as it was."""


def _unwrap(m: nn.Module | None) -> nn.Module | None:
    return m.module if isinstance(m, DDP) else m


def train_step(
    g: nn.Module,
    d: nn.Module | None,
    perceptual: PerceptualLoss | None,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    x: torch.Tensor,
    y: torch.Tensor,
    w: LossConfig,
    amp: Callable[[], AbstractContextManager],
    scaler: torch.amp.GradScaler | None = None,
    condition: bool = False,
) -> dict[str, float]:
    """One optimisation step. x: input crops [B,C,c/s,c/s], y: target crops [B,1,c,c], both in [0,1].

    With `condition` (model.disc_condition) the discriminator judges each sketch together with
    its input x (`discriminator_input`), as pix2pix's conditional GAN does.

    With `w.feature_match` the generator also matches the discriminator's features of the real
    crops (`feature_match_loss`, pix2pixHD's term).

    With `w.fsim` the generator also minimises 1 - FSIM of its crops (`fsim_loss`).

    With `w.gradient` it also matches the target's forward differences (`gradient_loss`).

    Returns the named losses (g_pix, g_grad, g_fsim, g_perc, g_gan, g_fm, g_total, d_real, d_fake) as floats.
    Raises TrainingDiverged before any weight changes if a loss is not finite. `scaler` is the
    fp16 loss scaler (CUDA AMP); None or disabled for fp32 and bf16.
    """
    scaler = scaler or torch.amp.GradScaler(x.device.type, enabled=False)
    losses: dict[str, torch.Tensor] = {}
    with amp():
        fake = g(x)
    cond = condition_input(x, y.shape[-2:]) if condition else None  # once for the three D calls
    if d is not None:
        d.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        with amp():
            losses["d_real"] = gan_loss(d(discriminator_input(y, cond)), True)
            losses["d_fake"] = gan_loss(d(discriminator_input(fake.detach(), cond)), False)
        d_total = losses["d_real"] + losses["d_fake"]
        _check_finite(losses)
        scaler.scale(d_total).backward()
        scaler.step(opt_d)
        d.requires_grad_(False)  # the generator step must not touch the discriminator
    opt_g.zero_grad(set_to_none=True)
    with amp():
        losses["g_pix"] = pixel_loss(fake.float(), y)
        total = w.pixel * losses["g_pix"]
        if w.gradient > 0:
            losses["g_grad"] = gradient_loss(fake, y)
            total = total + w.gradient * losses["g_grad"]
        if w.fsim > 0:
            losses["g_fsim"] = fsim_loss(fake, y)
            total = total + w.fsim * losses["g_fsim"]
        if perceptual is not None:
            losses["g_perc"] = perceptual(fake, y)
            total = total + w.perceptual.weight * losses["g_perc"]
        if d is not None:
            # The unwrapped module: its parameters are frozen, only the generator gets gradients.
            dd = _unwrap(d)
            if w.feature_match > 0:
                *feats, logits = dd.features(discriminator_input(fake, cond))
                losses["g_fm"] = feature_match_loss(feats, dd, discriminator_input(y, cond))
                total = total + w.feature_match * losses["g_fm"]
            else:
                logits = dd(discriminator_input(fake, cond))
            losses["g_gan"] = gan_loss(logits, True)
            total = total + w.gan * losses["g_gan"]
    losses["g_total"] = total
    _check_finite(losses)
    scaler.scale(total).backward()
    scaler.step(opt_g)
    scaler.update()
    return {k: float(v.detach()) for k, v in losses.items()}


def feature_match_loss(fake_feats: list[torch.Tensor], d: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """Mean over the PatchGAN's layers of L1(fake features, real features), in fp32.

    fake_feats: `d.features(fake)` without the logits; real: the real sketches as the
    discriminator takes them. The real side is a fixed target (no gradient)."""
    with torch.no_grad():
        real_feats = d.features(real)[:-1]
    terms = [F.l1_loss(a.float(), b.float()) for a, b in zip(fake_feats, real_feats, strict=True)]
    return torch.stack(terms).mean()


def condition_input(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The generator input [B,C,c/s,c/s] bilinearly resized to the sketch's size → [B,C,c,c]."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def discriminator_input(sketch: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """sketch [B,1,c,c]; cond None → sketch, or `condition_input` [B,C,c,c] → [B,1+C,c,c]: the
    sketch with its resized input stacked behind it (the conditional GAN's pair)."""
    return sketch if cond is None else torch.cat([sketch, cond.to(sketch.dtype)], 1)


def _check_finite(losses: dict[str, torch.Tensor]) -> None:
    for k, v in losses.items():
        if not torch.isfinite(v.detach()).all():
            raise TrainingDiverged(
                f"loss {k} is {float(v.detach())}; training stopped, last.pt is unchanged (lower train.lr?)"
            )


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
    val = validation_index(split.ids, cfg.data.val_count)
    fit = [i for i in range(len(split)) if i not in set(val)]
    if not fit or not val:
        raise UserError(f"data.val_count={cfg.data.val_count} leaves no training or no validation pairs")
    # Rank 0 makes (and caches) the leave-one-out coarse sketches; the others then read the cache.
    if info.main:
        coarse = cached_coarse(split, split, cfg.stage1, cfg.data.cache_dir, leave_one_out=True)
    barrier(info)
    if not info.main:
        coarse = cached_coarse(split, split, cfg.stage1, cfg.data.cache_dir, leave_one_out=True)
    # The photo channel and the checkpoint's bank: gray, through the background model when it is on
    # (as the stage-1 search saw them), so `ide test` sees the bank and photos as training did.
    gray = photos_gray(split.photos, cfg.stage1.background)
    spread = stage1_spread(cfg, split)  # None unless model.uncertainty
    inputs = make_inputs(coarse, gray if cfg.model.photo_condition else None, input_scale(cfg.model), spread)
    targets = to_target(split.sketches)
    t = cfg.train
    extra = coarse_alternatives(cfg, split, fit, input_scale(cfg.model))  # all off: {}
    crops = PairedCrops(
        inputs[fit], targets[fit], input_scale(cfg.model), t.crop, t.hflip, t.vflip, t.transpose, **extra
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


def _run_dir(cfg: Config, resume: bool) -> Path:
    run = Path(cfg.log.dir) / cfg.train.name
    if resume and not (run / "checkpoints" / "last.pt").is_file():
        raise UserError(f"--resume: {run / 'checkpoints' / 'last.pt'} not found; start without --resume")
    if not resume and run.exists() and any(run.iterdir()):
        raise UserError(
            f"run folder {run} already exists; pass --resume to continue it, or --set train.name=NEW"
        )
    return run


def validate(
    g: nn.Module, data: StageTwoData, cfg: Config, device: torch.device
) -> tuple[dict[str, float], np.ndarray]:
    """Refine the validation inputs and score them: ({"fsim", "ssim", "psnr"}, uint8 [V,H,W])."""
    refined = refine(g, data.val_inputs, data.val_targets.shape[-2:], device, cfg.train.precision)
    scores = score_arrays(refined, data.val_targets)
    return scores, refined


def train(cfg: Config, resume: bool = False) -> Path:
    """Train stage 2 into <log.dir>/<train.name>/; returns the run folder."""
    device = resolve_device(cfg.train.device)
    info = init_from_env(device)
    if info.active and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    t = cfg.train
    if t.batch_size % info.world:
        raise UserError(f"train.batch_size {t.batch_size} must be divisible by the {info.world} processes")
    if not 0.0 <= t.ema < 1.0:
        raise UserError(f"config key 'train.ema' must be in [0, 1) (0: off, e.g. 0.999), got {t.ema}")
    for key in ("pixel", "gan", "feature_match", "fsim", "gradient"):
        if getattr(cfg.loss, key) < 0:
            raise UserError(f"config key 'loss.{key}' must be >= 0 (0: off), got {getattr(cfg.loss, key)}")
    if cfg.loss.feature_match > 0 and cfg.model.discriminator != "patch":
        raise UserError("config key 'loss.feature_match' needs model.discriminator: patch (or set it to 0)")
    run = _run_dir(cfg, resume)
    data = prepare_data(cfg, info)

    torch.manual_seed(t.seed)
    g = build_generator(cfg.model).to(device)
    use_d = cfg.loss.gan > 0 or cfg.loss.feature_match > 0
    d = build_discriminator(cfg.model).to(device) if use_d else None
    p = cfg.loss.perceptual
    perceptual = None
    if p.weight > 0 and p.weights != "none":
        perceptual = PerceptualLoss(p.weights, p.layer).to(device)
    if t.channels_last:
        for m in (g, d, perceptual):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(g.parameters(), lr=t.lr, betas=t.betas)
    sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, list(t.milestones), t.gamma)
    opt_d = sched_d = None
    if d is not None:
        opt_d = torch.optim.Adam(d.parameters(), lr=t.lr, betas=t.betas)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, list(t.milestones), t.gamma)
    ema = EMA(g, t.ema) if t.ema > 0 else None  # the shipped weights when on; g keeps training

    def shipped() -> nn.Module:
        """The generator that is validated, picked for best.pt and saved as "generator"."""
        return ema.module if ema is not None else _unwrap(g)

    gen = torch.Generator().manual_seed(t.seed)  # the data stream, identical on every rank
    step, best = 0, -math.inf
    if resume:
        ck = load_checkpoint(run / "checkpoints" / "last.pt")
        online = ck.get("generator_online")  # None when the run had no EMA: then "generator" is online
        g.load_state_dict(online if online is not None else ck["generator"])
        if ema is not None:
            ema.module.load_state_dict(ck["generator"])
        opt_g.load_state_dict(ck["opt_g"])
        sched_g.load_state_dict(ck["sched_g"])
        if d is not None:
            d.load_state_dict(ck["discriminator"])
            opt_d.load_state_dict(ck["opt_d"])
            sched_d.load_state_dict(ck["sched_d"])
        gen.set_state(ck["rng"]["data"])
        torch.set_rng_state(ck["rng"]["torch"])
        step, best = ck["step"], ck["best_fsim"]
    scaler = grad_scaler(device, t.precision)
    if info.active:
        g = DDP(g)
        if d is not None:
            # BatchNorm statistics over the global batch need SyncBatchNorm (CUDA only in PyTorch);
            # on CPU processes each rank normalises its own share of the batch.
            d = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(d) if device.type == "cuda" else d)

    writer = None
    if info.main:
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(dump_config(cfg))
        if cfg.log.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run / "tb"))

    def amp():
        return autocast(device, t.precision)

    def state() -> dict:
        return {
            "step": step,
            "config": to_dict(cfg),
            # "generator" is what inference loads: the EMA weights when train.ema > 0.
            "generator": shipped().state_dict(),
            "generator_online": None if ema is None else _unwrap(g).state_dict(),
            "discriminator": None if d is None else _unwrap(d).state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": None if opt_d is None else opt_d.state_dict(),
            "sched_g": sched_g.state_dict(),
            "sched_d": None if sched_d is None else sched_d.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "data": gen.get_state()},
            "best_fsim": best,
            **data.bank,
        }

    if info.main and step == 0:
        base = score_arrays(data.val_coarse, data.val_targets)
        print(
            f"stage-1 coarse sketches on the {len(data.val_ids)} validation pairs: fsim {base['fsim']:.4f} "
            f"ssim {base['ssim']:.4f} psnr {base['psnr']:.2f}",
            flush=True,
        )
        if writer is not None:
            for k, v in base.items():
                writer.add_scalar(f"val_coarse/{k}", v, 0)
    per_rank = t.batch_size // info.world
    bar = tqdm(total=t.iterations, initial=step, disable=not info.main, desc="train", dynamic_ncols=True)
    tic = time.perf_counter()
    while step < t.iterations:
        g.train()
        x, y = data.crops.sample(t.batch_size, gen)
        x = x[info.rank * per_rank : (info.rank + 1) * per_rank].to(device)
        y = y[info.rank * per_rank : (info.rank + 1) * per_rank].to(device)
        if t.channels_last:
            x, y = (
                x.contiguous(memory_format=torch.channels_last),
                y.contiguous(memory_format=torch.channels_last),
            )
        losses = train_step(
            g, d, perceptual, opt_g, opt_d, x, y, cfg.loss, amp, scaler, cfg.model.disc_condition
        )
        sched_g.step()
        if sched_d is not None:
            sched_d.step()
        step += 1
        if ema is not None:
            ema.update(_unwrap(g), step)
        bar.update(1)
        if info.main and (step % t.log_every == 0 or step == 1):
            bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items() if k != "g_total"})
            if writer is not None:
                for k, v in losses.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                writer.add_scalar("lr", opt_g.param_groups[0]["lr"], step)
                writer.add_scalar(
                    "speed/iter_per_s", t.log_every / max(time.perf_counter() - tic, 1e-9), step
                )
            tic = time.perf_counter()
        if step % cfg.eval.every == 0 or step == t.iterations:
            if info.main:
                if ema is not None:  # the online weights too, so each run shows what the average buys
                    online, _ = validate(_unwrap(g), data, cfg, device)
                    if writer is not None:
                        for k, v in online.items():
                            writer.add_scalar(f"val_online/{k}", v, step)
                scores, refined = validate(shipped(), data, cfg, device)
                bar.write(
                    f"step {step}: val fsim {scores['fsim']:.4f} ssim {scores['ssim']:.4f} psnr {scores['psnr']:.2f}"
                    + ("" if ema is None else f" (online weights: fsim {online['fsim']:.4f})")
                )
                grid = image_grid([data.val_coarse, refined, data.val_targets], cfg.eval.grid)
                write_png(run / "samples" / f"{step:07d}.png", grid)
                if writer is not None:
                    for k, v in scores.items():
                        writer.add_scalar(f"val/{k}", v, step)
                    writer.add_image("val/coarse_refined_gt", grid, step, dataformats="HW")
                if scores["fsim"] > best:
                    best = scores["fsim"]
                    save_checkpoint(run / "checkpoints" / "best.pt", state())
            barrier(info)
        if step % t.save_every == 0 or step == t.iterations:
            if info.main:
                save_checkpoint(run / "checkpoints" / "last.pt", state())
            barrier(info)
    bar.close()
    if writer is not None:
        writer.close()
    return run
