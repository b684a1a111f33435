"""Every value rule of the config, checked once when it is loaded (`load_config`), before any data is read.

Retired keys (`RETIRED`) are dropped when off and refused when on. Then three kinds of rules: ranges of single keys (`RANGES`), choices (`choices`), and rules that tie keys
together (`_cross_rules`). Each failure is one `UserError` naming the key, the value and what
would be valid. The code downstream trusts a loaded config and does not check again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ide.config import Config
from ide.errors import UserError

# Options that were measured, lost and removed (docs/ablations.md), with the value that meant "off".
# A config or checkpoint that holds one at that value still loads (the key is dropped); any other
# value is an error, since the run it describes cannot be reproduced by this code.
RETIRED: dict[str, Any] = {
    "model.space_to_depth": False,
    "model.disc_condition": False,
    "model.disc_norm": "batch",
    "loss.feature_match": 0.0,
    "loss.gradient": 0.0,
    "loss.fsim": 0.0,
    "stage1.floor": 4.0,  # the meanstd norm keeps this contrast floor, now fixed
}


def _retired_is_off(key: str, value: Any, section: dict) -> bool:
    if key == "stage1.floor" and section.get("norm", Config().stage1.norm) != "meanstd":
        return True  # the floor only ever acted under the meanstd norm
    return value == RETIRED[key]


def drop_retired(values: dict) -> dict:
    """A copy of a nested config dict without the retired keys that are off; UserError for one that is on."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for key in RETIRED:
        section, name = key.split(".")
        node = out.get(section)
        if not isinstance(node, dict) or name not in node:
            continue
        if not _retired_is_off(key, node[name], node):
            raise UserError(
                f"config key '{key}' was retired (docs/ablations.md, 'Retired options') and can only be "
                f"{RETIRED[key]!r}, got {node[name]!r}; remove it, or use the ide release that had it"
            )
        del node[name]
    return out


# The choices of the keys that name a method. Kept here, free of torch, so that a bad config fails
# in a fraction of a second; the modules that act on them import these (tests/test_config.py
# checks that ide.pgm's copies agree).
NORMS = ("none", "mean", "meanstd")  # stage1.norm: ide.pgm.grid.PatchMetric
DISCRIMINATORS = ("vgg128", "patch")  # model.discriminator: ide.models.build_discriminator
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # train.precision: ide.precision
# stage1.features: representation → its channels (ide.pgm.features); intensity is the reference
FEATURES = {"intensity": 0, "dog1": 1, "dog2": 1, "gradient": 2}
MAX_BLEND = 32.0  # largest stage1.blend (the window's smallest weights stay far above float64's range)

# key → (test, what the key must be). Integers and floats are already type-checked by the loader.
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "data.synthetic_train": (lambda v: v >= 1, ">= 1"),
    "data.synthetic_test": (lambda v: v >= 1, ">= 1"),
    "data.val_count": (lambda v: v >= 1, ">= 1 (validation picks best.pt)"),
    "stage1.patch": (lambda v: v >= 2, ">= 2"),
    "stage1.step": (lambda v: v >= 1, ">= 1"),
    "stage1.search": (lambda v: v >= 0, ">= 0 (pixels)"),
    "stage1.k": (lambda v: v >= 1, ">= 1"),
    "stage1.lam": (lambda v: v >= 0, ">= 0"),
    "stage1.iters": (lambda v: v >= 1, ">= 1"),
    "stage1.brightness": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "stage1.background": (lambda v: v >= 0, ">= 0 (0: off)"),
    "stage1.blend": (lambda v: 0 <= v <= MAX_BLEND, "a power in [0, 32] (0 averages the overlaps)"),
    "stage1.batch": (lambda v: v >= 1, ">= 1"),
    "model.scale": (lambda v: v >= 1, ">= 1"),
    "model.in_channels": (lambda v: v >= 1, ">= 1"),
    "model.out_channels": (lambda v: v >= 1, ">= 1"),
    "model.channels": (lambda v: v >= 1, ">= 1"),
    "model.n_fam": (lambda v: v >= 1, ">= 1"),
    "model.reduced": (lambda v: v >= 1, ">= 1"),
    "model.disc_channels": (lambda v: v >= 1, ">= 1"),
    "model.patch_layers": (lambda v: v >= 1, ">= 1"),
    "train.iterations": (lambda v: v >= 1, ">= 1"),
    "train.batch_size": (lambda v: v >= 1, ">= 1"),
    "train.lr": (lambda v: v > 0, "> 0 (e.g. 1e-4)"),
    "train.gamma": (lambda v: v > 0, "> 0 (0.5 halves the lr at each milestone)"),
    "train.crop": (lambda v: v >= 1, ">= 1"),
    "train.save_every": (lambda v: v >= 1, ">= 1"),
    "train.log_every": (lambda v: v >= 1, ">= 1"),
    "train.ema": (lambda v: 0 <= v < 1, "in [0, 1) (0: off, e.g. 0.999)"),
    "loss.pixel": (lambda v: v >= 0, ">= 0 (0: off)"),
    "loss.gan": (lambda v: v >= 0, ">= 0 (0: off)"),
    "loss.perceptual.weight": (lambda v: v >= 0, ">= 0 (0: off)"),
    "eval.every": (lambda v: v >= 1, ">= 1"),
    "eval.grid": (lambda v: v >= 1, ">= 1"),
}


