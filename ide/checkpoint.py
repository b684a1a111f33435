"""One checkpoint dict, written atomically, loaded with `weights_only=True`.

Keys: version, step, config (plain dict), generator (the weights inference uses: the EMA
weights when train.ema > 0), generator_online (the trained weights under the EMA, or None),
discriminator (or None), opt_g, opt_d,
sched_g, sched_d, rng (torch CPU state + the data generator's state), best_fsim, and the
stage-1 bank (`bank_ids`, `bank_photos` uint8 [N,H,W] gray, `bank_sketches` uint8 [N,H,W]) so
that `ide test` needs nothing but the checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ide.errors import UserError

VERSION = 1


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save to a temp file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"version": VERSION, **state}, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | Path) -> dict:
    """Load on the CPU with `weights_only=True`; a missing, foreign or incompatible file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"checkpoint {path} not found; pass a file written by ide train (runs/<name>/checkpoints/)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to unpickle means: not a checkpoint this ide can read
        reason = str(err).splitlines()[0][:120] if str(err) else err.__class__.__name__
        raise UserError(
            f"{path} is not an ide checkpoint ({reason}); pass a file written by ide train"
        ) from None
    if not isinstance(state, dict) or "version" not in state or "generator" not in state:
        raise UserError(
            f"{path} is not an ide checkpoint (no version/generator); pass a file written by ide train"
        )
    if state["version"] != VERSION:
        raise UserError(
            f"checkpoint {path} has format version {state['version']}, this ide reads version {VERSION}; "
            "use the ide release that wrote it"
        )
    return state
