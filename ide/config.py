"""YAML → frozen, typed config dataclasses, with `--set a.b=value` overrides.

Sections: data, stage1, model, train, loss, eval, log. Unknown keys, wrong types and missing
files raise `UserError` naming the key (and the valid choices). Values given with `--set` are
parsed with `yaml.safe_load`, never `eval`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ide.errors import UserError


@dataclass(frozen=True)
class DataConfig:
    root: str = "synthetic"  # dataset root (ROOT/{train,test}/{photos,sketches}) or "synthetic"
    synthetic_train: int = 40  # identities in the synthetic train split (root == "synthetic")
    synthetic_test: int = 12
    synthetic_seed: int = 0
    val_count: int = 20  # training pairs held out for validation (deterministic, spread over subsets)
    cache_dir: str = ".cache/ide"  # stage-1 banks and coarse sketches, keyed by hashes
    # eye centres (x_left, y_left, x_right, y_right) of the data's 200x250 layout, used by --align
    eyes: tuple[float, float, float, float] = (75.0, 125.0, 127.0, 125.0)
    # > 0: that many extra leave-one-out coarse sketches per training photo, each from a random
    # `variant_fraction` of the bank (odd ones with K//2); a crop draws one of them or the main
    # one (ide/pgm/variants.py)
    coarse_variants: int = 0
    variant_fraction: float = 0.7


@dataclass(frozen=True)
class Stage1Config:
    patch: int = 10  # patch side in pixels
    step: int = 5  # grid step (overlap = patch - step)
    search: int = 5  # candidate window: ± pixels around the same position in every training photo
    k: int = 10  # candidates per patch
    lam: float = 1.0  # weight of the neighbour-overlap term of MWF
    iters: int = 10  # block-coordinate sweeps of the joint weight solve (10 ≈ 20 on validation)
    norm: str = "mean"  # photometric normalisation of photo patches: none | mean | meanstd
    floor: float = 4.0  # meanstd only: contrast floor in gray levels, (x - mean) / sqrt(var + floor²)
    brightness: float = 0.0  # mean only: weight of the patch-mean difference kept in the distance, in [0, 1]
    background: float = 0.0  # > 0: whiten dark photo backdrops before the search, bank and queries
    # alike: GrabCut on colour photos, flood fill within ±background gray levels on gray ones
    # (ide/pgm/background.py)
    # overlap blending: each patch's pixel (i, j) weighs (sin(π(i+½)/p)·sin(π(j+½)/p))^blend, so
    # 0 averages the overlaps (the paper's) and large powers keep, per pixel, the patch whose
    # centre is nearest (8: practically no averaging); ide/pgm/grid.py, README "Stage-1 settings"
    blend: float = 0.0
    device: str = "auto"  # auto | cpu | cuda
    batch: int = 64  # query photos per matrix product of the search


@dataclass(frozen=True)
class ModelConfig:
    scale: int = 2  # 2: paper protocol (×½ bicubic in, ×2 out); 1: full resolution in and out
    in_channels: int = 1
    out_channels: int = 1
    channels: int = 64
    n_fam: int = 8
    reduced: int = 16
    attn_relu: bool = True  # the original's ReLU before the spatial-attention sigmoid
    photo_condition: bool = False  # also feed the (gray) photo to the generator
    # the generator takes full-resolution inputs and folds each scale x scale block into channels
    # (pixel unshuffle) instead of seeing a downscaled copy; its skip is then the coarse sketch
    space_to_depth: bool = False
    discriminator: str = "vgg128"  # vgg128 | patch
    disc_channels: int = 64  # base width of the discriminator
    patch_layers: int = 3  # strided layers of the PatchGAN discriminator (3: 70x70 receptive field)
    disc_condition: bool = False  # the discriminator also sees the generator's input (pix2pix's cGAN)
    disc_norm: str = "batch"  # batch | spectral: the PatchGAN's normalisation (spectral: no BatchNorm)
    # also feed stage 1's per-pixel spread of the K candidate sketch patches (weighted std under
    # the MWF weights, blended like the sketch): where the patches disagreed (ide/pgm/spread.py)
    uncertainty: bool = False


@dataclass(frozen=True)
class TrainConfig:
    name: str = "demo"  # run folder: <log.dir>/<name>
    iterations: int = 300_000
    batch_size: int = 20
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    milestones: tuple[int, ...] = (50_000, 100_000, 200_000, 300_000)
    gamma: float = 0.5
    crop: int = 128  # ground-truth crop side; the input crop is crop // scale
    hflip: bool = True
    vflip: bool = True
    transpose: bool = True
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16 on AMX CPUs, fp16 AMP on CUDA)
    channels_last: bool = True
    save_every: int = 1000
    log_every: int = 50
    ema: float = 0.0  # decay of the generator's weight average (0: off); validated, saved and used when on
    # share of crops, in [0, 1), whose coarse input is the target sketch degraded the way stage 1
    # degrades (patch mixing and swaps over the patch grid, blur; ide/data/degrade.py)
    degraded: float = 0.0


@dataclass(frozen=True)
class PerceptualConfig:
    weight: float = 1.0
    weights: str = "torchvision"  # torchvision | path to a .pth state dict | none
    layer: str = "conv5_4"


@dataclass(frozen=True)
class LossConfig:
    pixel: float = 0.01
    gan: float = 0.005
    # > 0: L1 between the PatchGAN's features of the fake and of the real sketch (pix2pixHD's
    # feature matching), mean over its layers; needs model.discriminator: patch
    feature_match: float = 0.0
    # > 0: 1 - FSIM of each output crop against its target (the evaluation metric as a loss,
    # phase congruency and gradient similarity made differentiable); beyond the paper
    fsim: float = 0.0
    gradient: float = 0.0  # > 0: L1 between the forward differences of output and target
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)


@dataclass(frozen=True)
class EvalConfig:
    every: int = 1000  # validation every N iterations
    grid: int = 8  # ids shown in image grids


@dataclass(frozen=True)
class LogConfig:
    dir: str = "runs"
    tensorboard: bool = True


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp` (after `get_type_hints`), converting lists to tuples."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' must be a mapping (section), got {value!r}")
        return _build(tp, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None) and value is None:
                return None
            try:
                return _convert(value, option, key)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[0])
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise UserError(f"config key '{key}' must have {len(args)} items, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
        if value is None:
            return "none"
    else:
        raise TypeError(f"unsupported config annotation {tp!r} for {key}")
    raise UserError(f"config key '{key}' must be of type {tp.__name__}, got {value!r}")


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise UserError(f"unknown config key '{prefix}{unknown[0]}'; valid keys here: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples as lists) of a config, for YAML and checkpoints."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def from_dict(values: dict | None) -> Config:
    """Build a `Config` from a nested dict; missing keys take their defaults."""
    return _build(Config, values or {})


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply `a.b=value` overrides (value parsed with `yaml.safe_load`) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set '{item}' must look like section.key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise UserError(f"--set {key}: cannot parse value {raw!r} ({err.__class__.__name__})") from None
        parts = key.strip().split(".")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {key}: '{part}' is not a section")
        node[parts[-1]] = value
    return values


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or only defaults when `path` is None), apply overrides, validate.

    A path that is not found is also looked up in the repository's `configs/` (`cufs.yaml`, ...).
    """
    values: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            packaged = Path(__file__).resolve().parents[1] / "configs" / p.name
            if packaged.is_file():
                p = packaged
            else:
                raise UserError(
                    f"config file {path} not found; pass --config with a YAML file (see configs/)"
                )
        try:
            values = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise UserError(f"config file {p}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise UserError(f"config file {p}: the top level must be a mapping of sections")
    apply_overrides(values, overrides or [])
    cfg = from_dict(values)
    if cfg.data.root != "synthetic" and not Path(cfg.data.root).is_dir():
        raise UserError(
            f"config key 'data.root': folder {cfg.data.root} does not exist; "
            "set it with --set data.root=PATH (a folder holding train/ and test/)"
        )
    return cfg


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
