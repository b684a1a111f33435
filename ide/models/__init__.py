"""Stage-2 networks: MLA-Net generator and the discriminators; the one place config becomes networks."""

from __future__ import annotations

from torch import nn

from ide.config import ModelConfig
from ide.config_rules import DISCRIMINATORS
from ide.models.discriminator import PatchDiscriminator, VGGDiscriminator
from ide.models.fam import FAM
from ide.models.generator import MLANet
from ide.models.mab import MAB

__all__ = ["FAM", "MAB", "MLANet", "PatchDiscriminator", "VGGDiscriminator"]
__all__ += [
    "DISCRIMINATORS",
    "build_discriminator",
    "build_generator",
    "generator_in_channels",
    "input_scale",
]


def generator_in_channels(cfg: ModelConfig) -> int:
    """Input channels of the generator: the sketch's, plus one for the gray photo when conditioned."""
    return cfg.in_channels + (1 if cfg.photo_condition else 0)


def build_generator(cfg: ModelConfig) -> MLANet:
    """MLA-Net as `cfg` describes it (input: coarse sketch [+ gray photo], channels first)."""
    return MLANet(
        in_channels=generator_in_channels(cfg),
        out_channels=cfg.out_channels,
        channels=cfg.channels,
        n_fam=cfg.n_fam,
        reduced=cfg.reduced,
        scale=cfg.scale,
        attn_relu=cfg.attn_relu,
    )


def input_scale(cfg: ModelConfig) -> int:
    """How much smaller than the sketch the generator's input is: `model.scale`."""
    return cfg.scale


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """`model.discriminator` (checked at config load): vgg128 (128x128 crops, logits [B, 1]) or
    patch (any size ≥ 3·2**patch_layers, a logit map), judging the sketch alone."""
    if cfg.discriminator == "vgg128":
        return VGGDiscriminator(in_channels=cfg.out_channels, base=cfg.disc_channels)
    if cfg.discriminator == "patch":
        return PatchDiscriminator(
            in_channels=cfg.out_channels, base=cfg.disc_channels, n_layers=cfg.patch_layers
        )
    raise ValueError(f"model.discriminator {cfg.discriminator!r} is not one of {DISCRIMINATORS}")