def get(cfg: Config, key: str):
    """The value of a dotted key, e.g. get(cfg, "loss.perceptual.weight")."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def choices() -> dict[str, tuple[str, ...]]:
    """key → its valid values."""
    return {"stage1.norm": NORMS, "model.discriminator": DISCRIMINATORS, "train.precision": PRECISIONS}


def _cross_rules(cfg: Config) -> list[str]:
    """Rules between keys; returns the messages of those broken."""
    m, t, s = cfg.model, cfg.train, cfg.stage1
    broken = []
    if s.step > s.patch:
        broken.append(f"stage1.step ({s.step}) must be <= stage1.patch ({s.patch}), or pixels stay uncovered")
    if m.out_channels > m.in_channels + m.photo_condition:
        broken.append(f"model.out_channels ({m.out_channels}) must be <= the generator's input channels")
    if t.crop % m.scale or t.crop // m.scale < 13:
        broken.append(
            f"train.crop ({t.crop}) must be a multiple of model.scale ({m.scale}) and at least "
            f"13 x scale (the generator's attention pools a 7x7 window at half size)"
        )
    if any(b <= a for a, b in zip(t.milestones, t.milestones[1:])) or any(v < 1 for v in t.milestones):
        broken.append(f"train.milestones {list(t.milestones)} must be increasing steps >= 1")
    if not all(0 <= b < 1 for b in t.betas):
        broken.append(f"train.betas {list(t.betas)} must each be in [0, 1)")
    if cfg.loss.gan > 0 and m.discriminator == "vgg128" and t.crop != 128:
        broken.append(f"model.discriminator vgg128 judges 128x128 crops: set train.crop=128 (is {t.crop})")
    if cfg.loss.gan > 0 and m.discriminator == "patch" and t.crop < 3 * 2**m.patch_layers:
        broken.append(f"train.crop ({t.crop}) is too small for a PatchGAN of {m.patch_layers} layers")
    x0, y0, x1, y1 = cfg.data.eyes
    if not x0 < x1:
        broken.append(f"data.eyes {list(cfg.data.eyes)}: the left eye's x must be smaller than the right's")
    return broken


def check_features(features: tuple[str, ...], weights: tuple[float, ...]) -> None:
    """stage1.features and stage1.feature_weights: UserError (one line naming the key) on an
    unknown, repeated or missing representation or on weights that do not match."""
    for name in features:
        if name not in FEATURES:
            raise UserError(
                f"config key 'stage1.features' has unknown representation {name!r}; "
                f"choose from: {', '.join(FEATURES)}"
            )
    if "intensity" not in features or len(set(features)) != len(features):
        raise UserError(
            f"config key 'stage1.features' is {list(features)}; list each representation once, "
            "intensity included (e.g. [intensity, dog1, gradient])"
        )
    if weights and len(weights) != len(features):
        raise UserError(
            f"config key 'stage1.feature_weights' has {len(weights)} entries for {len(features)} "
            "stage1.features; give one weight per representation, or none (all 1)"
        )
    for name, wt in zip(features, weights):
        if name == "intensity" and wt != 1.0:
            raise UserError(
                "config key 'stage1.feature_weights': the intensity is the reference, its weight "
                f"must be 1 (got {wt}); scale the other representations instead"
            )
        if not (wt >= 0.0 and math.isfinite(wt)):
            raise UserError(f"config key 'stage1.feature_weights' has {wt} for {name}; weights must be >= 0")


def _check_devices(cfg: Config) -> None:
    """Device names other than auto/cpu, and fp16, need torch to answer (is CUDA there?)."""
    named = [(cfg.stage1.device, "stage1.device"), (cfg.train.device, "train.device")]
    if all(name.strip().lower() in ("auto", "cpu") for name, _ in named) and cfg.train.precision != "fp16":
        return  # auto and cpu always resolve; only fp16 depends on the device
    from ide.precision import resolve_device, resolve_precision

    resolve_device(cfg.stage1.device, "stage1.device")
    resolve_precision(cfg.train.precision, resolve_device(cfg.train.device, "train.device"))


def check_config(cfg: Config, training: bool = False) -> None:
    """Raise UserError for the first rule `cfg` breaks; with `training`, also check the VGG19 file."""
    for key, (ok, need) in RANGES.items():
        if not ok(get(cfg, key)):
            raise UserError(f"config key '{key}' must be {need}, got {get(cfg, key)!r}")
    for key, valid in choices().items():
        if get(cfg, key) not in valid:
            shown = ", ".join(valid) if len(valid) < 8 else f"{valid[0]} ... {valid[-1]}"
            raise UserError(f"config key '{key}' is {get(cfg, key)!r}; choose one of: {shown}")
    check_features(cfg.stage1.features, cfg.stage1.feature_weights)
    broken = _cross_rules(cfg)
    if broken:
        raise UserError(f"config: {broken[0]}")
    _check_devices(cfg)  # loads torch (~2 s of CPU) only for an explicit CUDA device or fp16
    from ide.vgg_files import resolve_vgg_weights, vgg19_layer_names

    p = cfg.loss.perceptual
    if p.layer not in vgg19_layer_names():
        raise UserError(
            f"config key 'loss.perceptual.layer' is {p.layer!r}; choose a VGG19 layer: conv1_1 ... pool5"
        )
    if training and p.weight > 0 and p.weights not in ("none", "random"):
        resolve_vgg_weights(p.weights)  # UserError saying where to put the file
