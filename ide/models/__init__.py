"""Stage-2 networks: MLA-Net generator and the discriminators; the one place config becomes networks."""

from __future__ import annotations

from torch import nn

from ide.config import ModelConfig
from ide.errors import UserError
from ide.models.discriminator import NORMS, PatchDiscriminator, VGGDiscriminator
from ide.models.fam import FAM
from ide.models.generator import MLANet
from ide.models.mab import MAB

__all__ = ["FAM", "MAB", "MLANet", "PatchDiscriminator", "VGGDiscriminator"]
__all__ += ["build_discriminator", "build_generator", "generator_in_channels", "input_scale"]


def generator_in_channels(cfg: ModelConfig) -> int:
    """Input channels of the generator: the sketch's, plus one for the gray photo when conditioned,
    plus one for stage 1's candidate spread (model.uncertainty)."""
    return cfg.in_channels + (1 if cfg.photo_condition else 0) + (1 if cfg.uncertainty else 0)


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
        space_to_depth=cfg.space_to_depth,
    )


def input_scale(cfg: ModelConfig) -> int:
    """How much smaller than the sketch the generator's input is: `model.scale`, or 1 when the
    generator unshuffles full-resolution inputs itself (`model.space_to_depth`)."""
    return 1 if cfg.space_to_depth else cfg.scale


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """`model.discriminator`: vgg128 (128x128 crops, logits [B, 1]) or patch (any size, logit map).

    With `model.disc_condition` it judges the sketch stacked with the generator's input, upsampled
    to the sketch's size (`train.discriminator_input`), so it takes the input's channels too.
    """
    if cfg.disc_norm not in NORMS:
        raise UserError(f"model.disc_norm '{cfg.disc_norm}' is not one of: {', '.join(NORMS)}")
    if cfg.disc_norm == "spectral" and cfg.discriminator != "patch":
        raise UserError("model.disc_norm: spectral needs model.discriminator: patch (or set it to batch)")
    channels = cfg.out_channels + (generator_in_channels(cfg) if cfg.disc_condition else 0)
    if cfg.discriminator == "vgg128":
        return VGGDiscriminator(in_channels=channels, base=cfg.disc_channels)
    if cfg.discriminator == "patch":
        return PatchDiscriminator(
            in_channels=channels, base=cfg.disc_channels, n_layers=cfg.patch_layers, norm=cfg.disc_norm
        )
    raise UserError(f"model.discriminator '{cfg.discriminator}' is not one of: vgg128, patch")
