"""One checkpoint dict, written atomically, loaded with `weights_only=True`.

Keys: version, step, config (plain dict), generator (the weights inference uses: the EMA
weights when train.ema > 0), generator_online (the trained weights under the EMA, or None),
discriminator (or None), opt_g, opt_d,
sched_g, sched_d, rng (torch CPU state + the data generator's state), best_fsim, and the
stage-1 bank (`bank_ids`, `bank_photos` uint8 [N,H,W] gray, `bank_sketches` uint8 [N,H,W]) so
that `ide test` needs nothing but the checkpoint.

`check_architecture` is the one comparison of a checkpoint's config with the config asked for
(resume, `ide test --set model.*`): a difference is one line naming the keys, not a
`load_state_dict` traceback.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ide.config import Config, from_dict
from ide.errors import UserError
from ide.fileio import atomic_write, remove_orphans

VERSION = 1

# The model.* keys that shape the generator's weights, and those that shape the discriminator's.
GENERATOR_KEYS = (
    "scale",
    "in_channels",
    "out_channels",
    "channels",
    "n_fam",
    "reduced",
    "attn_relu",
    "photo_condition",
)
DISCRIMINATOR_KEYS = ("discriminator", "disc_channels", "patch_layers")


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save to a temp file in the same folder, then rename: a crash never leaves half a file.

    Temp files left by an earlier killed save of the same `path` are removed first."""
    atomic_write(path, lambda f: torch.save({"version": VERSION, **state}, f))


def remove_orphan_temps(folder: str | Path) -> int:
    """Delete the temp files of killed checkpoint writes (`.<name>.pt.*.tmp`) in `folder`."""
    names = {p.name.split(".pt.", 1)[0][1:] + ".pt" for p in Path(folder).glob(".*.pt.*.tmp")}
    return sum(remove_orphans(Path(folder) / name) for name in names)


def _load_reason(err: Exception) -> str:
    """A short, whole reason why torch.load failed (torch's own texts carry raw pickle opcodes,
    such as a bare "101", or run to a page)."""
    if "Weights only load failed" in str(err):
        return "it holds Python objects besides tensors and numbers, which are not loaded for safety"
    return "not a PyTorch file, or a truncated one"


def load_checkpoint(path: str | Path) -> dict:
    """Load on the CPU with `weights_only=True`; a missing, foreign or incompatible file is a UserError."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder; pass a .pt file in it (e.g. {path / 'best.pt'})")
    if not path.is_file():
        raise UserError(
            f"checkpoint {path} not found; pass a file written by ide train (runs/<name>/checkpoints/)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to unpickle means: not a checkpoint this ide can read
        raise UserError(
            f"{path} is not an ide checkpoint ({_load_reason(err)}); pass a file written by ide train"
        ) from None
    missing = [k for k in ("version", "generator", "config") if not isinstance(state, dict) or k not in state]
    if missing:
        raise UserError(
            f"{path} is not an ide checkpoint (no '{missing[0]}' entry); pass a file written by ide train"
        )
    if state["version"] != VERSION:
        raise UserError(
            f"checkpoint {path} has format version {state['version']}, this ide reads version {VERSION}; "
            "use the ide release that wrote it"
        )
    return state


def config_of(path: str | Path, state: dict) -> Config:
    """The checkpoint's config as a `Config` (retired keys at their off values dropped)."""
    try:
        return from_dict(state["config"])
    except UserError as err:
        raise UserError(f"checkpoint {path}: {err}") from None


def check_architecture(ckpt_cfg: Config, cfg: Config, discriminator: bool = False) -> None:
    """Raise one UserError naming every network key in which `cfg` differs from `ckpt_cfg`.

    Compares the generator's keys (GENERATOR_KEYS); with `discriminator` (resuming training)
    also the discriminator's (DISCRIMINATOR_KEYS) and whether there is one (loss.gan > 0)."""
    keys = GENERATOR_KEYS + (DISCRIMINATOR_KEYS if discriminator else ())
    diffs = [
        f"model.{k}: {getattr(ckpt_cfg.model, k)!r} → {getattr(cfg.model, k)!r}"
        for k in keys
        if getattr(ckpt_cfg.model, k) != getattr(cfg.model, k)
    ]
    if discriminator and (ckpt_cfg.loss.gan > 0) != (cfg.loss.gan > 0):
        diffs.append(f"loss.gan: {ckpt_cfg.loss.gan!r} → {cfg.loss.gan!r} (adds or drops the discriminator)")
    if diffs:
        raise UserError(
            "the checkpoint's network architecture differs from the config asked for ("
            + "; ".join(diffs)
            + "); drop those --set overrides, or train a new run with them"
        )
