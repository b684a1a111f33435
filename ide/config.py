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

from ide.data.layout import CUFS_EYES
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
    eyes: tuple[float, float, float, float] = CUFS_EYES


@dataclass(frozen=True)
class Stage1Config:
    patch: int = 10  # patch side in pixels
    step: int = 5  # grid step (overlap = patch - step)
    search: int = 5  # candidate window: ± pixels around the same position in every training photo
    k: int = 10  # candidates per patch
    lam: float = 1.0  # weight of the neighbour-overlap term of MWF
    iters: int = 10  # block-coordinate sweeps of the joint weight solve (10 ≈ 20 on validation)
    norm: str = "mean"  # photometric normalisation of photo patches: none | mean | meanstd
    brightness: float = 0.0  # mean only: weight of the patch-mean difference kept in the distance, in [0, 1]
    background: float = 0.0  # > 0: whiten dark photo backdrops before the search, bank and queries
    # alike: GrabCut on colour photos, flood fill within ±background gray levels on gray ones
    # (ide/pgm/background.py)
    # overlap blending: each patch's pixel (i, j) weighs (sin(π(i+½)/p)·sin(π(j+½)/p))^blend, so
    # 0 averages the overlaps (the paper's) and large powers keep, per pixel, the patch whose
    # centre is nearest (8: practically no averaging); ide/pgm/grid.py, docs/stage1.md
    blend: float = 0.0
    # representations of a photo patch compared by the search and the MWF photo term:
    # intensity (always), dog1, dog2, gradient (ide/pgm/features.py, docs/stage1.md)
    features: tuple[str, ...] = ("intensity",)
    feature_weights: tuple[float, ...] = ()  # one per feature (intensity's is 1), empty: all 1
    device: str = "auto"  # auto | cpu | cuda
    batch: int = 64  # query photos per matrix product of the search

    @property
    def floor(self) -> float:
        """The meanstd norm's contrast floor in gray levels, (x - mean) / sqrt(var + floor²): fixed
        (the key stage1.floor was retired, docs/ablations.md)."""
        return 4.0


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
    discriminator: str = "vgg128"  # vgg128 | patch
    disc_channels: int = 64  # base width of the discriminator
    patch_layers: int = 3  # strided layers of the PatchGAN discriminator (3: 70x70 receptive field)


@dataclass(frozen=True)
class TrainConfig:
    name: str = "cufs"  # run folder: <log.dir>/<name>
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


@dataclass(frozen=True)
class PerceptualConfig:
    weight: float = 1.0
    weights: str = "torchvision"  # torchvision | path to a .pth state dict | none
    layer: str = "conv5_4"


@dataclass(frozen=True)
class LossConfig:
    pixel: float = 0.01
    gan: float = 0.005  # 0: no discriminator
    perceptual: PerceptualConfig = field(default_factory=PerceptualConfig)


@dataclass(frozen=True)
class EvalConfig:
    every: int = 5000  # validation every N iterations
    grid: int = 8  # ids shown in image grids


@dataclass(frozen=True)
class LogConfig:
    dir: str = "runs"
    tensorboard: bool = True


@dataclass(frozen=True)
class Config:
    """The whole config. Its defaults are the paper recipe of `configs/cufs.yaml` (MWF stage 1 with
    the overlap average and no background model; MLA-GAN at scale 2 with VGG19 conv5_4 and the
    VGG-style discriminator), except `data.root`, which defaults to the synthetic faces."""

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
        return _convert_union(value, tp, key)
    if origin is tuple:
        return _convert_tuple(value, tp, key)
    return _convert_scalar(value, tp, key)


def _convert_union(value: Any, tp: Any, key: str) -> Any:
    errors = []
    for option in typing.get_args(tp):
        if option is type(None) and value is None:
            return None
        try:
            return _convert(value, option, key)
        except UserError as err:
            errors.append(str(err))
    raise UserError(errors[0])


def _convert_tuple(value: Any, tp: Any, key: str) -> tuple:
    args = typing.get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise UserError(f"config key '{key}' must be a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if len(args) != len(value):
        raise UserError(f"config key '{key}' must have {len(args)} items, got {value!r}")
    return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))


def _convert_scalar(value: Any, tp: type, key: str) -> Any:
    """int, float (ints and "3e-4"-like strings accepted: YAML 1.1 reads those as strings), bool,
    str (None becomes "none"); bools are never numbers."""
    if tp not in (int, float, bool, str):
        raise TypeError(f"unsupported config annotation {tp!r} for {key}")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is float and number:
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if (tp is int and number and isinstance(value, int)) or (tp in (bool, str) and isinstance(value, tp)):
        return value
    if tp is str and value is None:
        return "none"
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
    """Build a `Config` from a nested dict; missing keys take their defaults, retired ones are
    dropped when off (`ide.config_rules.drop_retired`)."""
    from ide.config_rules import drop_retired  # it imports this module

    return _build(Config, drop_retired(values or {}))


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


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, training: bool = False
) -> Config:
    """Read a YAML config (or only defaults when `path` is None), apply overrides, check every rule.

    A path that is not found is also looked up in the repository's `configs/` (`cufs.yaml`, ...).
    All checks run here, before any data is read (`ide.config_rules.check_config`); with
    `training`, also the files that only training needs (the VGG19 weights).
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
    from ide.config_rules import check_config

    check_config(cfg, training=training)
    return cfg


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
