"""Setting up a training run: networks and optimisers, their schedule, checkpoint state, resuming.

`build` makes fresh networks (`Nets`) and training state (`Schedule`) from a config; `restore`
loads a checkpoint into them; `checkpoint_state` is the dict `ide.checkpoint` saves.
`resume_checkpoint` decides whether a config may continue a run: keys in RESUME_FREE may change
on resume and take effect (how long, how often to log, validate and save, where the data and
caches are, device and precision); any other difference is refused, naming the keys, so the
config.yaml a resume rewrites is always the config in effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ide.checkpoint import check_architecture, config_of, load_checkpoint, remove_orphan_temps
from ide.config import Config, to_dict
from ide.ema import EMA
from ide.errors import UserError
from ide.losses import PerceptualLoss
from ide.models import build_discriminator, build_generator
from ide.texture import RandomTextureLoss

# Config keys that may differ on --resume (and then take effect); any other difference is refused.
RESUME_FREE = {
    "train.iterations",
    "train.save_every",
    "train.log_every",
    "train.device",
    "train.precision",
    "train.channels_last",
    "eval.every",
    "eval.grid",
    "log.tensorboard",
    "data.root",
    "data.cache_dir",
}


@dataclass
class Nets:
    """What one training step updates: the generator and its optimiser, and, when the GAN loss is
    on, the discriminator and its optimiser; `perceptual` is the frozen VGG19 loss and `texture` the
    random-filter texture loss (each None when off)."""

    g: nn.Module
    opt_g: torch.optim.Optimizer
    d: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    perceptual: PerceptualLoss | None = None
    texture: RandomTextureLoss | None = None


def unwrap(m: nn.Module | None) -> nn.Module | None:
    return m.module if isinstance(m, DDP) else m


def run_dir(cfg: Config, resume: bool) -> Path:
    run = Path(cfg.log.dir) / cfg.train.name
    if resume and not (run / "checkpoints" / "last.pt").is_file():
        raise UserError(f"--resume: {run / 'checkpoints' / 'last.pt'} not found; start without --resume")
    if not resume and run.exists() and any(run.iterdir()):
        raise UserError(
            f"run folder {run} already exists; pass --resume to continue it, or --set train.name=NEW"
        )
    return run


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def resume_checkpoint(run: Path, cfg: Config) -> dict:
    """last.pt of `run`, after checking that `cfg` may continue it (before any data is read).

    Removes temp files of killed checkpoint writes. Raises UserError naming the keys when the
    networks differ (`check_architecture`) or when a key outside RESUME_FREE differs."""
    remove_orphan_temps(run / "checkpoints")
    path = run / "checkpoints" / "last.pt"
    ck = load_checkpoint(path)
    old = config_of(path, ck)
    check_architecture(old, cfg, discriminator=True)
    before, now = _flat(to_dict(old)), _flat(to_dict(cfg))
    changed = [k for k in now if before[k] != now[k] and k not in RESUME_FREE | {"log.dir", "train.name"}]
    if changed:
        shown = "; ".join(f"{k}: {before[k]!r} → {now[k]!r}" for k in changed)
        raise UserError(
            f"--resume: the run {run} was trained with other values ({shown}); a resumed run keeps its "
            "schedule and losses: drop those --set overrides, or start a new run with --set train.name=NEW"
        )
    return ck


@dataclass
class Schedule:
    """The training state besides the networks: lr schedules, weight average, data stream, progress."""

    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler | None
    ema: EMA | None  # the shipped weights when train.ema > 0; nets.g keeps training
    data_rng: torch.Generator  # the crop stream, identical on every rank
    step: int = 0
    best: float = -math.inf  # best validation FSIM so far

    def advance(self, g: nn.Module) -> None:
        """After an optimiser step of `g`: step the lr schedules, count the step, fold g into the EMA."""
        for sched in (self.sched_g, self.sched_d):
            if sched is not None:
                sched.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(unwrap(g), self.step)


def build(cfg: Config, device: torch.device) -> tuple[Nets, Schedule]:
    """Fresh networks, optimisers and schedules as `cfg` describes them, seeded by train.seed."""
    t = cfg.train
    torch.manual_seed(t.seed)
    g = build_generator(cfg.model).to(device)
    d = build_discriminator(cfg.model).to(device) if cfg.loss.gan > 0 else None
    p = cfg.loss.perceptual
    perceptual = (
        PerceptualLoss(p.weights, p.layer).to(device) if p.weight > 0 and p.weights != "none" else None
    )
    if t.channels_last:
        for m in (g, d, perceptual):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    texture = RandomTextureLoss().to(device) if cfg.loss.texture > 0 else None
    nets = Nets(
        g, torch.optim.Adam(g.parameters(), lr=t.lr, betas=t.betas), perceptual=perceptual, texture=texture
    )
    if d is not None:
        nets.d, nets.opt_d = d, torch.optim.Adam(d.parameters(), lr=t.lr, betas=t.betas)

    def sched(opt):
        return torch.optim.lr_scheduler.MultiStepLR(opt, list(t.milestones), t.gamma)

    schedule = Schedule(
        sched(nets.opt_g),
        None if d is None else sched(nets.opt_d),
        EMA(g, t.ema) if t.ema > 0 else None,
        torch.Generator().manual_seed(t.seed),
    )
    return nets, schedule


def restore(ck: dict, nets: Nets, s: Schedule) -> None:
    """Load a checkpoint written by `checkpoint_state` into fresh networks and schedule."""
    online = ck.get("generator_online")  # None when the run had no EMA: then "generator" is online
    nets.g.load_state_dict(online if online is not None else ck["generator"])
    if s.ema is not None:
        s.ema.module.load_state_dict(ck["generator"])
    nets.opt_g.load_state_dict(ck["opt_g"])
    s.sched_g.load_state_dict(ck["sched_g"])
    if nets.d is not None:
        nets.d.load_state_dict(ck["discriminator"])
        nets.opt_d.load_state_dict(ck["opt_d"])
        s.sched_d.load_state_dict(ck["sched_d"])
    s.data_rng.set_state(ck["rng"]["data"])
    torch.set_rng_state(ck["rng"]["torch"])
    s.step, s.best = ck["step"], ck["best_fsim"]


def shipped(nets: Nets, s: Schedule) -> nn.Module:
    """The generator that is validated, picked for best.pt and saved as "generator"."""
    return s.ema.module if s.ema is not None else unwrap(nets.g)


def checkpoint_state(cfg: Config, nets: Nets, s: Schedule, bank: dict) -> dict:
    """The checkpoint dict (keys: ide.checkpoint's docstring)."""
    maybe = lambda x: None if x is None else x.state_dict()  # noqa: E731
    return {
        "step": s.step,
        "config": to_dict(cfg),
        "generator": shipped(nets, s).state_dict(),  # what inference loads: the EMA when on
        "generator_online": None if s.ema is None else unwrap(nets.g).state_dict(),
        "discriminator": maybe(unwrap(nets.d)),
        "opt_g": nets.opt_g.state_dict(),
        "opt_d": maybe(nets.opt_d),
        "sched_g": s.sched_g.state_dict(),
        "sched_d": maybe(s.sched_d),
        "rng": {"torch": torch.get_rng_state(), "data": s.data_rng.get_state()},
        "best_fsim": s.best,
        **bank,
    }


def distribute(nets: Nets, device: torch.device) -> None:
    """Wrap the networks for DDP (the optimisers keep the same parameters)."""
    nets.g = DDP(nets.g)
    if nets.d is not None:
        # BatchNorm statistics over the global batch need SyncBatchNorm (CUDA only in PyTorch);
        # on CPU processes each rank normalises its own share of the batch.
        d = nets.d
        nets.d = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(d) if device.type == "cuda" else d)
